//! A real Linux guest drives vm-nic's `e1000-82545em` through stock QEMU's PCI proxy: the
//! `e1000` driver binds, gets 10.0.2.15 from vm-nic's user network, pings 10.0.2.2 and
//! downloads a file over TCP from the host through the user network's NAT.
//! The NIC gets a non-default `mac=`, which the guest must read back from the EEPROM.

mod guest_support;

#[test]
fn linux_e1000_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "e1000-82545em,mac=52:54:00:ab:cd:ef",
        guest_support::Steps {
            ethtool: true,
            download_kib: 1024,
        },
    );
    guest_support::assert_network_up(&run, "e1000");
    run.expect("server", "exited");
    run.expect("pci_id", "0x8086:0x100f");
    run.expect("mac", "52:54:00:ab:cd:ef");
    guest_support::assert_e1000_selftest(&run);
}
