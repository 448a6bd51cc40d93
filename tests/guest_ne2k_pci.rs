//! A real Linux guest drives vm-nic's `ne2k_pci` through stock QEMU's PCI proxy: the
//! `ne2k-pci` driver binds, gets 10.0.2.15 from vm-nic's user network, pings 10.0.2.2 and
//! downloads a file over TCP from the host through the user network's NAT.
//!
//! The download fills the 52-page receive ring again and again, so it also exercises the
//! driver's overrun recovery (`ei_rx_overrun`). 96 KiB (about 70 full-size frames, the
//! ring refilled nine times) keeps the run well under the 60 s limit: every byte is a port
//! access through the proxy, and a 256 KiB download took from 18 to 60 host seconds
//! (the user network's retransmission timer runs on the host clock, so a slow guest draws
//! retransmissions that slow it further). tests/guest_usernet_ne2k_pci.rs moves 1 MiB
//! each way with a longer budget.

mod guest_support;

#[test]
fn linux_ne2k_pci_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "ne2k_pci",
        guest_support::Steps {
            ethtool: false,
            download_kib: 96,
        },
    );
    guest_support::assert_network_up(&run, "ne2k-pci");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8029");
}
