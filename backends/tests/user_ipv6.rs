//! IPv6 on the virtual network: router advertisements, neighbour discovery, stateless
//! DHCPv6 and echo of the virtual hosts.
#![cfg(feature = "user")]

mod user_util;

use std::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The single ICMPv6 message waiting, checksum verified: (src, dst, raw ICMPv6 bytes).
fn one_icmp6(n: &mut UserNet) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
    let frames = drain(n);
    assert_eq!(frames.len(), 1, "one reply");
    let (src, dst, proto, payload, eth_dst) = parse_ip6(&frames[0]).unwrap();
    assert_eq!(proto, IpProtocol::Icmpv6);
    assert_eq!(eth_dst, GUEST_MAC);
    let p = Icmpv6Packet::new_checked(&payload[..]).unwrap();
    assert!(p.verify_checksum(&src, &dst), "ICMPv6 checksum");
    (src, dst, payload)
}

#[test]
fn router_solicitation_gets_prefix_dns_and_other_flag() {
    let mut n = net();
    let rs = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(GUEST_MAC.into()),
    });
    n.send(&icmp6_frame(GUEST_LL, ALL_ROUTERS, 255, &rs))
        .unwrap();
    let (src, dst, raw) = one_icmp6(&mut n);
    assert_eq!((src, dst), (ROUTER_LL, GUEST_LL));
    let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
    let r = Icmpv6Repr::parse(&src, &dst, &p, &ChecksumCapabilities::default()).unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        flags,
        router_lifetime,
        lladdr,
        prefix_info: Some(pi),
        mtu,
        ..
    }) = r
    else {
        panic!("not an RA: {r:?}");
    };
    assert!(flags.contains(NdiscRouterFlags::OTHER));
    assert!(router_lifetime.secs() > 0);
    assert_eq!(lladdr.unwrap().as_bytes(), GW_MAC.as_bytes());
    assert_eq!(mtu, Some(1500));
    assert_eq!(pi.prefix, Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0));
    assert_eq!(pi.prefix_len, 64);
    assert!(pi
        .flags
        .contains(NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK));
    // The RDNSS option (type 25) is the last 24 bytes and names the DNS address.
    let rdnss = &raw[raw.len() - 24..];
    assert_eq!((rdnss[0], rdnss[1]), (25, 3));
    assert_eq!(&rdnss[8..24], &DNS_V6.octets());
}

#[test]
fn neighbor_solicitation_for_virtual_hosts_only() {
    let mut n = net();
    for (target, answered) in [
        (HOST_V6, true),
        (DNS_V6, true),
        (ROUTER_LL, true),
        (GUEST_V6, false),
    ] {
        let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(GUEST_MAC.into()),
        });
        let o = target.octets();
        let snm = Ipv6Addr::new(
            0xff02,
            0,
            0,
            0,
            0,
            1,
            0xff00 | u16::from(o[13]),
            u16::from_be_bytes([o[14], o[15]]),
        );
        n.send(&icmp6_frame(GUEST_V6, snm, 255, &ns)).unwrap();
        if !answered {
            assert!(drain(&mut n).is_empty());
            continue;
        }
        let (src, dst, raw) = one_icmp6(&mut n);
        assert_eq!((src, dst), (target, GUEST_V6));
        let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
        let r = Icmpv6Repr::parse(&src, &dst, &p, &ChecksumCapabilities::default()).unwrap();
        let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        }) = r
        else {
            panic!("not an NA: {r:?}");
        };
        assert_eq!(target_addr, target);
        assert!(flags.contains(NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE));
        assert_eq!(lladdr.unwrap().as_bytes(), GW_MAC.as_bytes());
    }
    // Hop limit other than 255: forged from off-link, dropped and counted.
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: HOST_V6,
        lladdr: Some(GUEST_MAC.into()),
    });
    n.send(&icmp6_frame(GUEST_V6, HOST_V6, 64, &ns)).unwrap();
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.stats().malformed, 1);
}

