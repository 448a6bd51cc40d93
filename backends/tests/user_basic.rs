//! The first slice of `-netdev user`: ARP, DHCP, ICMP echo of the virtual hosts, and
//! malformed frames (dropped and counted, never a panic).
#![cfg(feature = "user")]

mod user_util;

use std::net::Ipv4Addr;

use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{self, UserConfig, UserNet};
use vm_nic_backends::NetBackend;

fn dhcp_msg(kind: DhcpMessageType, broadcast: bool, requested: Option<Ipv4Addr>) -> Vec<u8> {
    dhcp_frame(&DhcpRepr {
        message_type: kind,
        broadcast,
        requested_ip: requested,
        client_identifier: Some(GUEST_MAC),
        server_identifier: requested.map(|_| GW),
        parameter_request_list: Some(&[1, 3, 6, 12, 15, 28, 42]),
        max_size: Some(576),
        ..dhcp_discover(GUEST_MAC)
    })
}

struct Reply {
    ip: Ip4,
    raw: Vec<u8>,
}

impl Reply {
    fn pkt(&self) -> DhcpPacket<&[u8]> {
        DhcpPacket::new_checked(&self.raw[..]).unwrap()
    }
    fn option(&self, kind: u8) -> Option<Vec<u8>> {
        let p = self.pkt();
        let found = p
            .options()
            .find(|o| o.kind == kind)
            .map(|o| o.data.to_vec());
        found
    }
}

fn one_dhcp_reply(n: &mut UserNet) -> Reply {
    let frames = drain(n);
    assert_eq!(frames.len(), 1, "exactly one DHCP reply");
    let ip = parse_ip4(&frames[0]).unwrap();
    let (sp, dp, raw) = parse_udp(&ip);
    assert_eq!((sp, dp), (67, 68));
    Reply { ip, raw }
}

#[test]
fn dhcp_discover_offer_request_ack() {
    let mut n = net();
    n.send(&dhcp_msg(DhcpMessageType::Discover, false, None))
        .unwrap();
    let offer = one_dhcp_reply(&mut n);
    let p = offer.pkt();
    let r = DhcpRepr::parse(&p).unwrap();
    assert_eq!(r.message_type, DhcpMessageType::Offer);
    assert_eq!(r.transaction_id, 0x1234_5678);
    assert_eq!(r.your_ip, GUEST_IP);
    assert_eq!(r.client_hardware_address, GUEST_MAC);
    assert_eq!(r.server_identifier, Some(GW));
    assert_eq!(r.router, Some(GW));
    assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(r.dns_servers.as_ref().unwrap().as_slice(), &[DNS]);
    assert_eq!(r.lease_duration, Some(86400));
    // No broadcast flag: unicast to the offered address at the client's MAC.
    assert_eq!(offer.ip.eth_dst, GUEST_MAC);
    assert_eq!(offer.ip.eth_src, GW_MAC);
    assert_eq!((offer.ip.src, offer.ip.dst), (GW, GUEST_IP));
    assert!(offer.raw.len() >= 300, "BOOTP minimum size");

    n.send(&dhcp_msg(DhcpMessageType::Request, false, Some(GUEST_IP)))
        .unwrap();
    let ack = one_dhcp_reply(&mut n);
    let p = ack.pkt();
    let r = DhcpRepr::parse(&p).unwrap();
    assert_eq!(r.message_type, DhcpMessageType::Ack);
    assert_eq!(r.your_ip, GUEST_IP);
    assert_eq!(r.lease_duration, Some(86400));
    assert_eq!(n.stats(), Default::default());
}

#[test]
fn dhcp_broadcast_flag_gets_broadcast_reply() {
    let mut n = net();
    n.send(&dhcp_msg(DhcpMessageType::Discover, true, None))
        .unwrap();
    let offer = one_dhcp_reply(&mut n);
    assert_eq!(offer.ip.eth_dst, EthernetAddress::BROADCAST);
    assert_eq!(offer.ip.dst, Ipv4Addr::BROADCAST);
    let p = offer.pkt();
    assert!(DhcpRepr::parse(&p).unwrap().broadcast);
}

#[test]
fn dhcp_request_for_foreign_address_is_nakked() {
    let mut n = net();
    n.send(&dhcp_msg(
        DhcpMessageType::Request,
        false,
        Some(Ipv4Addr::new(10, 0, 2, 200)),
    ))
    .unwrap();
    let nak = one_dhcp_reply(&mut n);
    let p = nak.pkt();
    assert_eq!(
        DhcpRepr::parse(&p).unwrap().message_type,
        DhcpMessageType::Nak
    );
    assert_eq!(nak.ip.dst, Ipv4Addr::BROADCAST);
}

