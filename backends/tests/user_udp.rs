//! UDP NAT, DNS forwarding, UDP hostfwd and idle timeouts, through real host sockets on
//! 127.0.0.1.
#![cfg(feature = "user")]

mod user_util;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use smoltcp::wire::IpProtocol;
use user_util::*;
use vm_nic_backends::user::{FwdProto, UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);

fn host_socket() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// Polls until a UDP datagram for the guest arrives: (src, src port, dst port, payload).
fn guest_datagram(n: &mut UserNet) -> Option<(Ipv4Addr, u16, u16, Vec<u8>)> {
    let mut got = None;
    pump(n, T, |n| {
        for f in drain(n) {
            if let Some(ip) = parse_ip4(&f) {
                if ip.proto == IpProtocol::Udp {
                    assert_eq!(ip.dst, GUEST_IP);
                    let (sp, dp, p) = parse_udp(&ip);
                    got = Some((ip.src, sp, dp, p));
                }
            }
        }
        got.is_some()
    });
    got
}

#[test]
fn udp_to_gateway_reaches_host_loopback_and_back() {
    let (server, port) = host_socket();
    let mut n = net();
    n.send(&udp((GUEST_IP, 5000), (GW, port), b"hello"))
        .unwrap();
    let mut buf = [0u8; 64];
    let (len, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"hello");
    assert!(from.ip().is_loopback());
    let rows = n.connections();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].proto, FwdProto::Udp);
    assert!(rows[0].state.ends_with("sec"));
    // libslirp's orientation: source is the guest, destination what the guest sent to.
    assert_eq!(rows[0].source, SocketAddr::from((GUEST_IP, 5000)));
    assert_eq!(rows[0].dest, SocketAddr::from((GW, port)));
    assert!(rows[0].host.ip().is_loopback());
    server.send_to(b"world", from).unwrap();
    let (src, sp, dp, p) = guest_datagram(&mut n).expect("reply");
    assert_eq!((src, sp, dp), (GW, port, 5000));
    assert_eq!(p, b"world");
    // A second datagram from the same guest port reuses the flow (same host port).
    n.send(&udp((GUEST_IP, 5000), (GW, port), b"again"))
        .unwrap();
    let (_, from2) = server.recv_from(&mut buf).unwrap();
    assert_eq!(from2, from);
    assert_eq!(n.connections().len(), 1);
}

#[test]
fn dns_queries_go_to_the_configured_resolver() {
    let (resolver, port) = host_socket();
    let cfg = UserConfig {
        dns_resolvers: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01";
    n.send(&udp((GUEST_IP, 33333), (DNS, 53), query)).unwrap();
    assert_eq!(n.stats(), Default::default());
    let mut buf = [0u8; 512];
    let (len, from) = resolver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], query);
    let mut answer = query.to_vec();
    answer[2] = 0x81;
    answer[3] = 0x80;
    resolver.send_to(&answer, from).unwrap();
    let (src, sp, dp, p) = guest_datagram(&mut n).expect("answer");
    assert_eq!((src, sp, dp), (DNS, 53, 33333));
    assert_eq!(p, answer);
    // Another port of the DNS address goes nowhere (libslirp refuses it too), not even
    // to that port of the resolver's host.
    n.send(&udp((GUEST_IP, 33334), (DNS, port), query)).unwrap();
    assert_eq!(n.stats().ignored, 1);
    resolver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        resolver.recv_from(&mut buf).is_err(),
        "nothing reached the resolver"
    );
}

#[test]
fn idle_udp_flows_expire() {
    let (server, port) = host_socket();
    let mut cfg = UserConfig::default();
    cfg.limits.udp_idle = Duration::from_millis(150);
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&udp((GUEST_IP, 5001), (GW, port), b"x")).unwrap();
    let mut buf = [0u8; 8];
    server.recv_from(&mut buf).unwrap();
    assert_eq!(n.connections().len(), 1);
    let deadline = n.next_deadline().expect("idle timer armed");
    assert!(deadline <= std::time::Instant::now() + Duration::from_millis(150));
    assert!(pump(&mut n, T, |n| n.connections().is_empty()));
}

#[test]
fn restrict_on_drops_udp_and_flow_limit_refuses() {
    let (server, port) = host_socket();
    let cfg = UserConfig {
        restrict: true,
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&udp((GUEST_IP, 5002), (GW, port), b"x")).unwrap();
    assert_eq!(n.stats().refused, 1);
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(
        server.recv_from(&mut buf).is_err(),
        "nothing reached the host"
    );

    let mut cfg = UserConfig::default();
    cfg.limits.max_flows = 1;
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&udp((GUEST_IP, 5003), (GW, port), b"1")).unwrap();
    n.send(&udp((GUEST_IP, 5004), (GW, port), b"2")).unwrap();
    assert_eq!(n.stats().refused, 1);
    assert_eq!(n.connections().len(), 1);
    let (len, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"1");
}

