//! IPv6 on the virtual network: header and extension-header validation, neighbour
//! discovery for the virtual hosts (and learning the guest's addresses from it), router
//! advertisements of `ipv6-net` (SLAAC, with the DNS address in an RDNSS option and the
//! O flag for stateless DHCPv6) on solicitation and periodically, stateless DHCPv6 (DNS
//! servers), and the virtual hosts' echo replies. TCP and UDP go to the NAT
//! (`UserNet::ipv6_input`), echoes to the outside to the ping NAT.

use std::net::Ipv6Addr;
use std::time::{Duration as StdDuration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, NdiscNeighborFlags,
    NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, UdpPacket, UdpRepr,
};

use super::config::{Dest, UserConfig};
use super::frag::Fragment6;
use super::out::Output;
use super::ping::PingNat;
use super::{Ctx, Verdict};

/// The router's link-local address (libslirp uses fe80::2 too).
pub const ROUTER_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// The all-nodes multicast address: where unsolicited router advertisements go.
pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The DHCPv6 server port.
pub(crate) const DHCP6_SERVER_PORT: u16 = 547;
const DHCP6_INFO_REQUEST: u8 = 11;
const DHCP6_REPLY: u8 = 7;
const DHCP6_OPT_CLIENTID: u16 = 1;
const DHCP6_OPT_SERVERID: u16 = 2;
const DHCP6_OPT_IA_NA: u16 = 3;
const DHCP6_OPT_IA_TA: u16 = 4;
const DHCP6_OPT_ORO: u16 = 6;
const DHCP6_OPT_DNS_SERVERS: u16 = 23;
const DHCP6_OPT_DOMAIN_LIST: u16 = 24;
const DHCP6_OPT_IA_PD: u16 = 25;
const DHCP6_OPT_BOOTFILE_URL: u16 = 59;
/// RDNSS option (RFC 8106) type.
const NDP_OPT_RDNSS: u8 = 25;
/// Lifetimes announced in router advertisements.
const ROUTER_LIFETIME_S: u64 = 1800;
const PREFIX_VALID_S: u64 = 86400;
const PREFIX_PREFERRED_S: u64 = 14400;
/// Unsolicited router advertisements go out every 200 to 600 s, drawn uniformly, as
/// libslirp's NDP_MinRtrAdvInterval/NDP_MaxRtrAdvInterval (RFC 4861 6.2.1 defaults).
pub(crate) const RA_INTERVAL_MIN: StdDuration = StdDuration::from_secs(200);
/// See [`RA_INTERVAL_MIN`].
pub(crate) const RA_INTERVAL_MAX: StdDuration = StdDuration::from_secs(600);
/// Extension headers walked before the upper-layer header; more is refused.
const MAX_EXT_HEADERS: usize = 8;
const NH_HOP_BY_HOP: u8 = 0;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_DEST_OPTS: u8 = 60;

fn ours(cfg: &UserConfig, a: Ipv6Addr) -> bool {
    a == cfg.ipv6_host || a == cfg.ipv6_dns || a == ROUTER_LINK_LOCAL
}

/// A validated IPv6 packet from the guest, its extension headers skipped.
pub(crate) struct Packet<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The upper-layer protocol (of a fragment: the next header after its Fragment
    /// header, which only the first fragment's counts).
    pub proto: IpProtocol,
    /// The upper-layer message, or of a fragment the data after its Fragment header.
    pub data: &'a [u8],
    /// Set when the packet is one fragment of a larger one.
    pub fragment: Option<Fragment6>,
    /// True for a packet reassembled from fragments.
    pub reassembled: bool,
}

/// Validates the IPv6 header and walks the extension headers (at most
/// [`MAX_EXT_HEADERS`], each inside the payload), up to the upper-layer header or a
/// Fragment header. Source-routed packets are not served (`Ignored`); truncated or
/// misplaced headers are `Malformed`.
pub(crate) fn parse(payload: &[u8]) -> Result<Packet<'_>, Verdict> {
    let Ok(ip) = Ipv6Packet::new_checked(payload) else {
        log::debug!("user: IPv6 header truncated or payload length beyond the frame");
        return Err(Verdict::Malformed);
    };
    if ip.version() != 6 {
        log::debug!("user: IPv6 frame with IP version {}", ip.version());
        return Err(Verdict::Malformed);
    }
    let (nh, data, fragment) = walk(u8::from(ip.next_header()), ip.payload(), false)?;
    Ok(Packet {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        hop_limit: ip.hop_limit(),
        proto: IpProtocol::from(nh),
        data,
        fragment,
        reassembled: false,
    })
}

