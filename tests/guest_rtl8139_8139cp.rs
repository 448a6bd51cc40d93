//! A real Linux guest drives vm-nic's `rtl8139` through stock QEMU's PCI proxy: the
//! `8139cp` driver binds, gets 10.0.2.15 from vm-nic's user network, pings 10.0.2.2 and
//! downloads a file over TCP from the host through the user network's NAT; `ethtool -e`
//! reads the 93C46 through 9346CR and `ethtool -d` dumps the registers.

mod guest_support;

#[test]
fn linux_8139cp_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "rtl8139",
        guest_support::Steps {
            ethtool: true,
            download_kib: 512,
        },
    );
    guest_support::assert_network_up(&run, "8139cp");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8139");
    run.expect("revision", "0x20");
    run.expect("ethtool_driver", "8139cp");
    run.expect("ethtool_e", "ok");
    run.expect("ethtool_d", "ok");
    run.expect("ethtool_k", "ok");
    // 8139cp turns receive checksumming on by default: the model's IPF/UDPF/TCPF and
    // protocol bits keep it usable (the download above passed through it).
    run.expect("rx_checksumming", "on");
    run.expect("tso", "on");
}