#[test]
fn udp_hostfwd_delivers_and_carries_replies_back() {
    let cfg = UserConfig::from_opts(&[("hostfwd".into(), "udp:127.0.0.1:0-:7".into())]).unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    // Teach the guest's MAC first, as a booted guest would have.
    n.send(&arp_request(GUEST_IP, GW)).unwrap();
    drain(&mut n);
    let fwd = n.hostfwd_addrs()[0];
    let (peer, peer_port) = host_socket();
    peer.send_to(b"to-guest", fwd).unwrap();
    let (src, sp, dp, p) = guest_datagram(&mut n).expect("forwarded datagram");
    assert_eq!((src, sp, dp), (GW, peer_port, 7));
    assert_eq!(p, b"to-guest");
    n.send(&udp((GUEST_IP, 7), (GW, peer_port), b"to-host"))
        .unwrap();
    let mut buf = [0u8; 16];
    let (len, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"to-host");
    assert_eq!(from, fwd, "reply comes from the forwarded port");
    let table = n.info_usernet();
    let row = table
        .lines()
        .find(|l| l.contains("UDP[HOST_FORWARD]"))
        .expect("forward row");
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        fields[2..6],
        ["127.0.0.1", &fwd.port().to_string()[..], "10.0.2.15", "7"]
    );
}

#[test]
fn closed_host_port_gives_icmp_port_unreachable() {
    let port = {
        let (s, port) = host_socket();
        drop(s);
        port
    };
    let mut n = net();
    n.send(&udp((GUEST_IP, 5005), (GW, port), b"anyone?"))
        .unwrap();
    let mut got = None;
    pump(&mut n, T, |n| {
        for f in drain(n) {
            if let Some(ip) = parse_ip4(&f) {
                if ip.proto == IpProtocol::Icmp {
                    got = Some(ip);
                }
            }
        }
        got.is_some()
    });
    let ip = got.expect("ICMP error");
    assert_eq!((ip.src, ip.dst), (GW, GUEST_IP));
    let p = smoltcp::wire::Icmpv4Packet::new_checked(&ip.payload[..]).unwrap();
    assert_eq!(p.msg_type(), smoltcp::wire::Icmpv4Message::DstUnreachable);
    assert_eq!(p.msg_code(), 3, "port unreachable");
    // The quoted UDP header names the guest's ports.
    let q = &p.data()[20..24];
    assert_eq!(q, &[0x13, 0x8d, (port >> 8) as u8, port as u8]);
    // The error queue was drained: the poll fd does not stay readable (no busy loop).
    n.poll(std::time::Instant::now()).unwrap();
    let mut pfd = libc::pollfd {
        fd: n.poll_fd().unwrap(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0);
}

#[test]
fn broadcasts_reach_the_host_loopback_and_replies_come_from_the_gateway() {
    // libslirp sends a UDP broadcast to 255.255.255.255 to the host's loopback; vm-nic
    // does the same with the network's directed broadcast (10.0.2.255).
    let (server, port) = host_socket();
    let mut n = net();
    let mut buf = [0u8; 64];
    for (guest_port, bcast) in [
        (5100, Ipv4Addr::BROADCAST),
        (5101, Ipv4Addr::new(10, 0, 2, 255)),
    ] {
        n.send(&udp((GUEST_IP, guest_port), (bcast, port), b"anyone?"))
            .unwrap();
        let (len, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"anyone?", "to {bcast}");
        server.send_to(b"me", from).unwrap();
        let (src, sp, dp, p) = guest_datagram(&mut n).expect("reply");
        assert_eq!((src, sp, dp, &p[..]), (GW, port, guest_port, &b"me"[..]));
    }
    assert_eq!(n.stats(), Default::default());
}

#[test]
fn without_dns_upstream_the_hosts_resolvers_are_used() {
    // A typed config (or -netdev user without dns-upstream=) leaves the list empty: the
    // network then follows /etc/resolv.conf, 127.0.0.1:53 when it names none.
    assert!(UserConfig::default().dns_resolvers.is_empty());
    let n = net();
    let list = &n.config().dns_resolvers;
    assert!(!list.is_empty());
    assert_eq!(list, &vm_nic_backends::user::system_resolvers());
}
