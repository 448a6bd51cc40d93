//! Issue 8's real-guest user-network steps on vm-nic's `ne2k_pci` (Linux ne2k_pci).
//!
//! The NE2000 moves every byte through its data port, and every port access is a round
//! trip through QEMU's PCI proxy (about 8 s per 256 KiB even on QEMU's own `ne2k_pci`),
//! so this NIC moves 512 KiB down and 1 MiB up instead of 64 MiB down / 16 MiB up (that
//! already takes about four minutes: the user network retransmits to a guest this slow).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

#[test]
fn linux_ne2k_pci_passes_every_user_network_step() {
    guest_usernet_support::boot_sized("ne2k_pci", false, 0, 512 << 10, 1).assert_all("ne2k-pci");
}

#[test]
fn linux_ne2k_pci_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("ne2k_pci", true).assert_restricted("ne2k-pci");
}
