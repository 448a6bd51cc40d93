//! A real Linux guest drives vm-nic's `ne2k_isa` with Linux's ISA NE2000 driver (`ne.c`,
//! unmodified, built by scripts/guest/fetch.sh from the guest kernel's own source: Debian's
//! x86-64 kernel has no ISA bus option and ships no ISA drivers).
//!
//! QEMU's proxy carries PCI functions only, so `vm-nic remote` serves the card's 32 ports
//! as BAR 0 of a carrier PCI function (src/remote/isa_carrier.rs). The guest loads `ne` at
//! that BAR's port address and the function's IRQ, as an ISA card's jumper settings would
//! be given to it, and the harness's `isa-irqpoll` module delivers the card's interrupt
//! from the carrier's Interrupt Status bit (`irqpoll` skips the exclusive line an ISA
//! driver takes). The driver's own probe then runs as on a real card: reset through the
//! reset port, the station-address PROM read byte-wide and checked for the doubled
//! 0x57 0x57 NE2000 signature, word mode, and the 16-bit data port for every frame.
//!
//! The steps are those of tests/guest_ne2k_pci.rs: DHCP from vm-nic's user network, pings
//! of 10.0.2.2 (small and full-size) and a 96 KiB TCP download through the NAT, which
//! refills the 16 KiB receive ring several times (`ei_rx_overrun` recovery).

mod guest_support;

#[test]
fn linux_ne_isa_driver_gets_a_lease_and_pings_the_gateway() {
    let run = guest_support::boot(
        "ne2k_isa",
        guest_support::Steps {
            ethtool: false,
            download_kib: 96,
        },
    );
    guest_support::assert_network_up(&run, "ne");
    run.expect("insmod_ne", "ok");
    run.expect("pci_id", "none");
    run.expect("device", "ne.0");
    let delivered: u64 = run.get("isa_irqs_delivered").parse().unwrap_or(0);
    assert!(
        delivered > 10,
        "the card's interrupts reached the driver {delivered} times:\n{}",
        run.output
    );
    run.expect("server", "exited");
}
