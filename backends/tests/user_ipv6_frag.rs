//! Reassembly of the guest's IPv6 fragments (RFC 8200 4.5): a large UDP datagram over
//! IPv6 reaches its host socket on ::1, a large echo to the virtual host is answered, and
//! crafted fragments (overlaps, floods, bad lengths, nested Fragment headers) are
//! counted and dropped without delivering anything.
#![cfg(feature = "user")]

mod user_util;

use std::io::ErrorKind;
use std::net::{Ipv6Addr, UdpSocket};
use std::time::Duration;

use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::UserNet;
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(5);

fn server() -> UdpSocket {
    let s = UdpSocket::bind("[::1]:0").unwrap_or_else(|e| {
        panic!("this test needs IPv6 on the loopback (::1): binding [::1]:0 failed: {e}")
    });
    s.set_read_timeout(Some(T)).unwrap();
    s
}

/// A UDP header and payload from the guest to (HOST_V6, port), checksummed.
fn udp_msg(port: u16, payload: &[u8]) -> Vec<u8> {
    udp_bytes((GUEST_V6, 5000), (HOST_V6, port), payload)
}

/// One fragment from the guest to `dst`: IPv6 header, Fragment header (next header
/// `nh`, byte offset `off`, M flag `more`, identification `ident`), then `body`.
fn frag6(
    dst: Ipv6Addr,
    nh: IpProtocol,
    off: usize,
    more: bool,
    ident: u32,
    body: &[u8],
) -> Vec<u8> {
    let mut p = vec![u8::from(nh), 0];
    p.extend_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(body);
    ipv6_frame(GUEST_V6, dst, IpProtocol::Ipv6Frag, 64, &p)
}

/// `msg` (a `nh` message) to `dst` cut into fragments of `max` bytes (a multiple of 8).
fn fragments(dst: Ipv6Addr, nh: IpProtocol, ident: u32, msg: &[u8], max: usize) -> Vec<Vec<u8>> {
    msg.chunks(max)
        .enumerate()
        .map(|(k, c)| {
            let off = k * max;
            frag6(dst, nh, off, off + c.len() < msg.len(), ident, c)
        })
        .collect()
}

fn nothing_arrives(s: &UdpSocket, n: &mut UserNet) {
    pump(n, Duration::from_millis(100), |_| false);
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 70000];
    let r = s.recv_from(&mut buf);
    assert_eq!(
        r.map(|(len, _)| len).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "nothing may be delivered"
    );
    s.set_nonblocking(false).unwrap();
}

#[test]
fn large_udp_datagram_over_ipv6_is_reassembled_and_delivered() {
    let s = server();
    let port = s.local_addr().unwrap().port();
    let mut n = net();
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let mut frags = fragments(
        HOST_V6,
        IpProtocol::Udp,
        0x1234,
        &udp_msg(port, &data),
        1232,
    );
    assert_eq!(frags.len(), 4);
    frags.swap(0, 2); // out of order
    for f in &frags {
        n.send(f).unwrap();
    }
    let mut buf = vec![0u8; 70000];
    let (len, _) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], &data[..], "the datagram, whole");
    let st = n.stats();
    assert_eq!((st.fragments, st.refused, st.malformed), (4, 0, 0));

    // An atomic fragment (offset 0, no more fragments, RFC 6946) is a whole datagram.
    n.send(&frag6(
        HOST_V6,
        IpProtocol::Udp,
        0,
        false,
        7,
        &udp_msg(port, b"atomic"),
    ))
    .unwrap();
    let (len, _) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"atomic");
}

#[test]
fn big_echo6_to_the_virtual_host_is_reassembled_and_answered_in_fragments() {
    let mut n = net();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let req = Icmpv6Repr::EchoRequest {
        ident: 5,
        seq_no: 6,
        data: &data,
    };
    let msg = icmp6_bytes(GUEST_V6, HOST_V6, &req);
    let mut frags = fragments(HOST_V6, IpProtocol::Icmpv6, 99, &msg, 1448);
    frags.reverse();
    for f in &frags {
        n.send(f).unwrap();
    }
    let replies = drain(&mut n);
    assert_eq!(
        replies.len(),
        3,
        "the 3008-byte reply needs three fragments"
    );
    let mut whole = vec![0u8; msg.len()];
    for f in &replies {
        assert!(f.len() <= 1514, "each fragment fits the MTU");
        let (src, dst, proto, p, _) = parse_ip6(f).unwrap();
        assert_eq!((src, dst, proto), (HOST_V6, GUEST_V6, IpProtocol::Ipv6Frag));
        let off = usize::from(u16::from_be_bytes([p[2], p[3]]) & !7);
        whole[off..off + p.len() - 8].copy_from_slice(&p[8..]);
    }
    let p = Icmpv6Packet::new_checked(&whole[..]).unwrap();
    let r = Icmpv6Repr::parse(&HOST_V6, &GUEST_V6, &p, &Default::default()).unwrap();
    let want = Icmpv6Repr::EchoReply {
        ident: 5,
        seq_no: 6,
        data: &data,
    };
    assert_eq!(r, want);
    assert_eq!(n.stats().fragments, 3);
}