#[test]
fn dhcp_second_client_gets_next_address_and_options() {
    let cfg = UserConfig::from_opts(&[
        ("hostname".into(), "vm1".into()),
        ("domainname".into(), "example.test".into()),
        ("dnssearch".into(), "a.test".into()),
        ("bootfile".into(), "pxelinux.0".into()),
    ])
    .unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    // Another client first takes .15.
    let mut other = dhcp_msg(DhcpMessageType::Discover, false, None);
    // chaddr sits at UDP payload offset 28; the frame's UDP payload starts at 14+20+8.
    other[42 + 28 + 5] = 0x99;
    other[6 + 5] = 0x99;
    // Fix the UDP checksum by rebuilding instead: zero means "none" for IPv4.
    other[14 + 20 + 6] = 0;
    other[14 + 20 + 7] = 0;
    n.send(&other).unwrap();
    let first = one_dhcp_reply(&mut n);
    let p = first.pkt();
    assert_eq!(DhcpRepr::parse(&p).unwrap().your_ip, GUEST_IP);
    n.send(&dhcp_msg(DhcpMessageType::Discover, false, None))
        .unwrap();
    let second = one_dhcp_reply(&mut n);
    let p = second.pkt();
    assert_eq!(
        DhcpRepr::parse(&p).unwrap().your_ip,
        Ipv4Addr::new(10, 0, 2, 16)
    );
    assert_eq!(second.option(12).unwrap(), b"vm1");
    assert_eq!(second.option(15).unwrap(), b"example.test");
    assert_eq!(second.option(119).unwrap(), b"\x01a\x04test\x00");
    assert_eq!(second.option(67).unwrap(), b"pxelinux.0");
    assert_eq!(&second.raw[108..118], b"pxelinux.0");
}

#[test]
fn arp_for_gateway_and_dns_only() {
    let mut n = net();
    for (target, answered) in [
        (GW, true),
        (DNS, true),
        (Ipv4Addr::new(10, 0, 2, 77), false),
    ] {
        n.send(&arp_request(GUEST_IP, target)).unwrap();
        let frames = drain(&mut n);
        if !answered {
            assert!(frames.is_empty());
            continue;
        }
        assert_eq!(frames.len(), 1);
        let e = EthernetFrame::new_checked(&frames[0][..]).unwrap();
        assert_eq!(e.dst_addr(), GUEST_MAC);
        let r = ArpRepr::parse(&ArpPacket::new_checked(e.payload()).unwrap()).unwrap();
        let o = target.octets();
        assert_eq!(
            r,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress([0x52, 0x55, o[0], o[1], o[2], o[3]]),
                source_protocol_addr: target,
                target_hardware_addr: GUEST_MAC,
                target_protocol_addr: GUEST_IP,
            }
        );
        assert!(frames[0].len() >= 60, "padded to the Ethernet minimum");
    }
}

#[test]
fn ping_gateway_and_dns() {
    let mut n = net();
    for dst in [GW, DNS] {
        n.send(&icmp_echo(dst, 0x77, 3, b"abcdefgh")).unwrap();
        let frames = drain(&mut n);
        assert_eq!(frames.len(), 1);
        let ip = parse_ip4(&frames[0]).unwrap();
        assert_eq!((ip.src, ip.dst, ip.eth_dst), (dst, GUEST_IP, GUEST_MAC));
        let p = Icmpv4Packet::new_checked(&ip.payload[..]).unwrap();
        let r = Icmpv4Repr::parse(&p, &Default::default()).unwrap();
        assert_eq!(
            r,
            Icmpv4Repr::EchoReply {
                ident: 0x77,
                seq_no: 3,
                data: b"abcdefgh"
            }
        );
    }
    let c = n.counters();
    assert_eq!((c.sent_frames, c.received_frames, c.dropped), (2, 2, 0));
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let mut n = net();
    let good_ping = icmp_echo(GW, 1, 1, b"x");
    let good_dhcp = dhcp_msg(DhcpMessageType::Discover, false, None);
    let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0; 5], good_ping[..20].to_vec()];
    // Every truncation of a valid ping and DHCP frame.
    for cut in (14..good_ping.len()).step_by(3) {
        cases.push(good_ping[..cut].to_vec());
    }
    for cut in (14..good_dhcp.len()).step_by(17) {
        cases.push(good_dhcp[..cut].to_vec());
    }
    let mut bad = good_ping.clone();
    bad[14 + 10] ^= 0xff; // IP header checksum
    cases.push(bad);
    let mut bad = good_ping.clone();
    bad[14 + 3] = 0xff; // total length beyond the frame
    cases.push(bad);
    let mut bad = good_ping.clone();
    bad[14] = 0x43; // IHL 3
    cases.push(bad);
    let mut bad = good_ping.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55; // ICMP checksum
    cases.push(bad);
    let mut bad = good_dhcp.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55; // UDP checksum
    cases.push(bad);
    let mut bad = good_dhcp.clone();
    bad[14 + 20 + 4] = 0xff; // UDP length beyond the packet
    cases.push(bad);
    let count = cases.len() as u64;
    for c in &cases {
        n.send(c).unwrap();
    }
    assert!(drain(&mut n).is_empty(), "no reply to a malformed frame");
    let s = n.stats();
    assert_eq!(s.malformed, count, "{s:?}");
    assert_eq!(n.counters().dropped, count);
}