#[test]
fn ping6_virtual_host() {
    let mut n = net();
    let req = Icmpv6Repr::EchoRequest {
        ident: 9,
        seq_no: 4,
        data: b"six",
    };
    n.send(&icmp6_frame(GUEST_V6, HOST_V6, 64, &req)).unwrap();
    let (src, dst, raw) = one_icmp6(&mut n);
    assert_eq!((src, dst), (HOST_V6, GUEST_V6));
    let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
    let r = Icmpv6Repr::parse(&src, &dst, &p, &ChecksumCapabilities::default()).unwrap();
    assert_eq!(
        r,
        Icmpv6Repr::EchoReply {
            ident: 9,
            seq_no: 4,
            data: b"six"
        }
    );
}

#[test]
fn stateless_dhcpv6_gives_dns() {
    let mut n = net();
    // Information-request, transaction 0xabcdef, client id option.
    let mut msg = vec![11, 0xab, 0xcd, 0xef, 0, 1, 0, 4, 1, 2, 3, 4];
    msg.extend_from_slice(&[0, 6, 0, 2, 0, 23]); // option request: DNS servers
    send_dhcp6(&mut n, &msg);
    let frames = drain(&mut n);
    assert_eq!(frames.len(), 1);
    let (src, d, proto, payload, _) = parse_ip6(&frames[0]).unwrap();
    assert_eq!((src, d, proto), (ROUTER_LL, GUEST_LL, IpProtocol::Udp));
    let u = UdpPacket::new_checked(&payload[..]).unwrap();
    assert!(u.verify_checksum(&src.into(), &d.into()));
    assert_eq!((u.src_port(), u.dst_port()), (547, 546));
    let r = u.payload();
    assert_eq!(
        &r[..4],
        &[7, 0xab, 0xcd, 0xef],
        "Reply with the transaction id"
    );
    let mut dns_opt = vec![0, 23, 0, 16];
    dns_opt.extend_from_slice(&DNS_V6.octets());
    assert!(
        r.windows(dns_opt.len()).any(|w| w == dns_opt),
        "DNS servers option"
    );
    assert!(
        r.windows(8).any(|w| w == [0, 1, 0, 4, 1, 2, 3, 4]),
        "client id echoed"
    );
}

#[test]
fn malformed_and_disabled_ipv6() {
    let mut n = net();
    let req = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"x",
    };
    let good = icmp6_frame(GUEST_V6, HOST_V6, 64, &req);
    n.send(&good[..14 + 30]).unwrap(); // IPv6 header cut
    let mut bad = good.clone();
    bad[14 + 5] = 200; // payload length beyond the frame
    n.send(&bad).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1; // ICMPv6 checksum
    n.send(&bad).unwrap();
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.stats().malformed, 3);

    let mut off = UserNet::new(UserConfig {
        ipv6: false,
        ..UserConfig::default()
    })
    .unwrap();
    off.send(&good).unwrap();
    assert!(drain(&mut off).is_empty());
    assert_eq!(off.stats().ignored, 1);
}

/// Sends the DHCPv6 message `msg` from the guest's link-local address to
/// All_DHCP_Relay_Agents_and_Servers.
fn send_dhcp6(n: &mut UserNet, msg: &[u8]) {
    let repr = UdpRepr {
        src_port: 546,
        dst_port: 547,
    };
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
    let mut p = vec![0u8; 8 + msg.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut p[..]),
        &GUEST_LL.into(),
        &dst.into(),
        msg.len(),
        |b| b.copy_from_slice(msg),
        &ChecksumCapabilities::default(),
    );
    n.send(&ipv6_frame(GUEST_LL, dst, IpProtocol::Udp, 1, &p))
        .unwrap();
}

/// [`send_dhcp6`], then the reply's DHCPv6 bytes, if any.
fn dhcp6_exchange(n: &mut UserNet, msg: &[u8]) -> Option<Vec<u8>> {
    send_dhcp6(n, msg);
    let frames = drain(n);
    assert!(frames.len() <= 1);
    let (_, _, _, payload, _) = parse_ip6(frames.first()?).unwrap();
    Some(
        UdpPacket::new_checked(&payload[..])
            .unwrap()
            .payload()
            .to_vec(),
    )
}

