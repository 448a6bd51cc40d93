//! ICMPv6 echo to destinations outside the virtual network, inside network namespaces
//! the tests create (needs root): the far end is an address on the namespace's loopback,
//! and the namespace's `net.ipv4.ping_group_range` and the test thread's CAP_NET_RAW
//! choose the path: a ping socket, a raw ICMPv6 socket, or "administratively prohibited".
#![cfg(feature = "user")]

mod netns_util;
mod user_util;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use netns_util::{drop_capability, in_empty_netns, ip, set_ping_group_range, CAP_NET_RAW};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// The far end: an address the test puts on its namespace's loopback.
const FAR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const T: Duration = Duration::from_secs(5);

/// Inside the test's fresh namespace: brings up the loopback with [`FAR`] on it and sets
/// the namespace's ping group range.
fn setup_netns(ping_groups: &str) {
    ip(&["link", "set", "lo", "up"]);
    ip(&["-6", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad"]);
    set_ping_group_range(ping_groups);
    wait_until_local(FAR);
}

/// Waits (at most 2 s) until `a` delivers locally: the kernel installs the local route
/// of a new address a moment after `ip addr add` returns.
fn wait_until_local(a: Ipv6Addr) {
    let end = Instant::now() + Duration::from_secs(2);
    for _ in 0..200 {
        let s = std::net::UdpSocket::bind((a, 0));
        if let Ok(s) = s {
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let to = s.local_addr().unwrap();
            let mut b = [0u8; 4];
            if s.send_to(b"up", to).is_ok() && s.recv_from(&mut b).is_ok() {
                return;
            }
        }
        assert!(Instant::now() < end, "{a} never became local");
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{a} never became local");
}

/// Drops CAP_NET_RAW from this thread only, so raw sockets are refused to it.
fn drop_cap_net_raw() {
    drop_capability(CAP_NET_RAW);
    // SAFETY: plain socket call; closed at once if it (wrongly) succeeds.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) };
    if fd >= 0 {
        // SAFETY: fd was just opened here.
        unsafe { libc::close(fd) };
        panic!("a raw socket still opens without CAP_NET_RAW");
    }
}

fn echo6(dst: Ipv6Addr, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let req = Icmpv6Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    icmp6_frame(GUEST_V6, dst, 64, &req)
}

/// The ICMPv6 messages sent to the guest within `limit`: (source, raw message), each
/// checksum verified over the IPv6 pseudo-header.
fn icmp6_answers(n: &mut UserNet, limit: Duration) -> Vec<(Ipv6Addr, Vec<u8>)> {
    wait_for(n, limit, |f| {
        let (src, dst, proto, raw, eth_dst) = parse_ip6(f)?;
        if proto != IpProtocol::Icmpv6 {
            return None;
        }
        assert_eq!((dst, eth_dst), (GUEST_V6, GUEST_MAC));
        let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
        assert!(p.verify_checksum(&src, &dst), "ICMPv6 checksum");
        Some((src, raw))
    })
}

/// Pings [`FAR`] three times and checks each echo reply: from FAR, the guest's
/// identifier, sequence number and data.
fn expect_replies(n: &mut UserNet) {
    for seq in 1..=3u16 {
        n.send(&echo6(FAR, 0x4242, seq, b"payload-six")).unwrap();
        let got = icmp6_answers(n, T);
        assert_eq!(got.len(), 1, "one answer to echo {seq}");
        let (src, raw) = &got[0];
        assert_eq!(*src, FAR);
        let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
        let r = Icmpv6Repr::parse(src, &GUEST_V6, &p, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(
            r,
            Icmpv6Repr::EchoReply {
                ident: 0x4242,
                seq_no: seq,
                data: b"payload-six",
            }
        );
    }
}

#[test]
fn echo6_to_the_outside_goes_through_a_ping_socket_and_idles_out() {
    in_empty_netns(|| {
        // gid 0 (root) may open ping sockets; raw ones are impossible without the cap.
        setup_netns("0 0");
        drop_cap_net_raw();
        let mut n = net();
        // A malformed echo (bad checksum) is counted and opens nothing.
        let mut bad = echo6(FAR, 1, 1, b"x");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        n.send(&bad).unwrap();
        assert!(icmp6_answers(&mut n, Duration::from_millis(100)).is_empty());
        assert_eq!(n.stats().malformed, 1);
        let t0 = Instant::now();
        expect_replies(&mut n);
        // The flow's socket is closed after 10 s without traffic: no deadline is left
        // before the next router advertisement (200 s or later).
        let idle = n.next_deadline().expect("the ping flow's idle timeout");
        assert!(idle < t0 + Duration::from_secs(15));
        n.poll(t0 + Duration::from_secs(60)).unwrap();
        let next = n.next_deadline().unwrap();
        assert!(next > t0 + Duration::from_secs(100), "ping flow kept");
        // A new echo opens a new flow and is answered again.
        expect_replies(&mut n);
        assert_eq!(n.stats().refused, 0);
    });
}

#[test]
fn echo6_falls_back_to_a_raw_socket_when_ping_sockets_are_forbidden() {
    in_empty_netns(|| {
        setup_netns("1 0");
        let mut n = net();
        expect_replies(&mut n);
        // Two guests' identifiers interleaved on the one raw socket.
        n.send(&echo6(FAR, 7, 1, b"a")).unwrap();
        n.send(&echo6(FAR, 8, 1, b"b")).unwrap();
        let mut idents: Vec<u16> = Vec::new();
        pump(&mut n, T, |n| {
            for f in drain(n) {
                let (src, dst, _, raw, _) = parse_ip6(&f).unwrap();
                let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
                let r = Icmpv6Repr::parse(&src, &dst, &p, &Default::default()).unwrap();
                if let Icmpv6Repr::EchoReply { ident, data, .. } = r {
                    assert_eq!(data, if ident == 7 { b"a" } else { b"b" });
                    idents.push(ident);
                }
            }
            idents.len() == 2
        });
        idents.sort();
        assert_eq!(idents, [7, 8]);
    });
}

#[test]
fn echo6_is_administratively_prohibited_without_ping_or_raw_sockets() {
    in_empty_netns(|| {
        setup_netns("1 0");
        drop_cap_net_raw();
        let mut n = net();
        for seq in 1..=2u16 {
            n.send(&echo6(FAR, 0x77, seq, b"denied")).unwrap();
            let got = icmp6_answers(&mut n, T);
            assert_eq!(got.len(), 1);
            let (src, raw) = &got[0];
            assert_eq!(*src, ROUTER_LL);
            // Destination unreachable (1), administratively prohibited (1), quoting the
            // echo's IPv6 header and its first 8 bytes.
            assert_eq!((raw[0], raw[1]), (1, 1));
            let quoted = Ipv6Packet::new_unchecked(&raw[8..]);
            assert_eq!((quoted.src_addr(), quoted.dst_addr()), (GUEST_V6, FAR));
            assert_eq!(quoted.next_header(), IpProtocol::Icmpv6);
            assert_eq!(usize::from(quoted.payload_len()), 8 + b"denied".len());
            assert_eq!(raw[48], 128, "the quoted echo request");
            assert_eq!(&raw[52..56], &[0, 0x77, 0, seq as u8]);
        }
        assert_eq!(n.stats().refused, 2);
        // The virtual host answers its own echoes all the same.
        n.send(&echo6(HOST_V6, 1, 1, b"here")).unwrap();
        let got = icmp6_answers(&mut n, T);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1[0]), (HOST_V6, 129));
    });
}

#[test]
fn restrict_on_refuses_outside_echo6_but_the_virtual_host_answers() {
    let mut n = UserNet::new(UserConfig {
        restrict: true,
        ..UserConfig::default()
    })
    .unwrap();
    n.send(&echo6(FAR, 1, 1, b"x")).unwrap();
    assert!(icmp6_answers(&mut n, Duration::from_millis(200)).is_empty());
    assert_eq!((n.stats().refused, n.stats().ignored), (1, 0));
    n.send(&echo6(HOST_V6, 1, 2, b"x")).unwrap();
    assert_eq!(icmp6_answers(&mut n, T).len(), 1);
}
