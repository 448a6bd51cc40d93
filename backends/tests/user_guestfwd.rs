//! guestfwd to host sockets and commands, and smb=, through crafted guest segments: the
//! test plays the guest and the host-side servers (on 127.0.0.1 or a Unix socket in a
//! private temporary directory).
#![cfg(feature = "user")]

mod user_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);
const FWD: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

fn net_with(opts: &[(&str, &str)]) -> UserNet {
    let o: Vec<(String, String)> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    UserNet::new(UserConfig::from_opts(&o).unwrap()).unwrap()
}

/// Sends the SYN; returns the first segment answering it.
fn syn(n: &mut UserNet, g: &GuestTcp) -> Seg {
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(n, g, T);
    segs.into_iter().next().expect("no answer to the SYN")
}

/// Completes the handshake after a SYN-ACK.
fn establish(n: &mut UserNet, g: &mut GuestTcp) {
    let sa = syn(n, g);
    assert!(sa.syn && !sa.rst && sa.ack == Some(g.seq + 1), "{sa:?}");
    g.seq += 1;
    g.ack = sa.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
}

/// Receives in-order payload as the guest until `want` bytes arrived; ACKs as it goes.
fn recv(n: &mut UserNet, g: &mut GuestTcp, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let end = Instant::now() + T;
    while got.len() < want && Instant::now() < end {
        pump(n, Duration::from_millis(20), |n| n.has_pending());
        let mut advanced = false;
        for s in drain(n).iter().filter_map(|f| parse_tcp(f)) {
            if g.owns(&s) && s.seq == g.ack && !s.payload.is_empty() {
                assert!(!s.rst, "reset while receiving");
                got.extend_from_slice(&s.payload);
                g.ack = g.ack.wrapping_add(s.payload.len() as u32);
                advanced = true;
            }
        }
        if advanced {
            n.send(&g.ack_only()).unwrap();
        }
    }
    got
}

/// A fresh private directory for Unix sockets, removed by the caller.
fn private_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vm-nic-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    d
}

#[test]
fn guestfwd_to_tcp_connects_per_guest_connection_even_when_restricted() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let rule = format!("tcp:{FWD}:1234-tcp:127.0.0.1:{port}");
    let mut n = net_with(&[("restrict", "on"), ("guestfwd", &rule)]);
    for guest_port in [41000, 41001] {
        let mut g = GuestTcp::new(guest_port, (FWD, 1234));
        establish(&mut n, &mut g);
        // The SYN-ACK came only after the host connect completed: it is queued.
        let (mut conn, _) = server.accept().unwrap();
        n.send(&g.data(b"ping")).unwrap();
        let mut buf = [0u8; 4];
        let end = Instant::now() + T;
        let mut have = 0;
        while have < 4 && Instant::now() < end {
            pump(&mut n, Duration::from_millis(20), |_| false);
            conn.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            if let Ok(k) = conn.read(&mut buf[have..]) {
                have += k;
            }
        }
        assert_eq!(&buf, b"ping");
        conn.write_all(b"pong").unwrap();
        assert_eq!(recv(&mut n, &mut g, 4), b"pong");
        // The table shows what the guest connected to (the forward's virtual address),
        // as libslirp does; the host connection is in `Connection::host`.
        let table = n.info_usernet();
        let row = format!(
            "{:>15} {:>5} {FWD:>15} {:>5}",
            "10.0.2.15", guest_port, 1234
        );
        assert!(
            table.contains("TCP[ESTABLISHED]") && table.contains(&row),
            "{table}"
        );
        assert!(n.connections().iter().any(|c| c.host.port() == port));
    }
    // Both guest connections got their own host connection.
    assert_eq!(n.connections().len(), 2);
}