/// Splits the IPv4 packet in `frame` into fragments of at most `max` payload bytes.
fn fragment(frame: &[u8], max: usize) -> Vec<Vec<u8>> {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let payload = ip.payload().to_vec();
    let mut out = Vec::new();
    for (k, chunk) in payload.chunks(max).enumerate() {
        let mut p = frame[14..34].to_vec();
        p.extend_from_slice(chunk);
        let mut f = Ipv4Packet::new_unchecked(&mut p[..]);
        f.set_total_len((20 + chunk.len()) as u16);
        f.set_ident(0x4242);
        f.set_dont_frag(false);
        f.set_more_frags((k + 1) * max < payload.len());
        f.set_frag_offset((k * max) as u16);
        f.fill_checksum();
        out.push(eth(GW_MAC, EthernetProtocol::Ipv4, &p));
    }
    out
}

#[test]
fn big_ping_is_reassembled_and_answered_in_fragments() {
    let mut n = net();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let mut frags = fragment(&icmp_echo(GW, 5, 6, &data), 1480);
    frags.reverse(); // out of order
    assert_eq!(frags.len(), 3);
    for f in &frags {
        n.send(f).unwrap();
    }
    let replies = drain(&mut n);
    assert_eq!(
        replies.len(),
        3,
        "the 3028-byte reply needs three fragments"
    );
    let mut whole = vec![0u8; 3008];
    for f in &replies {
        assert!(f.len() <= 1514, "each fragment fits the MTU");
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        let off = usize::from(ip.frag_offset());
        whole[off..off + ip.payload().len()].copy_from_slice(ip.payload());
    }
    let p = Icmpv4Packet::new_checked(&whole[..]).unwrap();
    let r = Icmpv4Repr::parse(&p, &Default::default()).unwrap();
    assert_eq!(
        r,
        Icmpv4Repr::EchoReply {
            ident: 5,
            seq_no: 6,
            data: &data
        }
    );
    assert_eq!(n.stats().fragments, 3);
}

#[test]
fn fragments_and_unknown_protocols_are_not_served() {
    let mut n = net();
    let mut frag = icmp_echo(GW, 1, 1, b"x");
    frag[14 + 6] = 0x20; // more fragments
    let ip = Ipv4Packet::new_unchecked(&mut frag[14..]);
    let mut ip = ip;
    ip.fill_checksum();
    n.send(&frag).unwrap();
    n.send(&eth(GW_MAC, EthernetProtocol::Unknown(0x88b5), &[0; 46]))
        .unwrap();
    assert!(drain(&mut n).is_empty());
    let s = n.stats();
    assert_eq!((s.fragments, s.ignored, s.malformed), (1, 1, 0));
}

#[test]
fn open_parses_qemu_options_and_reports_info() {
    let b = user::open(&[("restrict".into(), "on".into())]).unwrap();
    assert_eq!(b.kind(), "user");
    assert_eq!(b.info(), "net=10.0.2.0,restrict=on");
    assert!(b.poll_fd().is_some());
    let e = user::open(&[("dhcpstart".into(), "10.0.9.15".into())])
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("dhcpstart"));
    // Start-up failures point at the option that caused them.
    let e = user::open(&[("tftp".into(), "/nonexistent/vm-nic".into())])
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("tftp"), "{e}");
    assert!(e.to_string().contains("/nonexistent/vm-nic"), "{e}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let e = user::open(&[("hostfwd".into(), format!("tcp:127.0.0.1:{port}-:22"))])
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("hostfwd"), "{e}");
}

#[test]
fn link_down_drops_guest_frames() {
    let mut n = net();
    n.set_link(false);
    assert!(!n.link_up());
    n.send(&icmp_echo(GW, 1, 1, b"x")).unwrap();
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.counters().dropped, 1);
}