/// The packet whose fragmentable part `data`, starting with next header `nh`, was just
/// completed by the fragment `last` (whose addresses and hop limit it takes): its
/// extension headers walked (a Fragment header among them is `Malformed`).
pub(crate) fn reassembled<'a>(
    last: &Packet<'_>,
    nh: u8,
    data: &'a [u8],
) -> Result<Packet<'a>, Verdict> {
    let (nh, data, _) = walk(nh, data, true)?;
    Ok(Packet {
        src: last.src,
        dst: last.dst,
        hop_limit: last.hop_limit,
        proto: IpProtocol::from(nh),
        data,
        fragment: None,
        reassembled: true,
    })
}

/// Walks the extension headers from next header `nh` over `data`: the upper-layer
/// protocol and message, or at a Fragment header (when `reassembled` is false) the
/// next header and data after it and its fields. An atomic fragment (offset 0, no more
/// fragments, RFC 6946) is walked through.
fn walk(
    mut nh: u8,
    mut data: &[u8],
    reassembled: bool,
) -> Result<(u8, &[u8], Option<Fragment6>), Verdict> {
    for i in 0..=MAX_EXT_HEADERS {
        if !matches!(nh, NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_FRAGMENT) {
            break;
        }
        if i == MAX_EXT_HEADERS {
            log::debug!("user: IPv6 packet with too many extension headers dropped");
            return Err(Verdict::Refused);
        }
        // RFC 8200 4.1: Hop-by-Hop Options only right after the IPv6 header.
        if nh == NH_HOP_BY_HOP && (i != 0 || reassembled) {
            log::debug!("user: IPv6 Hop-by-Hop header not first: dropped");
            return Err(Verdict::Malformed);
        }
        if nh == NH_FRAGMENT {
            if reassembled {
                log::debug!("user: IPv6 Fragment header inside a reassembled packet");
                return Err(Verdict::Malformed);
            }
            let Some(h) = data.get(..8) else {
                log::debug!("user: IPv6 Fragment header truncated");
                return Err(Verdict::Malformed);
            };
            let field = u16::from_be_bytes([h[2], h[3]]);
            let frag = Fragment6 {
                ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                offset: usize::from(field & !7),
                more: field & 1 == 1,
            };
            (nh, data) = (h[0], &data[8..]);
            if frag.offset != 0 || frag.more {
                return Ok((nh, data, Some(frag)));
            }
            continue;
        }
        let len = data.get(1).map(|&l| (usize::from(l) + 1) * 8);
        let Some(len) = len.filter(|&l| l <= data.len()) else {
            log::debug!("user: IPv6 extension header {nh} overruns the packet");
            return Err(Verdict::Malformed);
        };
        // Routing header with segments left: we are not the final destination.
        if nh == NH_ROUTING && data[3] != 0 {
            log::debug!("user: source-routed IPv6 packet not served");
            return Err(Verdict::Ignored);
        }
        nh = data[0];
        data = &data[len..];
    }
    Ok((nh, data, None))
}

/// The next periodic router advertisement after `now`: uniformly in
/// [[`RA_INTERVAL_MIN`], [`RA_INTERVAL_MAX`]), `seed` being a xorshift state.
pub(crate) fn next_ra(now: Instant, seed: &mut u64) -> Instant {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let span = (RA_INTERVAL_MAX - RA_INTERVAL_MIN).as_millis() as u64;
    now + RA_INTERVAL_MIN + StdDuration::from_millis(*seed % span)
}