#[test]
fn guestfwd_target_refusing_resets_the_guest_connection() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = private_dir("gfwd-refuse");
    let sock = dir.join("none.sock");
    let tcp_rule = format!("tcp:{FWD}:1-tcp:127.0.0.1:{port}");
    let unix_rule = format!("tcp:{FWD}:2-unix:{}", sock.display());
    let mut n = net_with(&[("guestfwd", &tcp_rule), ("guestfwd", &unix_rule)]);
    for (guest_port, fwd_port) in [(41010, 1), (41011, 2)] {
        let g = GuestTcp::new(guest_port, (FWD, fwd_port));
        let s = syn(&mut n, &g);
        assert!(s.rst && !s.syn, "port {fwd_port}: {s:?}");
        assert_eq!(s.ack, Some(g.seq + 1), "the RST acknowledges the SYN");
    }
    assert!(n.connections().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn guestfwd_to_unix_socket_carries_bytes_and_fin() {
    let dir = private_dir("gfwd-unix");
    let path = dir.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (mut s, _): (UnixStream, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        // Closing sends EOF, which must reach the guest as a FIN.
    });
    let rule = format!("tcp:{FWD}:7000-unix:{}", path.display());
    let mut n = net_with(&[("guestfwd", &rule)]);
    let mut g = GuestTcp::new(41020, (FWD, 7000));
    establish(&mut n, &mut g);
    n.send(&g.data(b"hello")).unwrap();
    assert_eq!(recv(&mut n, &mut g, 5), b"HELLO");
    server.join().unwrap();
    let mut fin = false;
    pump(&mut n, T, |n| {
        fin |= drain(n)
            .iter()
            .filter_map(|f| parse_tcp(f))
            .any(|s| g.owns(&s) && s.fin);
        fin
    });
    assert!(fin, "the socket's EOF reached the guest as a FIN");
    let table = n.info_usernet();
    assert!(table.contains(&format!("{FWD}")), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An SMB2 NEGOTIATE request offering dialects 2.0.2 and 2.1, in its NetBIOS session
/// frame (MS-SMB2 2.2.1, 2.2.3).
fn smb2_negotiate() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"\xfeSMB");
    m.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&[0; 2]); // CreditCharge
    m.extend_from_slice(&[0; 4]); // Status
    m.extend_from_slice(&0u16.to_le_bytes()); // Command: NEGOTIATE
    m.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    m.extend_from_slice(&[0; 4 + 4 + 8 + 4 + 4 + 8 + 16]); // Flags..Signature
    m.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&2u16.to_le_bytes()); // DialectCount
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    m.extend_from_slice(&[0; 2 + 4]); // Reserved, Capabilities
    m.extend_from_slice(b"vm-nic-test-guid"); // ClientGuid
    m.extend_from_slice(&[0; 8]); // ClientStartTime
    m.extend_from_slice(&0x0202u16.to_le_bytes());
    m.extend_from_slice(&0x0210u16.to_le_bytes());
    let mut f = (m.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&m);
    f
}

#[test]
fn smb_share_answers_a_negotiate_at_dot_4_port_445() {
    let share = private_dir("smb-share");
    std::fs::write(share.join("hello.txt"), b"hi").unwrap();
    let o = vec![
        ("smb".to_string(), share.display().to_string()),
        ("restrict".to_string(), "on".to_string()),
    ];
    let cfg = UserConfig::from_opts(&o).unwrap();
    let smbd_installed = ["/usr/sbin/smbd", "/usr/local/sbin/smbd"]
        .iter()
        .any(|p| std::path::Path::new(p).is_file());
    let mut n = match UserNet::new(cfg) {
        Ok(n) => n,
        Err(e) if !smbd_installed => {
            assert_eq!(e.to_string(), "smb=: smbd not found; install samba");
            std::fs::remove_dir_all(&share).unwrap();
            return;
        }
        Err(e) => panic!("smb= failed with smbd installed: {e}"),
    };
    let server = Ipv4Addr::new(10, 0, 2, 4);
    n.send(&arp_request(GUEST_IP, server)).unwrap();
    assert_eq!(drain(&mut n).len(), 1, "ARP answered for the SMB server");
    let mut g = GuestTcp::new(41030, (server, 445));
    establish(&mut n, &mut g);
    n.send(&g.data(&smb2_negotiate())).unwrap();
    let reply = recv(&mut n, &mut g, 8);
    assert!(reply.len() >= 8, "no SMB reply: {reply:?}");
    assert_eq!(reply[0], 0, "NetBIOS session message");
    assert_eq!(&reply[4..8], b"\xfeSMB", "SMB2 protocol id");
    let table = n.info_usernet();
    assert!(
        table.contains("10.0.2.4") && table.contains("445"),
        "{table}"
    );
    drop(n);
    std::fs::remove_dir_all(&share).unwrap();
}

#[test]
fn guestfwd_commands_running_at_once_are_bounded() {
    let o = vec![("guestfwd".to_string(), format!("tcp:{FWD}:5000-cmd:cat"))];
    let mut cfg = UserConfig::from_opts(&o).unwrap();
    cfg.limits.max_commands = 1;
    let mut n = UserNet::new(cfg).unwrap();
    let mut first = GuestTcp::new(41040, (FWD, 5000));
    establish(&mut n, &mut first);
    let second = GuestTcp::new(41041, (FWD, 5000));
    let s = syn(&mut n, &second);
    assert!(s.rst && !s.syn, "second command refused: {s:?}");
    assert_eq!(n.stats().refused, 1);
    // Once the first connection is gone, a new one gets its command.
    n.send(&first.rst()).unwrap();
    let mut third = GuestTcp::new(41042, (FWD, 5000));
    establish(&mut n, &mut third);
    n.send(&third.data(b"again")).unwrap();
    assert_eq!(recv(&mut n, &mut third, 5), b"again");
}
