//! Helpers shared by the socket-family integration tests: bounded waits, frame
//! generators, free loopback ports.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use vm_nic_backends::NetBackend;

/// Every wait in these tests ends after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `backends` until `done` holds or [`TIMEOUT`] passes; returns whether it held.
pub fn poll_until(
    backends: &mut [&mut dyn NetBackend],
    mut done: impl FnMut(&mut [&mut dyn NetBackend]) -> bool,
) -> bool {
    let end = Instant::now() + TIMEOUT;
    while Instant::now() < end {
        for b in backends.iter_mut() {
            b.poll(Instant::now()).unwrap();
        }
        if done(backends) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Receives until `n` frames arrived or [`TIMEOUT`] passed, polling meanwhile.
pub fn recv_frames(b: &mut dyn NetBackend, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70000];
    let end = Instant::now() + TIMEOUT;
    while out.len() < n && Instant::now() < end {
        b.poll(Instant::now()).unwrap();
        match b.recv(&mut buf).unwrap() {
            Some(len) => out.push(buf[..len].to_vec()),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    out
}

/// Receives whatever arrives within `wait`.
pub fn drain(b: &mut dyn NetBackend, wait: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70000];
    let end = Instant::now() + wait;
    while Instant::now() < end {
        b.poll(Instant::now()).unwrap();
        if let Some(len) = b.recv(&mut buf).unwrap() {
            out.push(buf[..len].to_vec());
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    out
}

/// A recognisable Ethernet frame of `len` bytes: broadcast, source 02:..:tag:n, a local
/// experimental EtherType, payload derived from `tag` and `n`.
pub fn frame(tag: u8, n: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, tag, (n >> 8) as u8, n as u8]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8) ^ tag ^ (n as u8)));
    f
}

/// Frames of varied sizes, 60 to 9014 bytes.
pub fn frames(tag: u8, count: u16) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| frame(tag, n, 60 + (n as usize * 997) % 8955))
        .collect()
}

/// A port on 127.0.0.1 free for both TCP and UDP a moment ago, below the kernel's
/// ephemeral range (32768+) so no connecting socket of a parallel test can take it
/// between this check and the peer's bind. Successive calls give different ports.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20000 + (std::process::id() * 7919) % 12000;
    for _ in 0..12000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20000 + (base + n) % 12000) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A UDP port on 127.0.0.1 that was free a moment ago (see [`free_port`]).
pub fn free_udp_port() -> u16 {
    free_port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (see [`free_port`]).
pub fn free_tcp_port() -> u16 {
    free_port()
}

/// Builds an option list.
pub fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A unique temporary path for a Unix socket.
pub fn sock_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vmnic-{}-{name}.sock", std::process::id()))
}

/// Asserts `got` equals `want` frame by frame without printing megabytes on failure.
pub fn same_frames(got: &[Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "frame count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "frame {i} length");
        if let Some(at) = g.iter().zip(w).position(|(x, y)| x != y) {
            panic!("frame {i} differs at byte {at}");
        }
    }
}
