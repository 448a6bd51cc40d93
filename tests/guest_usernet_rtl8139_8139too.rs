//! Issue 8's real-guest user-network steps on vm-nic's `rtl8139,revision=0x10` (Linux 8139too (RTL8139 revision 0x10)).
//!
//! The 16 MiB upload is the user network's loss-recovery check: 8139too frees its four
//! transmit slots only when `irqpoll` runs its handler on a timer tick, so the guest's
//! `fq_codel` queue drops segments, and the user network's TCP must recover them from its
//! out-of-order queue and SACK rather than by resending whole windows.

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

#[test]
fn linux_8139too_every_user_network_step() {
    let r = guest_usernet_support::boot("rtl8139,revision=0x10", false);
    r.assert_all("8139too");
}

#[test]
fn linux_8139too_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("rtl8139,revision=0x10", true).assert_restricted("8139too");
}
