//! IPv6 on the virtual network: neighbour discovery for the virtual hosts, router
//! advertisements of `ipv6-net` (SLAAC, with the DNS address in an RDNSS option and the
//! O flag for stateless DHCPv6), stateless DHCPv6 (DNS servers), and echo replies.
//! TCP/UDP NAT over IPv6 is not implemented: such packets are counted as ignored.

use std::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, NdiscNeighborFlags,
    NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, UdpPacket, UdpRepr,
};

use super::config::UserConfig;
use super::out::Output;
use super::Verdict;

/// The router's link-local address (libslirp uses fe80::2 too).
pub const ROUTER_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const DHCP6_SERVER_PORT: u16 = 547;
const DHCP6_INFO_REQUEST: u8 = 11;
const DHCP6_REPLY: u8 = 7;
const DHCP6_OPT_CLIENTID: u16 = 1;
const DHCP6_OPT_SERVERID: u16 = 2;
const DHCP6_OPT_DNS_SERVERS: u16 = 23;
/// RDNSS option (RFC 8106) type.
const NDP_OPT_RDNSS: u8 = 25;
/// Lifetimes announced in router advertisements.
const ROUTER_LIFETIME_S: u64 = 1800;
const PREFIX_VALID_S: u64 = 86400;
const PREFIX_PREFERRED_S: u64 = 14400;

fn ours(cfg: &UserConfig, a: Ipv6Addr) -> bool {
    a == cfg.ipv6_host || a == cfg.ipv6_dns || a == ROUTER_LINK_LOCAL
}

/// Handles an IPv6 packet from the guest (`src_mac` is the frame's source).
pub(crate) fn input(
    cfg: &UserConfig,
    out: &mut Output,
    src_mac: EthernetAddress,
    payload: &[u8],
) -> Verdict {
    let Ok(ip) = Ipv6Packet::new_checked(payload) else {
        log::debug!("user: IPv6 header truncated or payload length beyond the frame");
        return Verdict::Malformed;
    };
    if ip.version() != 6 {
        return Verdict::Malformed;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match ip.next_header() {
        IpProtocol::Icmpv6 => icmp6(cfg, out, src_mac, &ip, src, dst),
        IpProtocol::Udp => udp6(cfg, out, src_mac, ip.payload(), src, dst),
        _ => Verdict::Ignored,
    }
}

fn icmp6(
    cfg: &UserConfig,
    out: &mut Output,
    src_mac: EthernetAddress,
    ip: &Ipv6Packet<&[u8]>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Verdict {
    let Ok(pkt) = Icmpv6Packet::new_checked(ip.payload()) else {
        log::debug!("user: ICMPv6 message truncated");
        return Verdict::Malformed;
    };
    let Ok(repr) = Icmpv6Repr::parse(&src, &dst, &pkt, &ChecksumCapabilities::default()) else {
        log::debug!("user: ICMPv6 message with bad checksum or layout dropped");
        return Verdict::Malformed;
    };
    let reply_to = if src.is_unspecified() { ALL_NODES } else { src };
    match repr {
        Icmpv6Repr::Ndisc(nd) => {
            // RFC 4861 7.1.1/6.1.1: ND messages that crossed a router are invalid.
            if ip.hop_limit() != 255 {
                log::debug!(
                    "user: NDP message with hop limit {} dropped",
                    ip.hop_limit()
                );
                return Verdict::Malformed;
            }
            match nd {
                NdiscRepr::RouterSolicit { .. } => {
                    router_advert(cfg, out, reply_to, src_mac);
                    Verdict::Handled
                }
                NdiscRepr::NeighborSolicit { target_addr, .. } if ours(cfg, target_addr) => {
                    let mut flags = NdiscNeighborFlags::OVERRIDE;
                    if !src.is_unspecified() {
                        flags |= NdiscNeighborFlags::SOLICITED;
                    }
                    if target_addr == cfg.ipv6_host || target_addr == ROUTER_LINK_LOCAL {
                        flags |= NdiscNeighborFlags::ROUTER;
                    }
                    let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                        flags,
                        target_addr,
                        lladdr: Some(out.gw_mac.into()),
                    });
                    out.icmp6(target_addr, reply_to, src_mac, &na);
                    Verdict::Handled
                }
                _ => Verdict::Ignored,
            }
        }
        Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } if ours(cfg, dst) && !src.is_unspecified() => {
            let reply = Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            };
            out.icmp6(dst, src, src_mac, &reply);
            Verdict::Handled
        }
        _ => Verdict::Ignored,
    }
}

