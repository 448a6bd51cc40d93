//! The PCI function: identity of each variant, BAR sizing, the PM capability, bus
//! mastering, and creation through the model registry.

mod e1000_support;

use std::sync::Arc;

use e1000_support::*;
use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::Variant;
use vm_nic_devices::models::{self, ModelError};
use vm_nic_devices::{ManualClock, NicConfig, NicDevice, NoIrq};

fn cfg() -> NicConfig<GuestMemoryMmap> {
    NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(NullBackend::new()),
        irq: Box::new(NoIrq),
        clock: Arc::new(ManualClock::new()),
        memory: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap(),
    }
}

#[test]
fn each_model_has_its_ids() {
    for (name, dev, sub) in [
        ("e1000", 0x100e, 0x001e),
        ("e1000-82544gc", 0x100c, 0x1107),
        ("e1000-82545em", 0x100f, 0x1001),
    ] {
        let mut d = models::create(name, &[], cfg()).unwrap();
        assert_eq!(d.model(), name);
        assert_eq!(d.config_read(0, 4), (dev << 16) | 0x8086, "{name}");
        assert_eq!(d.config_read(0x2c, 4), (sub << 16) | 0x8086, "{name}");
        assert_eq!(d.config_read(0x08, 4) >> 8, 0x02_00_00, "ethernet class");
        assert_eq!(d.config_read(0x3d, 1), 1, "INTA");
        assert_eq!(d.mac(), MacAddr(MAC));
    }
}

#[test]
fn unknown_properties_are_rejected() {
    let e = models::create("e1000", &[("revision".into(), "1".into())], cfg())
        .err()
        .unwrap();
    assert!(matches!(e, ModelError::UnknownProperty { .. }), "{e}");
}

#[test]
fn bars_size_exactly() {
    let mut r = Rig::new(Variant::E82540EM);
    r.dev.config_write(0x10, 4, 0xffff_ffff);
    assert_eq!(
        r.dev.config_read(0x10, 4),
        0xfffe_0000,
        "128 KiB memory BAR"
    );
    r.dev.config_write(0x14, 4, 0xffff_ffff);
    assert_eq!(r.dev.config_read(0x14, 4), 0xffff_ffc1, "64-byte I/O BAR");
    r.dev.config_write(0x18, 4, 0xffff_ffff);
    assert_eq!(r.dev.config_read(0x18, 4), 0, "no BAR2");
}

#[test]
fn power_management_capability() {
    let mut r = Rig::new(Variant::E82540EM);
    assert_ne!(r.dev.config_read(0x06, 2) & 0x10, 0, "capability list");
    let cap = r.dev.config_read(0x34, 1) as u16;
    assert_eq!(
        cap, 0xdc,
        "Cap_Ptr: the SDM places power management at 0xDC"
    );
    assert_eq!(cap, r.dev.pm_capability() as u16);
    assert_eq!(r.dev.config_read(cap, 1), 0x01, "PM capability ID");
    assert_eq!(r.dev.config_read(cap + 2, 2), 0xc822, "PMC");
    r.dev.config_write(cap + 4, 2, 0x0103);
    assert_eq!(r.dev.config_read(cap + 4, 2), 0x0103, "D3hot with PME_En");
    r.dev.config_write(cap + 4, 2, 0x0000);
    assert_eq!(r.dev.config_read(cap + 4, 2), 0);
}

#[test]
fn no_dma_without_bus_master() {
    let mut r = Rig::up();
    r.setup_tx(8);
    r.tx_legacy(0, &eth([0xff; 6], 0x0800, &[1; 50]), 0x0b);
    r.dev.config_write(0x04, 2, 0x0003);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 0);
    assert_eq!(r.r(TDH), 0, "the ring did not move");
    r.dev.config_write(0x04, 2, 0x0007);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 1);
}

#[test]
fn pci_reset_returns_to_power_on() {
    let mut r = Rig::up();
    r.w(0x0028, 5);
    r.dev.reset();
    assert_eq!(r.dev.config_read(0x04, 2), 0, "command cleared");
    r.dev.config_write(0x04, 2, 7);
    assert_eq!(r.r(0x0028), 0);
    assert_eq!(r.r(STATUS) & 2, 0, "auto-negotiation restarted");
    r.wait_link();
    assert_ne!(r.r(STATUS) & 2, 0);
}
