//! Issue 8's real-guest user-network steps on vm-nic's `e1000`, `e1000-82544gc` and
//! `e1000-82545em` (Linux `e1000` driver), with the bulk upload as the TSO check: TSO on
//! while it runs, checksums equal.

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

/// The same steps on the other two e1000 family members the crate models: the driver
/// takes different paths for them (PCI-X bus detection, the 82544's TSO and checksum
/// quirks), so each gets its own run.
#[test]
fn linux_e1000_82544gc_every_user_network_step() {
    let r = guest_usernet_support::boot("e1000-82544gc", false);
    r.run.expect("pci_id", "0x8086:0x100c");
    r.assert_all("e1000");
}

#[test]
fn linux_e1000_82545em_every_user_network_step() {
    let r = guest_usernet_support::boot("e1000-82545em", false);
    r.run.expect("pci_id", "0x8086:0x100f");
    r.assert_all("e1000");
}