#[test]
fn hostile_ipv6_fragments_are_counted_and_dropped() {
    let s = server();
    let port = s.local_addr().unwrap().port();
    let mut n = net();
    let msg = udp_msg(port, &[0x5a; 40]); // 48 bytes
    let udp = IpProtocol::Udp;
    let mut refused = 0;
    let mut check = |n: &mut UserNet, more: u64, why: &str| {
        refused += more;
        assert_eq!(n.stats().refused, refused, "{why}");
    };

    // Overlap (RFC 5722): the whole datagram goes, the rest of it completes nothing.
    n.send(&frag6(HOST_V6, udp, 0, true, 1, &msg[..24]))
        .unwrap();
    n.send(&frag6(HOST_V6, udp, 16, true, 1, &msg[16..32]))
        .unwrap();
    check(&mut n, 1, "overlap");
    n.send(&frag6(HOST_V6, udp, 24, false, 1, &msg[24..]))
        .unwrap();
    check(&mut n, 0, "the tail is kept, waiting");
    // The same fragment twice.
    n.send(&frag6(HOST_V6, udp, 0, true, 2, &msg[..16]))
        .unwrap();
    n.send(&frag6(HOST_V6, udp, 0, true, 2, &msg[..16]))
        .unwrap();
    check(&mut n, 1, "duplicate");
    n.send(&frag6(HOST_V6, udp, 16, false, 2, &msg[16..]))
        .unwrap();
    // A middle fragment whose length is no multiple of 8.
    n.send(&frag6(HOST_V6, udp, 0, true, 3, &msg[..20]))
        .unwrap();
    check(&mut n, 1, "odd length");
    // Past the 65535 bytes a payload length can describe.
    n.send(&frag6(HOST_V6, udp, 65528, false, 4, &[0; 16]))
        .unwrap();
    check(&mut n, 1, "too long");
    // A datagram in too many pieces: the one past the bound drops it.
    for k in 0..300usize {
        n.send(&frag6(HOST_V6, udp, 8 + k * 8, true, 5, &[0; 8]))
            .unwrap();
    }
    check(&mut n, 1, "too many fragments");
    nothing_arrives(&s, &mut n);

    // A reassembled packet that holds another Fragment header, a truncated Fragment
    // header, a fragmented neighbour solicitation (RFC 6980): malformed.
    let mut inner = vec![u8::from(udp), 0, 0, 0, 0, 0, 0, 9];
    inner.extend_from_slice(&msg);
    let nested = fragments(HOST_V6, IpProtocol::Ipv6Frag, 6, &inner, 32);
    for f in &nested {
        n.send(f).unwrap();
    }
    n.send(&ipv6_frame(
        GUEST_V6,
        HOST_V6,
        IpProtocol::Ipv6Frag,
        64,
        &[17, 0, 0],
    ))
    .unwrap();
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: HOST_V6,
        lladdr: Some(GUEST_MAC.into()),
    });
    let nsb = icmp6_bytes(GUEST_V6, HOST_V6, &ns);
    for mut f in fragments(HOST_V6, IpProtocol::Icmpv6, 7, &nsb, 16) {
        f[14 + 7] = 255; // hop limit of an on-link ND message
        n.send(&f).unwrap();
    }
    assert_eq!(n.stats().malformed, 3);
    assert!(drain(&mut n).is_empty(), "no answer to any of it");
    nothing_arrives(&s, &mut n);

    // Incomplete datagrams are bounded: with 16 waiting the next is refused.
    let mut n = net();
    for id in 0..16 {
        n.send(&frag6(HOST_V6, udp, 0, true, 100 + id, &msg[..16]))
            .unwrap();
    }
    assert_eq!(n.stats().refused, 0);
    n.send(&frag6(HOST_V6, udp, 0, true, 200, &msg[..16]))
        .unwrap();
    assert_eq!(n.stats().refused, 1);
    // They expire (30 s); after that a datagram reassembles again.
    n.poll(std::time::Instant::now() + Duration::from_secs(31))
        .unwrap();
    for f in fragments(HOST_V6, udp, 300, &msg, 16) {
        n.send(&f).unwrap();
    }
    let mut buf = [0u8; 64];
    let (len, _) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], &[0x5a; 40]);
}
