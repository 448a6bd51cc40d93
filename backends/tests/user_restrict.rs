//! restrict=on, as libslirp defines it (udp.c, tcp_input.c, ip_icmp.c): the guest keeps
//! the virtual host's own services (DHCP, TFTP, echo replies from the gateway and DNS
//! addresses), hostfwd and guestfwd connections; everything else from the guest is
//! dropped: UDP (DNS to the virtual DNS address included) silently, TCP with a reset,
//! echo requests to other addresses silently.
#![cfg(feature = "user")]

mod user_util;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use smoltcp::wire::IpProtocol;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);

fn restricted(extra: &[(&str, &str)]) -> UserNet {
    let mut o = vec![("restrict".to_string(), "on".to_string())];
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    UserNet::new(UserConfig::from_opts(&o).unwrap()).unwrap()
}

/// The UDP datagrams waiting for the guest: (source, source port, payload).
fn udp_replies(n: &mut UserNet) -> Vec<(Ipv4Addr, u16, Vec<u8>)> {
    drain(n)
        .iter()
        .filter_map(|f| parse_ip4(f))
        .filter(|ip| ip.proto == IpProtocol::Udp)
        .map(|ip| {
            let (sp, _, p) = parse_udp(&ip);
            (ip.src, sp, p)
        })
        .collect()
}

/// A minimal DHCPDISCOVER (RFC 2131 fixed fields, magic cookie, option 53 = 1).
fn dhcp_discover() -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6;
    b[4..8].copy_from_slice(&0xfeed_f00du32.to_be_bytes());
    b[28..34].copy_from_slice(&GUEST_MAC.0);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, 1, 255]);
    udp((Ipv4Addr::UNSPECIFIED, 68), (Ipv4Addr::BROADCAST, 67), &b)
}

#[test]
fn dhcp_and_tftp_are_still_served() {
    let root = std::env::temp_dir().join(format!("vm-nic-restrict-tftp-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("boot.bin"), b"kernel").unwrap();
    let mut n = restricted(&[("tftp", root.to_str().unwrap())]);
    n.send(&dhcp_discover()).unwrap();
    let r = udp_replies(&mut n);
    assert_eq!(r.len(), 1, "one DHCPOFFER");
    assert_eq!((r[0].0, r[0].1), (GW, 67));
    n.send(&udp(
        (GUEST_IP, 2000),
        (GW, 69),
        b"\x00\x01boot.bin\x00octet\x00",
    ))
    .unwrap();
    let r = udp_replies(&mut n);
    assert_eq!(r.len(), 1, "one TFTP DATA");
    assert_eq!(r[0].2, b"\x00\x03\x00\x01kernel");
    assert_eq!(n.stats().refused, 0);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn dns_to_the_virtual_dns_address_is_dropped() {
    let resolver = UdpSocket::bind("127.0.0.1:0").unwrap();
    resolver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = resolver.local_addr().unwrap().to_string();
    let mut n = restricted(&[("dns-upstream", &addr)]);
    n.send(&udp((GUEST_IP, 5353), (DNS, 53), b"\x12\x34query"))
        .unwrap();
    pump(&mut n, Duration::from_millis(100), |_| false);
    assert!(drain(&mut n).is_empty(), "no answer, no ICMP error");
    assert!(
        resolver.recv_from(&mut [0u8; 64]).is_err(),
        "the query never reached the resolver"
    );
    assert_eq!(n.stats().refused, 1);
    assert!(n.connections().is_empty());
}

#[test]
fn echo_to_the_virtual_hosts_is_answered_and_others_dropped() {
    let mut n = restricted(&[]);
    for (dst, answered) in [
        (GW, true),
        (DNS, true),
        (Ipv4Addr::new(192, 0, 2, 1), false),
    ] {
        n.send(&icmp_echo(dst, 7, 1, b"x")).unwrap();
        pump(&mut n, Duration::from_millis(50), |_| false);
        let replies: Vec<_> = drain(&mut n)
            .iter()
            .filter_map(|f| parse_ip4(f))
            .filter(|ip| ip.proto == IpProtocol::Icmp && ip.src == dst)
            .collect();
        assert_eq!(replies.len(), usize::from(answered), "echo to {dst}");
        if answered {
            assert_eq!(replies[0].payload[0], 0, "echo reply");
        }
    }
}

#[test]
fn tcp_to_the_gateway_and_dns_is_reset_without_a_host_connection() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let resolver = TcpListener::bind("127.0.0.1:0").unwrap();
    resolver.set_nonblocking(true).unwrap();
    let addr = resolver.local_addr().unwrap().to_string();
    let mut n = restricted(&[("dns-upstream", &addr)]);
    for (i, (dst, dport)) in [(GW, port), (DNS, 53)].into_iter().enumerate() {
        let g = GuestTcp::new(42000 + i as u16, (dst, dport));
        n.send(&g.syn()).unwrap();
        let segs = wait_segs(&mut n, &g, T);
        assert!(segs[0].rst && !segs[0].syn, "{dst}: {:?}", segs[0]);
    }
    pump(&mut n, Duration::from_millis(50), |_| false);
    assert!(server.accept().is_err() && resolver.accept().is_err());
    assert!(n.connections().is_empty());
}

#[test]
fn hostfwd_still_carries_tcp_and_udp_replies() {
    let mut n = restricted(&[
        ("hostfwd", "tcp:127.0.0.1:0-:22"),
        ("hostfwd", "udp:127.0.0.1:0-:53"),
    ]);
    n.send(&arp_request(GUEST_IP, GW)).unwrap();
    drain(&mut n);
    let fwd = n.hostfwd_addrs();
    let (tcp_fwd, udp_fwd) = (fwd[0], fwd[1]);

    // TCP: the host connects, the guest answers the SYN and sends a banner.
    let mut host = TcpStream::connect(tcp_fwd).unwrap();
    host.set_read_timeout(Some(T)).unwrap();
    let mut syn = None;
    pump(&mut n, T, |n| {
        syn = drain(n)
            .iter()
            .filter_map(|f| parse_tcp(f))
            .find(|s| s.syn && s.dport == 22);
        syn.is_some()
    });
    let syn = syn.expect("SYN to the guest");
    let mut g = GuestTcp::new(22, (syn.src, syn.sport));
    g.ack = syn.seq.wrapping_add(1);
    n.send(&g.syn_ack()).unwrap();
    g.seq += 1;
    n.send(&g.data(b"SSH-2.0-guest\r\n")).unwrap();
    let mut banner = [0u8; 15];
    let mut got = 0;
    pump(&mut n, T, |_| {
        host.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        got += host.read(&mut banner[got..]).unwrap_or(0);
        got == banner.len()
    });
    assert_eq!(&banner, b"SSH-2.0-guest\r\n");

    // UDP: a host datagram in, the guest's reply back out. libslirp drops the reply
    // under restrict=on (udp_input checks restrict before looking up the forward);
    // QEMU documents that restrict does not affect explicit forwards, and so does
    // vm-nic.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(T)).unwrap();
    peer.send_to(b"q", udp_fwd).unwrap();
    let mut into_guest = Vec::new();
    pump(&mut n, T, |n| {
        into_guest.extend(udp_replies(n));
        !into_guest.is_empty()
    });
    let (src, sport, payload) = into_guest.remove(0);
    assert_eq!(payload, b"q");
    n.send(&udp((GUEST_IP, 53), (src, sport), b"a")).unwrap();
    let mut buf = [0u8; 4];
    let (len, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&b"a"[..], udp_fwd));
}
