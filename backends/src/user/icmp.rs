//! ICMP echo: the virtual hosts answer themselves.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

use super::config::UserConfig;
use super::out::Output;
use super::Verdict;

/// Handles an ICMP message from the guest at `src` to `dst`.
pub(crate) fn input(
    cfg: &UserConfig,
    out: &mut Output,
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
        } if dst == cfg.host || dst == cfg.dns => {
            let reply = Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            };
            out.icmp4(dst, src, &reply);
            Verdict::Handled
        }
        _ => Verdict::Ignored,
    }
}
