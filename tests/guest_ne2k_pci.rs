//! A real Linux guest drives vm-nic's `ne2k_pci` through stock QEMU's PCI proxy: the
//! `ne2k-pci` driver binds, gets 10.0.2.15 from vm-nic's user network and pings 10.0.2.2.

mod guest_support;

#[test]
fn linux_ne2k_pci_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot("ne2k_pci", false);
    guest_support::assert_network_up(&run, "ne2k-pci");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8029");
}
