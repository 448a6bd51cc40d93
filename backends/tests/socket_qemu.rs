//! Interop with stock QEMU (Debian `qemu-system-x86`, 7.2): QEMU runs with no machine,
//! two of its netdevs joined by a hub, so every frame one vm-nic endpoint sends into QEMU
//! comes out of QEMU's other netdev to the second vm-nic endpoint. Frames are checked
//! byte for byte in both directions for socket listen/connect, udp, mcast, stream (inet
//! and unix) and dgram (inet and unix). QEMU is ended by its PID; every wait is bounded.
#![cfg(feature = "socket")]

mod socket_util;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use socket_util::*;
use vm_nic_backends::socket::{self, dgram, stream, SockTarget, StreamBackend};
use vm_nic_backends::NetBackend;

/// A QEMU process, killed by PID and reaped when dropped.
struct Qemu(Child);

impl Qemu {
    /// Starts QEMU with netdevs `a` and `b` (option strings without `id=`) on hub 0.
    fn start(a: &str, b: &str) -> Qemu {
        let child = Command::new("qemu-system-x86_64")
            .args(["-M", "none", "-nodefaults", "-nographic"])
            .args(["-netdev", &format!("{a},id=a")])
            .args(["-netdev", &format!("{b},id=b")])
            .args(["-netdev", "hubport,id=ha,hubid=0,netdev=a"])
            .args(["-netdev", "hubport,id=hb,hubid=0,netdev=b"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // QEMU warns "hub 0 with no nics" here; keep its stderr for failure reports.
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 not found: run scripts/install-deps.sh");
        Qemu(child)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = self.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("QEMU exited early ({status}): {err}");
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PROBE: u8 = 0xee;

/// Sends probes from `tx` until one comes out at `rx` (QEMU may still be starting),
/// then drains stray probes.
fn wait_path(q: &mut Qemu, tx: &mut dyn NetBackend, rx: &mut dyn NetBackend) {
    let end = Instant::now() + TIMEOUT;
    let mut n = 0;
    loop {
        q.assert_running();
        assert!(Instant::now() < end, "no frame made it through QEMU");
        tx.poll(Instant::now()).unwrap();
        if tx.link_up() {
            tx.send(&frame(PROBE, n, 60)).unwrap();
            n += 1;
        }
        if drain(rx, Duration::from_millis(50))
            .iter()
            .any(|f| f[9] == PROBE)
        {
            return;
        }
    }
}

/// Frames from `tx` arrive at `rx` through QEMU intact and in order (probes and frames
/// with other tags, e.g. multicast echoes, are ignored).
fn check_direction(tx: &mut dyn NetBackend, rx: &mut dyn NetBackend, tag: u8) {
    let want = frames(tag, 60);
    let mut got = Vec::new();
    for chunk in want.chunks(6) {
        for f in chunk {
            tx.send(f).unwrap();
        }
        let end = Instant::now() + TIMEOUT;
        let target = got.len() + chunk.len();
        while got.len() < target && Instant::now() < end {
            tx.poll(Instant::now()).unwrap();
            // Serve the sender's receive side too, as an event loop would: a multicast
            // member hears its own frames, and an unread socket buffer drops datagrams.
            let mut sink = vec![0u8; 70000];
            while tx.recv(&mut sink).unwrap().is_some() {}
            for f in drain(rx, Duration::from_millis(5)) {
                if f[9] == tag {
                    got.push(f);
                }
            }
        }
    }
    same_frames(&got, &want);
}

fn through_qemu(q: &mut Qemu, a: &mut dyn NetBackend, b: &mut dyn NetBackend) {
    wait_path(q, a, b);
    wait_path(q, b, a);
    check_direction(a, b, 0x1a);
    check_direction(b, a, 0x1b);
    q.assert_running();
}

/// Connects to a QEMU listener, retrying while QEMU starts.
fn connect_retrying(q: &mut Qemu, target: &SockTarget) -> StreamBackend {
    let end = Instant::now() + TIMEOUT;
    loop {
        q.assert_running();
        match StreamBackend::connect(target) {
            Ok(s) => return s,
            Err(e) if Instant::now() < end => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("QEMU never listened on {target}: {e}"),
        }
    }
}

fn wait_up(q: &mut Qemu, b: &mut dyn NetBackend) {
    let end = Instant::now() + TIMEOUT;
    while !b.link_up() {
        q.assert_running();
        assert!(Instant::now() < end, "QEMU never connected");
        b.poll(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn socket_listen_and_connect_through_qemu() {
    let (p1, p2) = (free_tcp_port(), free_tcp_port());
    let mut ours_server = socket::open(&opts(&[("listen", &format!("127.0.0.1:{p1}"))])).unwrap();
    let mut q = Qemu::start(
        &format!("socket,connect=127.0.0.1:{p1}"),
        &format!("socket,listen=127.0.0.1:{p2}"),
    );
    wait_up(&mut q, &mut *ours_server);
    let mut ours_client = connect_retrying(
        &mut q,
        &SockTarget::Inet(format!("127.0.0.1:{p2}").parse().unwrap()),
    );
    wait_up(&mut q, &mut ours_client);
    through_qemu(&mut q, &mut *ours_server, &mut ours_client);
}

#[test]
fn socket_udp_through_qemu() {
    let [q1, q2, v1, v2] = [(); 4].map(|_| free_udp_port());
    let mut a = socket::open(&opts(&[
        ("udp", &format!("127.0.0.1:{q1}")),
        ("localaddr", &format!("127.0.0.1:{v1}")),
    ]))
    .unwrap();
    let mut b = socket::open(&opts(&[
        ("udp", &format!("127.0.0.1:{q2}")),
        ("localaddr", &format!("127.0.0.1:{v2}")),
    ]))
    .unwrap();
    let mut q = Qemu::start(
        &format!("socket,udp=127.0.0.1:{v1},localaddr=127.0.0.1:{q1}"),
        &format!("socket,udp=127.0.0.1:{v2},localaddr=127.0.0.1:{q2}"),
    );
    through_qemu(&mut q, &mut *a, &mut *b);
}

#[test]
fn socket_mcast_through_qemu() {
    // QEMU's netdev a is a member of the group, netdev b a TCP listener. vm-nic has one
    // member of the group and one TCP client. With IP_MULTICAST_LOOP every member also
    // hears itself, so each side sees echoes of its own frames: check_direction ignores
    // frames not tagged by the sender under test.
    let port = free_udp_port();
    let group = format!("239.255.78.{}:{port}", (port % 200) + 1);
    let p2 = free_tcp_port();
    let mut member = socket::open(&opts(&[("mcast", &group), ("localaddr", "127.0.0.1")])).unwrap();
    let mut q = Qemu::start(
        &format!("socket,mcast={group},localaddr=127.0.0.1"),
        &format!("socket,listen=127.0.0.1:{p2}"),
    );
    let mut client = connect_retrying(
        &mut q,
        &SockTarget::Inet(format!("127.0.0.1:{p2}").parse().unwrap()),
    );
    wait_up(&mut q, &mut client);
    through_qemu(&mut q, &mut *member, &mut client);
}

#[test]
fn stream_inet_and_unix_through_qemu() {
    let p1 = free_tcp_port();
    let path = sock_path("qemu-stream");
    let mut ours_server = stream::open(&opts(&[
        ("server", "on"),
        ("addr.type", "inet"),
        ("addr.host", "127.0.0.1"),
        ("addr.port", &p1.to_string()),
    ]))
    .unwrap();
    let mut q = Qemu::start(
        &format!("stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port={p1}"),
        &format!(
            "stream,server=on,addr.type=unix,addr.path={}",
            path.display()
        ),
    );
    wait_up(&mut q, &mut *ours_server);
    let mut ours_client = connect_retrying(&mut q, &SockTarget::Unix(path.clone()));
    wait_up(&mut q, &mut ours_client);
    through_qemu(&mut q, &mut *ours_server, &mut ours_client);
    drop(q);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn dgram_inet_and_unix_through_qemu() {
    let [q1, v1] = [(); 2].map(|_| free_udp_port());
    let (qpath, vpath) = (sock_path("qemu-dg"), sock_path("ours-dg"));
    let mut a = dgram::open(&opts(&[
        ("local.type", "inet"),
        ("local.host", "127.0.0.1"),
        ("local.port", &v1.to_string()),
        ("remote.type", "inet"),
        ("remote.host", "127.0.0.1"),
        ("remote.port", &q1.to_string()),
    ]))
    .unwrap();
    let mut b = dgram::open(&opts(&[
        ("local.type", "unix"),
        ("local.path", vpath.to_str().unwrap()),
        ("remote.type", "unix"),
        ("remote.path", qpath.to_str().unwrap()),
    ]))
    .unwrap();
    let mut q = Qemu::start(
        &format!(
            "dgram,local.type=inet,local.host=127.0.0.1,local.port={q1},remote.type=inet,remote.host=127.0.0.1,remote.port={v1}"
        ),
        &format!(
            "dgram,local.type=unix,local.path={},remote.type=unix,remote.path={}",
            qpath.display(),
            vpath.display()
        ),
    );
    through_qemu(&mut q, &mut *a, &mut *b);
    drop(q);
    let _ = std::fs::remove_file(&qpath);
}
