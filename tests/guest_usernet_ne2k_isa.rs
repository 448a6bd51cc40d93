//! Issue 8's real-guest user-network steps on vm-nic's `ne2k_isa`, driven by Linux's ISA
//! NE2000 driver (`ne.c`) through the PCI carrier described in tests/guest_ne2k_isa.rs:
//! the 64 MiB download every NIC must pass and an upload the other way.
//!
//! The ISA card moves every byte through its 16-bit data port, each access a round trip
//! through QEMU's PCI proxy, so it has the pace and the settings of the PCI NE2000
//! (tests/guest_usernet_ne2k_pci.rs): a 2 MiB upload, the guest's TCP receive buffer
//! capped at 32 KiB, no guest-side limit on the transfers and 45 minutes of host time for
//! the boot (measured here: 793-825 s for the boot, about 90 KB/s; one run took 1,415 s,
//! its upload stalled for about ten minutes, see docs/performance.md).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

use guest_usernet_support::Bulk;

#[test]
fn linux_ne_isa_passes_every_user_network_step() {
    let r = guest_usernet_support::boot_with("ne2k_isa", false, Bulk::NE2000);
    r.run.expect("tcp_rmem", "4096,32768,32768");
    r.run.expect("device", "ne.0");
    r.assert_all("ne");
}

#[test]
fn linux_ne_isa_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("ne2k_isa", true).assert_restricted("ne");
}
