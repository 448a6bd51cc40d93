//! Issue 8's real-guest user-network steps on vm-nic's `ne2k_pci` (Linux ne2k_pci).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

#[test]
fn linux_ne2k_pci_every_user_network_step() {
    let r = guest_usernet_support::boot("ne2k_pci", false);
    r.assert_all("ne2k-pci");
}

#[test]
fn linux_ne2k_pci_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("ne2k_pci", true).assert_restricted("ne2k-pci");
}
