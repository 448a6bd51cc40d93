//! `vm-nic run` as a switch: a QEMU-style socket client on hub 0 reaches the user-mode
//! network on the same hub — an ARP request for the gateway 10.0.2.2 gets its reply.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vm-nic");

/// Ends the child by its PID when the test is done, whatever happened.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: signals the child this test started, by its PID.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while self.0.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arp_request() -> Vec<u8> {
    let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[10, 0, 2, 15]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 2, 2]);
    f.resize(60, 0);
    f
}

#[test]
fn socket_client_gets_the_user_gateway_arp_reply() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "run",
            "-net",
            "user",
            "-net",
            &format!("socket,listen=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut banner = Vec::new();
    let mut b = [0u8; 512];
    while !String::from_utf8_lossy(&banner).contains("user.0") {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "vm-nic run exited early");
        banner.extend_from_slice(&b[..n]);
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let req = arp_request();
    let t = Instant::now();
    let mut got = Vec::new();
    let mut sent_at = None::<Instant>;
    'outer: while t.elapsed() < Duration::from_secs(10) {
        // The listening side's link comes up once we are accepted; resend until answered.
        if sent_at.is_none_or(|s| s.elapsed() > Duration::from_millis(500)) {
            s.write_all(&(req.len() as u32).to_be_bytes()).unwrap();
            s.write_all(&req).unwrap();
            sent_at = Some(Instant::now());
        }
        let mut len = [0u8; 4];
        match s.read_exact(&mut len) {
            Ok(()) => {}
            Err(_) => continue,
        }
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.read_exact(&mut f).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] {
            got = f;
            break 'outer;
        }
    }
    assert!(!got.is_empty(), "no ARP reply from 10.0.2.2");
    assert_eq!(&got[28..32], &[10, 0, 2, 2], "reply is from the gateway");
    assert_eq!(
        &got[0..6],
        &[0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        "addressed to us"
    );
    drop(child);
}