/// Sends a router advertisement for `ipv6-net` to `dst`.
pub(crate) fn router_advert(
    cfg: &UserConfig,
    out: &mut Output,
    dst: Ipv6Addr,
    dst_mac: EthernetAddress,
) {
    let ra = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::OTHER,
        router_lifetime: Duration::from_secs(ROUTER_LIFETIME_S),
        reachable_time: Duration::from_millis(0),
        retrans_time: Duration::from_millis(0),
        lladdr: Some(out.gw_mac.into()),
        mtu: Some(1500),
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: cfg.ipv6_prefix_len,
            flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            valid_lifetime: Duration::from_secs(PREFIX_VALID_S),
            preferred_lifetime: Duration::from_secs(PREFIX_PREFERRED_S),
            prefix: cfg.ipv6_prefix,
        }),
    });
    let base = ra.buffer_len();
    let src = ROUTER_LINK_LOCAL;
    out.ipv6(
        src,
        dst,
        dst_mac,
        IpProtocol::Icmpv6,
        base + 24,
        |b, caps| {
            let mut p = Icmpv6Packet::new_unchecked(&mut *b);
            ra.emit(&src, &dst, &mut p, caps);
            // RDNSS (RFC 8106): type, length 3 (x8 bytes), reserved, lifetime, address.
            let o = &mut b[base..];
            o[0] = NDP_OPT_RDNSS;
            o[1] = 3;
            o[2..4].fill(0);
            o[4..8].copy_from_slice(&(ROUTER_LIFETIME_S as u32).to_be_bytes());
            o[8..24].copy_from_slice(&cfg.ipv6_dns.octets());
            Icmpv6Packet::new_unchecked(&mut *b).fill_checksum(&src, &dst);
        },
    );
}

fn udp6(
    cfg: &UserConfig,
    out: &mut Output,
    src_mac: EthernetAddress,
    data: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Verdict {
    let Ok(udp) = UdpPacket::new_checked(data) else {
        return Verdict::Malformed;
    };
    // A zero UDP checksum is not allowed over IPv6 (RFC 8200 8.1).
    if !udp.verify_checksum(&src.into(), &dst.into()) || udp.checksum() == 0 {
        log::debug!("user: UDP/IPv6 checksum bad, datagram dropped");
        return Verdict::Malformed;
    }
    if udp.dst_port() != DHCP6_SERVER_PORT || src.is_unspecified() {
        return Verdict::Ignored;
    }
    dhcp6(cfg, out, src_mac, udp.payload(), src, udp.src_port())
}

/// Stateless DHCPv6 (RFC 8415 18.4.5): an Information-request gets the DNS address.
fn dhcp6(
    cfg: &UserConfig,
    out: &mut Output,
    src_mac: EthernetAddress,
    msg: &[u8],
    src: Ipv6Addr,
    sport: u16,
) -> Verdict {
    if msg.len() < 4 {
        return Verdict::Malformed;
    }
    if msg[0] != DHCP6_INFO_REQUEST {
        return Verdict::Ignored;
    }
    let mut client_id: Option<&[u8]> = None;
    let mut opts = &msg[4..];
    // Each option has a 4-byte header; the walk is bounded by the message length.
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let Some(body) = opts.get(4..4 + len) else {
            log::debug!("user: DHCPv6 option overruns the message");
            return Verdict::Malformed;
        };
        if code == DHCP6_OPT_CLIENTID {
            client_id = Some(body);
        }
        opts = &opts[4 + len..];
    }
    let mut reply = vec![DHCP6_REPLY, msg[1], msg[2], msg[3]];
    if let Some(id) = client_id {
        push_opt(&mut reply, DHCP6_OPT_CLIENTID, id);
    }
    // DUID-LL (type 3, hardware type 1) of the router's MAC.
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(out.gw_mac.as_bytes());
    push_opt(&mut reply, DHCP6_OPT_SERVERID, &duid);
    push_opt(&mut reply, DHCP6_OPT_DNS_SERVERS, &cfg.ipv6_dns.octets());
    let repr = UdpRepr {
        src_port: DHCP6_SERVER_PORT,
        dst_port: sport,
    };
    let from = ROUTER_LINK_LOCAL;
    let len = repr.header_len() + reply.len();
    out.ipv6(from, src, src_mac, IpProtocol::Udp, len, |b, caps| {
        repr.emit(
            &mut UdpPacket::new_unchecked(b),
            &from.into(),
            &src.into(),
            reply.len(),
            |p| p.copy_from_slice(&reply),
            caps,
        )
    });
    Verdict::Handled
}

fn push_opt(v: &mut Vec<u8>, code: u16, body: &[u8]) {
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
}
