//! The read-only TFTP server (`tftp=`), played against by a crafted guest client.
#![cfg(feature = "user")]

mod user_util;

use std::path::PathBuf;

use smoltcp::wire::IpProtocol;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

fn root(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vm-nic-tftp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn server(dir: &std::path::Path) -> UserNet {
    UserNet::new(UserConfig {
        tftp: Some(dir.to_path_buf()),
        ..UserConfig::default()
    })
    .unwrap()
}

fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(name.as_bytes());
    p.push(0);
    p.extend_from_slice(b"octet\0");
    for (k, v) in opts {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

fn ack(n: u16) -> Vec<u8> {
    let mut p = vec![0, 4];
    p.extend_from_slice(&n.to_be_bytes());
    p
}

/// The one TFTP reply waiting: (opcode, rest).
fn reply(n: &mut UserNet) -> (u16, Vec<u8>) {
    let frames = drain(n);
    let mut found = None;
    for f in frames {
        let ip = parse_ip4(&f).unwrap();
        assert_eq!(ip.proto, IpProtocol::Udp);
        let (sp, dp, p) = parse_udp(&ip);
        assert_eq!((ip.src, sp, dp), (GW, 69, 2000));
        assert!(found.is_none(), "one reply per request");
        found = Some((u16::from_be_bytes([p[0], p[1]]), p[2..].to_vec()));
    }
    found.expect("a TFTP reply")
}

fn send(n: &mut UserNet, p: &[u8]) {
    n.send(&udp((GUEST_IP, 2000), (GW, 69), p)).unwrap();
}

/// Fetches `name`, ACKing every block; returns the file.
fn fetch(n: &mut UserNet, first: (u16, Vec<u8>), blksize: usize) -> Vec<u8> {
    let mut data = Vec::new();
    let (mut op, mut rest) = first;
    for expect in 1u16..=10_000 {
        assert_eq!(op, 3, "DATA");
        assert_eq!(u16::from_be_bytes([rest[0], rest[1]]), expect);
        let block = &rest[2..];
        data.extend_from_slice(block);
        send(n, &ack(expect));
        if block.len() < blksize {
            assert!(drain(n).is_empty(), "nothing after the last block");
            return data;
        }
        (op, rest) = reply(n);
    }
    panic!("transfer did not end");
}

#[test]
fn fetches_a_file_with_default_and_negotiated_block_size() {
    let dir = root("fetch");
    let content: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(dir.join("boot.img"), &content).unwrap();
    std::fs::write(dir.join("exact"), vec![7u8; 1024]).unwrap();
    let mut n = server(&dir);

    send(&mut n, &rrq("boot.img", &[]));
    let first = reply(&mut n);
    assert_eq!(fetch(&mut n, first, 512), content);

    // A size that is a multiple of the block size ends with an empty block.
    send(&mut n, &rrq("exact", &[]));
    let first = reply(&mut n);
    assert_eq!(fetch(&mut n, first, 512), vec![7u8; 1024]);

    send(
        &mut n,
        &rrq("/boot.img", &[("blksize", "1024"), ("tsize", "0")]),
    );
    let (op, rest) = reply(&mut n);
    assert_eq!(op, 6, "OACK");
    assert_eq!(rest, b"blksize\x001024\x00tsize\x003000\x00");
    send(&mut n, &ack(0));
    let first = reply(&mut n);
    assert_eq!(fetch(&mut n, first, 1024), content);
    assert_eq!(n.stats().malformed, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn repeated_ack_resends_the_lost_block() {
    let dir = root("resend");
    std::fs::write(dir.join("f"), vec![1u8; 1500]).unwrap();
    let mut n = server(&dir);
    send(&mut n, &rrq("f", &[]));
    let (_, b1) = reply(&mut n);
    send(&mut n, &ack(1));
    let (_, b2) = reply(&mut n);
    assert_eq!(&b2[..2], &[0, 2]);
    // Block 2 "lost": the guest repeats ACK 1 and gets block 2 again.
    send(&mut n, &ack(1));
    let (op, again) = reply(&mut n);
    assert_eq!(op, 3);
    assert_eq!(again, b2);
    assert_eq!(b1.len(), 514);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writes_missing_files_and_escapes_are_refused() {
    let dir = root("refuse");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let mut n = server(&dir);
    let mut wrq = rrq("f", &[]);
    wrq[1] = 2;
    send(&mut n, &wrq);
    let (op, rest) = reply(&mut n);
    assert_eq!((op, &rest[..2]), (5, &[0u8, 2][..]), "access violation");
    for name in ["missing", "../f", "a/../../etc/passwd"] {
        send(&mut n, &rrq(name, &[]));
        let (op, rest) = reply(&mut n);
        assert_eq!((op, &rest[..2]), (5, &[0u8, 1][..]), "{name}: not found");
    }
    // Without tftp= every request is refused.
    let mut plain = net();
    send(&mut plain, &rrq("f", &[]));
    assert_eq!(reply(&mut plain).0, 5);
    // Truncated requests are dropped and counted.
    send(&mut n, &[0, 1]);
    send(&mut n, &[0, 1, b'f', 0, b'o']);
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.stats().malformed, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The one TFTP reply over IPv6 from the virtual host's port 69 to the guest's port
/// 2000: (opcode, rest).
fn reply6(n: &mut UserNet) -> (u16, Vec<u8>) {
    let frames = drain(n);
    assert_eq!(frames.len(), 1, "one reply per request");
    let (src, dst, proto, payload, _) = parse_ip6(&frames[0]).unwrap();
    assert_eq!((src, dst, proto), (HOST_V6, GUEST_V6, IpProtocol::Udp));
    let u = smoltcp::wire::UdpPacket::new_checked(&payload[..]).unwrap();
    assert!(
        u.verify_checksum(&src.into(), &dst.into()),
        "UDP/IPv6 checksum"
    );
    assert_eq!((u.src_port(), u.dst_port()), (69, 2000));
    let p = u.payload();
    (u16::from_be_bytes([p[0], p[1]]), p[2..].to_vec())
}

#[test]
fn fetches_a_file_over_ipv6_from_the_virtual_host() {
    let dir = root("ipv6");
    let content: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.join("boot6.img"), &content).unwrap();
    let mut n = server(&dir);
    let send6 = |n: &mut UserNet, p: &[u8]| {
        n.send(&udp6((GUEST_V6, 2000), (HOST_V6, 69), p)).unwrap();
    };
    send6(&mut n, &rrq("boot6.img", &[("blksize", "1432")]));
    let (op, rest) = reply6(&mut n);
    assert_eq!(op, 6, "OACK");
    assert_eq!(rest, b"blksize\x001432\x00");
    let mut got = Vec::new();
    for block in 0u16..=2 {
        send6(&mut n, &ack(block));
        let (op, rest) = reply6(&mut n);
        assert_eq!((op, u16::from_be_bytes([rest[0], rest[1]])), (3, block + 1));
        got.extend_from_slice(&rest[2..]);
        if rest.len() - 2 < 1432 {
            break;
        }
    }
    assert_eq!(got, content);
    send6(&mut n, &ack(2));
    assert!(drain(&mut n).is_empty(), "the transfer is over");
    // A missing file gets a TFTP error over IPv6 too.
    send6(&mut n, &rrq("missing", &[]));
    let (op, rest) = reply6(&mut n);
    assert_eq!((op, &rest[..2]), (5, &[0u8, 1][..]));
    assert_eq!(n.stats().malformed, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn block_numbers_wrap_past_65535() {
    // 65540 blocks of 8 bytes and a short one: block 65536 goes out as number 0, and
    // the transfer carries on (RFC 1350 leaves it to the implementation; libslirp and
    // common clients such as iPXE and tftp-hpa wrap to 0).
    let dir = root("wrap");
    let blocks: u32 = 65_541;
    let content: Vec<u8> = (0..(blocks - 1) * 8 + 3).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big"), &content).unwrap();
    let mut n = server(&dir);
    send(&mut n, &rrq("big", &[("blksize", "8")]));
    assert_eq!(reply(&mut n), (6, b"blksize\x008\x00".to_vec()));
    send(&mut n, &ack(0));
    let mut got = Vec::with_capacity(content.len());
    let mut buf = vec![0u8; 2048];
    let mut saw_zero = false;
    for i in 1..=blocks {
        // Ethernet 14 + IPv4 20 + UDP 8, then the TFTP DATA header; the frame may be
        // padded to Ethernet's 60 bytes, so the UDP length says where it ends.
        let len = n.recv(&mut buf).unwrap().expect("a DATA block");
        let udp_len = usize::from(u16::from_be_bytes([buf[38], buf[39]]));
        assert!(34 + udp_len <= len);
        let p = &buf[42..34 + udp_len];
        assert_eq!(&p[..2], &[0, 3], "DATA");
        let num = u16::from_be_bytes([p[2], p[3]]);
        assert_eq!(num, i as u16, "block {i}");
        saw_zero |= num == 0;
        got.extend_from_slice(&p[4..]);
        send(&mut n, &ack(num));
    }
    assert!(
        n.recv(&mut buf).unwrap().is_none(),
        "nothing after the last block"
    );
    assert!(saw_zero);
    assert!(got == content, "content differs ({} bytes got)", got.len());
    assert_eq!(n.stats(), Default::default());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn blksize_below_8_is_not_acknowledged_and_large_ones_are_lowered() {
    let dir = root("blksize");
    std::fs::write(dir.join("f"), vec![5u8; 600]).unwrap();
    let mut n = server(&dir);
    // RFC 2348 allows 8..65464 and lets the server only lower the value: 4 is ignored
    // and the transfer starts at once with 512-byte blocks.
    send(&mut n, &rrq("f", &[("blksize", "4")]));
    let (op, rest) = reply(&mut n);
    assert_eq!((op, rest.len()), (3, 2 + 512));
    send(&mut n, &ack(1));
    let (op, rest) = reply(&mut n);
    assert_eq!((op, rest.len()), (3, 2 + 88));
    send(&mut n, &ack(2));
    send(&mut n, &rrq("f", &[("blksize", "65464")]));
    assert_eq!(reply(&mut n), (6, b"blksize\x001432\x00".to_vec()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_tftp_directory_is_an_error_at_start() {
    let missing = root("gone").join("not-there");
    let e = UserNet::new(UserConfig {
        tftp: Some(missing.clone()),
        ..UserConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().starts_with("tftp="), "{e}");
    assert!(e.to_string().contains("not-there"), "{e}");
    let file = root("file").join("f");
    std::fs::write(&file, b"x").unwrap();
    let e = UserNet::new(UserConfig {
        tftp: Some(file),
        ..UserConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn at_most_twenty_transfers_run_at_once() {
    let dir = root("many");
    std::fs::write(dir.join("f"), vec![9u8; 2000]).unwrap();
    let mut n = server(&dir);
    // (opcode, error code or block) of the one reply to guest port `port`.
    let ask = |n: &mut UserNet, port: u16, p: &[u8]| {
        n.send(&udp((GUEST_IP, port), (GW, 69), p)).unwrap();
        let frames = drain(n);
        assert_eq!(frames.len(), 1, "one reply to port {port}");
        let (_, dp, r) = parse_udp(&parse_ip4(&frames[0]).unwrap());
        assert_eq!(dp, port);
        (
            u16::from_be_bytes([r[0], r[1]]),
            u16::from_be_bytes([r[2], r[3]]),
        )
    };
    // libslirp's bound: 20 sessions.
    for port in 3000..3020 {
        assert_eq!(ask(&mut n, port, &rrq("f", &[])), (3, 1), "DATA 1");
    }
    assert_eq!(n.stats().refused, 0);
    assert_eq!(ask(&mut n, 3020, &rrq("f", &[])), (5, 0), "ERROR: too many");
    assert_eq!(n.stats().refused, 1);
    // A client that gives up (ERROR) frees its slot.
    n.send(&udp(
        (GUEST_IP, 3000),
        (GW, 69),
        b"\x00\x05\x00\x00stop\x00",
    ))
    .unwrap();
    assert!(drain(&mut n).is_empty());
    assert_eq!(ask(&mut n, 3020, &rrq("f", &[])), (3, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}
