//! Issue 8's real-guest user-network steps on vm-nic's `rtl8139,revision=0x10` (Linux 8139too (RTL8139 revision 0x10)).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

/// Every step including the 64 MiB download; the upload gets 120 guest seconds so the
/// later steps run (see the next test).
#[test]
fn linux_8139too_every_user_network_step_but_the_upload() {
    let r = guest_usernet_support::boot_bulk_limited("rtl8139,revision=0x10", false, 120);
    r.assert_all_but_bulk("8139too");
    r.assert_download();
}

/// Known failure, open: the 16 MiB upload stalls. The model transmits every frame it is
/// given (checked frame by frame); the losses happen in the guest, where 8139too frees its
/// four transmit slots only when `irqpoll` runs its handler on a timer tick, so the
/// `fq_codel` queue drops segments, and the user network's TCP (no out-of-order queue, no
/// SACK) recovers each loss by resending the whole window. Run with `--ignored`.
#[test]
#[ignore = "the upload stalls: guest qdisc drops + user-net TCP has no out-of-order queue"]
fn linux_8139too_bulk_download_and_upload() {
    let r = guest_usernet_support::boot("rtl8139,revision=0x10", false);
    r.assert_all("8139too");
}

#[test]
fn linux_8139too_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("rtl8139,revision=0x10", true).assert_restricted("8139too");
}
