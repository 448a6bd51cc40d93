//! Issue 8's real-guest user-network steps on vm-nic's `rtl8139` (Linux 8139cp (RTL8139C+ revision 0x20)).
//! The bulk upload is the TSO check: TSO on while it runs, checksums equal.

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

#[test]
fn linux_8139cp_every_user_network_step() {
    let r = guest_usernet_support::boot("rtl8139", false);
    r.assert_all("8139cp");
    r.run.expect("tso", "on");
}

#[test]
fn linux_8139cp_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("rtl8139", true).assert_restricted("8139cp");
}
