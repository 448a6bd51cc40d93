//! ICMP echo: the virtual hosts answer themselves. Destination-unreachable errors the
//! NAT sends the guest, over IPv4 or IPv6.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Icmpv6DstUnreachable, Icmpv6Repr, IpProtocol,
    Ipv4Repr, Ipv6Repr,
};

use super::ipv6::ROUTER_LINK_LOCAL;
use super::ping::PingNat;
use super::{Ctx, Verdict};

/// Why a guest packet could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// No listener on the port (a UDP datagram).
    Port,
    /// The host has no route to the address (EHOSTUNREACH).
    Host,
    /// The host has no route to the network (ENETUNREACH).
    Net,
    /// The host may not send it (an echo when neither ping nor raw sockets are allowed).
    Prohibited,
}

/// Tells the guest at `guest` that its `proto` packet to `remote` could not be delivered,
/// quoting its IP header and `quoted`, the first 8 bytes of its transport header. Port
/// errors come from the address the guest sent to when it is a virtual host (as the host
/// answering would), the rest from the router (`host`, or fe80::2 as libslirp sends
/// ICMPv6 errors).
pub(crate) fn unreachable(
    cx: &mut Ctx,
    why: Unreachable,
    proto: IpProtocol,
    guest: SocketAddr,
    remote: SocketAddr,
    quoted: &[u8; 8],
) {
    let payload_len = if proto == IpProtocol::Tcp { 20 } else { 8 };
    let addrs = (guest.ip(), remote.ip());
    unreachable_quoting(cx, why, proto, addrs, payload_len, quoted);
}

/// [`unreachable`] for the `proto` packet from `addrs.0` (the guest) to `addrs.1`
/// whose payload was `payload_len` bytes long, quoting `quoted` after its IP header.
pub(crate) fn unreachable_quoting(
    cx: &mut Ctx,
    why: Unreachable,
    proto: IpProtocol,
    addrs: (IpAddr, IpAddr),
    payload_len: usize,
    quoted: &[u8],
) {
    match addrs {
        (IpAddr::V4(g), IpAddr::V4(r)) => {
            let reason = match why {
                Unreachable::Port => Icmpv4DstUnreachable::PortUnreachable,
                Unreachable::Host => Icmpv4DstUnreachable::HostUnreachable,
                Unreachable::Net => Icmpv4DstUnreachable::NetUnreachable,
                Unreachable::Prohibited => Icmpv4DstUnreachable::HostProhibited,
            };
            let header = Ipv4Repr {
                src_addr: g,
                dst_addr: r,
                next_header: proto,
                payload_len,
                hop_limit: 64,
            };
            let from = if why == Unreachable::Port {
                r
            } else {
                cx.cfg.host
            };
            let data = quoted;
            let icmp = Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
            };
            cx.out.icmp4(from, g, &icmp);
        }
        (IpAddr::V6(g), IpAddr::V6(r)) => {
            // RFC 4443 3.1: code 4 port, 3 address unreachable, 0 no route, 1
            // administratively prohibited.
            let reason = match why {
                Unreachable::Port => Icmpv6DstUnreachable::PortUnreachable,
                Unreachable::Host => Icmpv6DstUnreachable::AddrUnreachable,
                Unreachable::Net => Icmpv6DstUnreachable::NoRoute,
                Unreachable::Prohibited => Icmpv6DstUnreachable::AdminProhibit,
            };
            let header = Ipv6Repr {
                src_addr: g,
                dst_addr: r,
                next_header: proto,
                payload_len,
                hop_limit: 64,
            };
            let virtual_host = cx.cfg.is_v6_host(r) || r == cx.cfg.ipv6_dns;
            let from = if why == Unreachable::Port && virtual_host {
                r
            } else {
                ROUTER_LINK_LOCAL
            };
            let data = quoted;
            let icmp = Icmpv6Repr::DstUnreachable {
                reason,
                header,
                data,
            };
            cx.out.icmp6_routed(from, g, &icmp);
        }
        _ => log::debug!("user: unreachable error with addresses of two families not sent"),
    }
}

/// Handles an ICMP message from the guest at `src` to `dst`: the virtual hosts answer
/// echoes themselves, echoes to the outside go through [`PingNat`].
pub(crate) fn input(
    cx: &mut Ctx,
    ping: &mut PingNat,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
) -> Verdict {
    let Ok(pkt) = Icmpv4Packet::new_checked(payload) else {
        log::debug!("user: ICMP message truncated ({} bytes)", payload.len());
        return Verdict::Malformed;
    };
    let Ok(repr) = Icmpv4Repr::parse(&pkt, &ChecksumCapabilities::default()) else {
        log::debug!("user: ICMP message with bad checksum or unknown layout dropped");
        return Verdict::Malformed;
    };
    match repr {
        Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } if dst == cx.cfg.host || dst == cx.cfg.dns => {
            let reply = Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            };
            cx.out.icmp4(dst, src, &reply);
            Verdict::Handled
        }
        Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            if !cx.cfg.in_net(dst) && !dst.is_broadcast() && !dst.is_multicast() =>
        {
            ping.echo(cx, src.into(), dst.into(), ident, seq_no, payload)
        }
        _ => Verdict::Ignored,
    }
}
