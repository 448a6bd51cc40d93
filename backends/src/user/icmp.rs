//! ICMP echo: the virtual hosts answer themselves.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

use super::ping::PingNat;
use super::{Ctx, Verdict};

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
            ping.echo(cx, src, dst, ident, seq_no, payload)
        }
        _ => Verdict::Ignored,
    }
}
