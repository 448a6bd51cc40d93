//! ARP for the virtual hosts (gateway and DNS), and learning the guest's addresses.

use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr};

use super::config::UserConfig;
use super::guestfwd::GuestFwd;
use super::out::{virtual_mac, Output};
use super::Verdict;

/// Handles one ARP packet from the guest (`payload` is the Ethernet payload).
pub(crate) fn input(
    cfg: &UserConfig,
    forwards: &[GuestFwd],
    out: &mut Output,
    payload: &[u8],
) -> Verdict {
    let Ok(pkt) = ArpPacket::new_checked(payload) else {
        log::debug!("user: ARP packet truncated ({} bytes)", payload.len());
        return Verdict::Malformed;
    };
    let Ok(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_protocol_addr: tpa,
        ..
    }) = ArpRepr::parse(&pkt)
    else {
        log::debug!("user: ARP packet not Ethernet/IPv4 or malformed");
        return Verdict::Malformed;
    };
    if !sha.is_unicast() {
        log::debug!("user: ARP from non-unicast hardware address {sha}");
        return Verdict::Malformed;
    }
    if cfg.in_net(spa) {
        out.learn(spa, sha);
    }
    match operation {
        ArpOperation::Request
            if tpa == cfg.host
                || tpa == cfg.dns
                || forwards.iter().any(|g| *g.addr.ip() == tpa) =>
        {
            let mac = virtual_mac(tpa);
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: mac,
                source_protocol_addr: tpa,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            out.arp(&reply, sha, mac);
            Verdict::Handled
        }
        ArpOperation::Reply => Verdict::Handled,
        _ => Verdict::Ignored,
    }
}
