//! ICMP echo to destinations outside the virtual network (here the host's 127.0.0.1):
//! through a ping socket, a raw socket, or an explicit "prohibited" answer, depending on
//! what this host allows; and each path forced inside a namespace the test creates.
#![cfg(feature = "user")]

mod netns_util;
mod user_util;

use std::net::Ipv4Addr;
use std::time::Duration;

use netns_util::{drop_capability, in_empty_netns, ip, set_ping_group_range, CAP_NET_RAW};
use smoltcp::wire::{Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpProtocol};
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

/// What this host lets an unprivileged ping do, as the user network will find out.
fn expected_mode() -> &'static str {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .map(|x| x.parse::<u64>().unwrap_or(0));
    let (lo, hi) = (it.next().unwrap_or(1), it.next().unwrap_or(0));
    // SAFETY: getgid has no arguments and cannot fail.
    let gid = u64::from(unsafe { libc::getgid() });
    if lo <= gid && gid <= hi {
        return "dgram";
    }
    // SAFETY: plain socket call; closed right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd >= 0 {
        // SAFETY: fd was just opened here.
        unsafe { libc::close(fd) };
        "raw"
    } else {
        "prohibited"
    }
}

#[test]
fn echo_to_the_outside_is_answered_or_explicitly_prohibited() {
    let mut n = net();
    let dst = Ipv4Addr::LOCALHOST;
    let mut answer = None;
    for seq in 1..=3u16 {
        n.send(&icmp_echo(dst, 0x4242, seq, b"payload-123"))
            .unwrap();
        let mut got = None;
        pump(&mut n, Duration::from_secs(5), |n| {
            for f in drain(n) {
                if let Some(ip) = parse_ip4(&f) {
                    if ip.proto == IpProtocol::Icmp {
                        got = Some(ip);
                    }
                }
            }
            got.is_some()
        });
        let ip = got.expect("an ICMP answer");
        assert_eq!(ip.dst, GUEST_IP);
        let p = Icmpv4Packet::new_checked(&ip.payload[..]).unwrap();
        let repr = Icmpv4Repr::parse(&p, &Default::default()).unwrap();
        match repr {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                assert_eq!(ip.src, dst);
                assert_eq!((ident, seq_no, data), (0x4242, seq, &b"payload-123"[..]));
                answer = Some("reply");
            }
            Icmpv4Repr::DstUnreachable { reason, .. } => {
                assert_eq!(reason, Icmpv4DstUnreachable::HostProhibited);
                assert_eq!(ip.src, GW);
                answer = Some("prohibited");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let want = if expected_mode() == "prohibited" {
        "prohibited"
    } else {
        "reply"
    };
    assert_eq!(answer, Some(want));
}

#[test]
fn restrict_on_drops_outside_pings_but_gateway_answers() {
    let mut n = UserNet::new(UserConfig {
        restrict: true,
        ..UserConfig::default()
    })
    .unwrap();
    n.send(&icmp_echo(Ipv4Addr::LOCALHOST, 1, 1, b"x")).unwrap();
    pump(&mut n, Duration::from_millis(200), |_| false);
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.stats().refused, 1);
    n.send(&icmp_echo(GW, 1, 2, b"x")).unwrap();
    assert_eq!(drain(&mut n).len(), 1);
}

/// The one ICMP message the guest gets for its echo to 127.0.0.1: (source, message).
fn answer_from_loopback(n: &mut UserNet, ident: u16) -> (Ipv4Addr, Vec<u8>) {
    n.send(&icmp_echo(Ipv4Addr::LOCALHOST, ident, 1, b"in-netns"))
        .unwrap();
    let got = wait_for(n, Duration::from_secs(5), |f| {
        parse_ip4(f).filter(|ip| ip.proto == IpProtocol::Icmp)
    });
    assert_eq!(got.len(), 1, "one answer");
    (got[0].src, got[0].payload.clone())
}

#[test]
fn ping_socket_and_prohibited_paths_in_a_netns() {
    // Ping sockets allowed, raw ones impossible: the reply comes through the ping
    // socket with the guest's identifier put back.
    in_empty_netns(|| {
        ip(&["link", "set", "lo", "up"]);
        set_ping_group_range("0 0");
        drop_capability(CAP_NET_RAW);
        let mut n = net();
        let (src, msg) = answer_from_loopback(&mut n, 0x4243);
        let p = Icmpv4Packet::new_checked(&msg[..]).unwrap();
        let r = Icmpv4Repr::parse(&p, &Default::default()).unwrap();
        let want = Icmpv4Repr::EchoReply {
            ident: 0x4243,
            seq_no: 1,
            data: b"in-netns",
        };
        assert_eq!((src, r), (Ipv4Addr::LOCALHOST, want));
    });
    // Neither: "host administratively prohibited" from the gateway.
    in_empty_netns(|| {
        ip(&["link", "set", "lo", "up"]);
        set_ping_group_range("1 0");
        drop_capability(CAP_NET_RAW);
        let mut n = net();
        let (src, msg) = answer_from_loopback(&mut n, 1);
        assert_eq!((src, msg[0], msg[1]), (GW, 3, 10));
        assert_eq!(n.stats().refused, 1);
    });
}