/// The body of option `code` in a DHCPv6 message.
fn dhcp6_option(msg: &[u8], code: u16) -> Option<Vec<u8>> {
    let mut o = &msg[4..];
    while o.len() >= 4 {
        let (c, len) = (
            u16::from_be_bytes([o[0], o[1]]),
            usize::from(u16::from_be_bytes([o[2], o[3]])),
        );
        if c == code {
            return Some(o[4..4 + len].to_vec());
        }
        o = &o[4 + len..];
    }
    None
}

#[test]
fn dhcpv6_gives_the_boot_file_url_when_asked() {
    let cfg = UserConfig::from_opts(&[("bootfile".into(), "pxelinux.0".into())]).unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    // Information-request asking (ORO) for DNS and the boot file URL (RFC 5970).
    let msg = [11, 1, 2, 3, 0, 6, 0, 4, 0, 23, 0, 59];
    let r = dhcp6_exchange(&mut n, &msg).expect("a Reply");
    assert_eq!(
        dhcp6_option(&r, 59).as_deref(),
        Some(&b"tftp://[fec0::2]/pxelinux.0"[..])
    );
    // Not asked: not sent.
    let r = dhcp6_exchange(&mut n, &[11, 1, 2, 3, 0, 6, 0, 2, 0, 23]).unwrap();
    assert_eq!(dhcp6_option(&r, 59), None);
    // A URL boot file (UEFI HTTP boot) is sent as it is.
    let cfg =
        UserConfig::from_opts(&[("bootfile".into(), "http://[fec0::2]/a.efi".into())]).unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let r = dhcp6_exchange(&mut n, &msg).unwrap();
    assert_eq!(
        dhcp6_option(&r, 59).as_deref(),
        Some(&b"http://[fec0::2]/a.efi"[..])
    );
    // Without bootfile= there is nothing to send.
    let r = dhcp6_exchange(&mut net(), &msg).unwrap();
    assert_eq!(dhcp6_option(&r, 59), None);
}

#[test]
fn dhcpv6_gives_the_search_list_when_asked() {
    let cfg = UserConfig::from_opts(&[
        ("dnssearch".into(), "eng.example".into()),
        ("dnssearch".into(), "example".into()),
    ])
    .unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let r = dhcp6_exchange(&mut n, &[11, 1, 2, 3, 0, 6, 0, 4, 0, 23, 0, 24]).unwrap();
    // RFC 3646, names written whole (DHCPv6 never compresses them).
    assert_eq!(
        dhcp6_option(&r, 24).as_deref(),
        Some(&b"\x03eng\x07example\x00\x07example\x00"[..])
    );
    let r = dhcp6_exchange(&mut n, &[11, 1, 2, 3, 0, 6, 0, 2, 0, 23]).unwrap();
    assert_eq!(dhcp6_option(&r, 24), None, "not asked");
}

#[test]
fn dhcpv6_requests_with_an_ia_or_for_another_server_are_not_answered() {
    let mut n = net();
    // RFC 8415 16.12: an Information-request with IA_NA (3) is discarded...
    let ia_na = [11, 1, 2, 3, 0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(dhcp6_exchange(&mut n, &ia_na), None);
    assert_eq!(n.stats().malformed, 1);
    // ...as is one naming another server's DUID.
    let other = [11, 1, 2, 3, 0, 2, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
    assert_eq!(dhcp6_exchange(&mut n, &other), None);
    // Our own server id (DUID-LL of the router's MAC, as sent in a Reply) is answered.
    let r = dhcp6_exchange(&mut n, &[11, 1, 2, 3]).unwrap();
    let duid = dhcp6_option(&r, 2).unwrap();
    let mut ours = vec![11, 1, 2, 3, 0, 2, 0, duid.len() as u8];
    ours.extend_from_slice(&duid);
    assert!(dhcp6_exchange(&mut n, &ours).is_some());
}
