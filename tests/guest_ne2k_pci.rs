//! A real Linux guest drives vm-nic's `ne2k_pci` through stock QEMU's PCI proxy: the
//! `ne2k-pci` driver binds, gets 10.0.2.15 from vm-nic's user network, pings 10.0.2.2 and
//! downloads a file over TCP from the host through the user network's NAT.
//!
//! The download fills the 52-page receive ring again and again, so it also exercises the
//! driver's overrun recovery (`ei_rx_overrun`). 256 KiB keeps the run well under the time
//! limit: the ring holds only eight full-size frames.

mod guest_support;

#[test]
fn linux_ne2k_pci_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "ne2k_pci",
        guest_support::Steps {
            ethtool: false,
            download_kib: 256,
        },
    );
    guest_support::assert_network_up(&run, "ne2k-pci");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8029");
}
