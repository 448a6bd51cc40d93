//! A real Linux guest drives vm-nic's `rtl8139,revision=0x10` through stock QEMU's PCI
//! proxy: the `8139too` driver binds, gets 10.0.2.15 from vm-nic's user network, pings
//! 10.0.2.2 and downloads an 8 MiB file over TCP from the host through the user network's NAT;
//! `ethtool -d` dumps the registers (8139too has no EEPROM ethtool operation, so
//! `ethtool -e` is refused by the driver itself).

mod guest_support;

#[test]
fn linux_8139too_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "rtl8139,revision=0x10",
        guest_support::Steps {
            ethtool: true,
            // 8 MiB: enough to fill the 32 KiB RX ring many times over. Before the
            // RXOVW fix the download stalled after 2-3 MB with the ring full and the
            // driver's NAPI poll no longer scheduled.
            download_kib: 8192,
        },
    );
    guest_support::assert_network_up(&run, "8139too");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8139");
    run.expect("revision", "0x10");
    run.expect("ethtool_driver", "8139too");
    run.expect("ethtool_d", "ok");
    run.expect("ethtool_e", "fail");
}