/// Handles an ICMPv6 message from the guest (`src_mac` is the frame's source): the
/// virtual hosts answer neighbour discovery and echoes themselves, echoes to the outside
/// go through [`PingNat`].
pub(crate) fn icmp6(
    cx: &mut Ctx,
    ping: &mut PingNat,
    src_mac: EthernetAddress,
    ip: &Packet,
) -> Verdict {
    let (cfg, out) = (cx.cfg, &mut *cx.out);
    let (src, dst) = (ip.src, ip.dst);
    let Ok(pkt) = Icmpv6Packet::new_checked(ip.data) else {
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
            // RFC 4861 7.1.1/6.1.1: ND messages that crossed a router are invalid;
            // RFC 6980: fragmented ones are ignored.
            if ip.hop_limit != 255 || ip.reassembled {
                log::debug!("user: NDP message with hop limit {} dropped", ip.hop_limit);
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
                // Duplicate address detection (a solicitation from ::) or an advertisement
                // (the guest announcing itself, or answering our solicitation) names the
                // guest's own address, which a forward to `[::]` needs (libslirp learns its
                // NDP table from these too).
                NdiscRepr::NeighborSolicit { target_addr, .. } if src.is_unspecified() => {
                    out.learn6(target_addr, src_mac, cfg.in_net6(target_addr));
                    Verdict::Handled
                }
                NdiscRepr::NeighborAdvert { target_addr, .. } if !ours(cfg, target_addr) => {
                    out.learn6(target_addr, src_mac, cfg.in_net6(target_addr));
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
        Icmpv6Repr::EchoRequest { ident, seq_no, .. }
            if cfg.dest(dst.into()) == Dest::Outside && !src.is_unspecified() =>
        {
            ping.echo(cx, src.into(), dst.into(), ident, seq_no, ip.data)
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

/// Stateless DHCPv6 (RFC 8415 18.4.5): an Information-request gets the DNS address, and
/// when it asks for them the `dnssearch` list (RFC 3646) and the boot file URL (RFC 5970).
pub(crate) fn dhcp6(
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
    let mut server_id: Option<&[u8]> = None;
    let (mut want_boot_url, mut want_domains) = (false, false);
    let mut opts = &msg[4..];
    // Each option has a 4-byte header; the walk is bounded by the message length.
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let Some(body) = opts.get(4..4 + len) else {
            log::debug!("user: DHCPv6 option overruns the message");
            return Verdict::Malformed;
        };
        match code {
            DHCP6_OPT_CLIENTID => client_id = Some(body),
            DHCP6_OPT_SERVERID => server_id = Some(body),
            // RFC 8415 16.12: an Information-request carrying an IA is discarded.
            DHCP6_OPT_IA_NA | DHCP6_OPT_IA_TA | DHCP6_OPT_IA_PD => {
                log::debug!("user: DHCPv6 Information-request with an IA option dropped");
                return Verdict::Malformed;
            }
            DHCP6_OPT_ORO => {
                for c in body.chunks_exact(2) {
                    match u16::from_be_bytes([c[0], c[1]]) {
                        DHCP6_OPT_BOOTFILE_URL => want_boot_url = true,
                        DHCP6_OPT_DOMAIN_LIST => want_domains = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        opts = &opts[4 + len..];
    }
    // DUID-LL (type 3, hardware type 1) of the router's MAC.
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(out.gw_mac.as_bytes());
    // RFC 8415 16.12: one addressed to another server is not ours to answer.
    if server_id.is_some_and(|id| id != &duid[..]) {
        return Verdict::Ignored;
    }
    let mut reply = vec![DHCP6_REPLY, msg[1], msg[2], msg[3]];
    if let Some(id) = client_id {
        push_opt(&mut reply, DHCP6_OPT_CLIENTID, id);
    }
    push_opt(&mut reply, DHCP6_OPT_SERVERID, &duid);
    push_opt(&mut reply, DHCP6_OPT_DNS_SERVERS, &cfg.ipv6_dns.octets());
    // RFC 3646: the `dnssearch` list, when asked (libslirp has none).
    if want_domains && !cfg.dnssearch.is_empty() {
        let list = super::dhcp::encode_domains_plain(&cfg.dnssearch);
        push_opt(&mut reply, DHCP6_OPT_DOMAIN_LIST, &list);
    }
    // RFC 5970: network boot over IPv6, when the client asks: the boot file on the
    // virtual host's TFTP server as libslirp sends it, or `bootfile` itself when it is
    // already a URL (UEFI HTTP boot).
    if let (true, Some(file)) = (want_boot_url, &cfg.bootfile) {
        let url = if file.contains("://") {
            file.clone()
        } else {
            format!("tftp://[{}]/{file}", cfg.ipv6_host)
        };
        push_opt(&mut reply, DHCP6_OPT_BOOTFILE_URL, url.as_bytes());
    }
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
