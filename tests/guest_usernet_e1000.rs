//! Issue 8's real-guest user-network steps on vm-nic's `e1000` (Linux `e1000` driver),
//! with the bulk upload as the TSO check: TSO on while it runs, checksums equal.

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

#[test]
fn linux_e1000_every_user_network_step() {
    let r = guest_usernet_support::boot("e1000", false);
    r.assert_all("e1000");
    r.run.expect("tso", "on");
}

#[test]
fn linux_e1000_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("e1000", true).assert_restricted("e1000");
}
