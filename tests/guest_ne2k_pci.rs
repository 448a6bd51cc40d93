//! A real Linux guest drives vm-nic's `ne2k_pci` through stock QEMU's PCI proxy: the
//! `ne2k-pci` driver binds, gets 10.0.2.15 from vm-nic's user network and pings 10.0.2.2.
//!
//! No TCP download here yet: with the NE2000 model a 256 KiB download stalls after about
//! 16 full-size frames (the model's `can_receive()` stays false while the guest waits for
//! data). Reproduce with `scripts/guest/run.sh --wget http://10.0.2.2:PORT/FILE -- -device
//! ne2k_pci,netdev=n0 -netdev user,id=n0` and a web server on 127.0.0.1:PORT; turn
//! `download_kib` back on once it completes.

mod guest_support;

#[test]
fn linux_ne2k_pci_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "ne2k_pci",
        guest_support::Steps {
            ethtool: false,
            download_kib: 0,
        },
    );
    guest_support::assert_network_up(&run, "ne2k-pci");
    run.expect("server", "exited");
    run.expect("pci_id", "0x10ec:0x8029");
}
