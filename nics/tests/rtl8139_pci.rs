//! PCI identity, BARs, properties, reset values and access widths.

mod rtl8139_support;

use rtl8139_support::*;
use vm_nic_devices::models::{self, ModelError};

#[test]
fn ids_and_revisions() {
    let mut c = Rig::c();
    assert_eq!(c.dev.config_read(0, 4), 0x8139_10EC);
    assert_eq!(c.dev.config_read(0x08, 4), 0x0200_0010);
    assert_eq!(c.r8(0x5E), 0x10, "RERID");
    let mut p = Rig::cplus();
    assert_eq!(p.dev.config_read(0x08, 1), 0x20, "QEMU's default revision");
    assert_eq!(p.r8(0x5E), 0x20);
    assert_eq!(p.dev.config_read(0x3D, 1), 1, "INTA");
    assert_eq!(p.dev.model(), "rtl8139");
}

#[test]
fn hardware_version_bits_identify_the_chips_as_linux_expects() {
    // 8139too masks TxConfig with 0x7CC00000: RTL-8139C is 0x74000000, 8139C+ 0x74800000.
    let mut c = Rig::c();
    assert_eq!(c.r32(0x40) & 0x7CC0_0000, 0x7400_0000);
    c.w32(0x40, 0);
    assert_eq!(
        c.r32(0x40) & 0x7CC0_0000,
        0x7400_0000,
        "version bits are read-only"
    );
    assert_ne!(c.r32(0x40), 0xFFFF_FFFF);
    let mut p = Rig::cplus();
    assert_eq!(p.r32(0x40) & 0x7CC0_0000, 0x7480_0000);
    assert_eq!(p.r8(0x43) & 0x7C, 0x74, "ChipVersion byte");
}

#[test]
fn bars_are_256_bytes_io_and_memory() {
    let mut r = Rig::c();
    r.dev.config_write(0x10, 4, 0xFFFF_FFFF);
    assert_eq!(r.dev.config_read(0x10, 4), 0xFFFF_FF01);
    r.dev.config_write(0x14, 4, 0xFFFF_FFFF);
    assert_eq!(r.dev.config_read(0x14, 4), 0xFFFF_FF00);
    assert_eq!(r.dev.config_read(0x18, 4), 0);
    // BAR1 reaches the same registers as BAR0.
    r.w32(0x30, 0x1234_5678);
    assert_eq!(r.dev.bar_read(1, 0x30, 4), 0x1234_5678);
    assert_eq!(r.dev.bar_read(2, 0, 4), 0xFFFF_FFFF);
    assert_eq!(r.dev.bar_read(0, 0x100, 4), 0xFFFF_FFFF);
}

#[test]
fn properties_are_validated() {
    let mem =
        vm_memory::GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 4096)]).unwrap();
    let props = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let (cfg, ..) = config(&mem);
    match models::create("rtl8139", &props("speed", "100"), cfg) {
        Err(ModelError::UnknownProperty { key, valid, .. }) => {
            assert_eq!(key, "speed");
            assert_eq!(valid, vec!["revision"]);
        }
        other => panic!("{:?}", other.err()),
    }
    let (cfg, ..) = config(&mem);
    let e = models::create("rtl8139", &props("revision", "0x30"), cfg)
        .err()
        .unwrap();
    assert!(matches!(e, ModelError::BadValue { .. }), "{e}");
    let (cfg, ..) = config(&mem);
    assert!(models::create("rtl8139", &props("revision", "junk"), cfg).is_err());
    let (cfg, ..) = config(&mem);
    assert!(models::create("rtl8139", &props("revision", "16"), cfg).is_ok());
}

#[test]
fn reset_values() {
    let mut r = Rig::c();
    assert_eq!(r.r32(0x00), 0x1200_5452, "IDR from the EEPROM");
    assert_eq!(r.r16(0x04), 0x5634);
    assert_eq!(r.r8(0x37), 0x01, "CR: only BUFE");
    assert_eq!(r.r16(0x38), 0xFFF0, "CAPR");
    assert_eq!(r.r16(0x3A), 0, "CBR");
    for i in 0..4 {
        assert_eq!(r.r32(0x10 + 4 * i), 0x2000, "TSD{i}: OWN");
    }
    assert_eq!(r.r16(0x60), 0x000F, "TSAD: all OWN");
    assert_eq!(r.r16(0x62), 0x3100, "BMCR");
    assert_eq!(r.r16(0x64), 0x782D, "BMSR with link");
    assert_eq!(r.r16(0x66), 0x05E1, "ANAR");
    assert_eq!(r.r8(0x52) & 0x0C, 0x0C, "Config1 IOMAP|MEMMAP");
    assert_eq!(r.r16(0x3C) | r.r16(0x3E), 0);
}

#[test]
fn access_widths_compose() {
    let mut r = Rig::c();
    r.w32(0x08, 0x4433_2211);
    r.w32(0x0C, 0x8877_6655);
    assert_eq!(r.r8(0x09), 0x22);
    assert_eq!(r.r16(0x0A), 0x4433);
    assert_eq!(r.r32(0x0A), 0x6655_4433, "unaligned dword across MAR0-7");
    r.w8(0x0B, 0xAB);
    assert_eq!(r.r32(0x08), 0xAB33_2211);
    r.w16(0x3C, 0xFFFF);
    assert_eq!(r.r16(0x3C), 0xE07F, "only bits the RTL8139C has");
    r.w8(0x3D, 0);
    assert_eq!(r.r16(0x3C), 0x007F, "byte write to IMR high byte");
}

#[test]
fn register_dump_has_no_side_effects() {
    let mut r = Rig::cplus();
    let mut first = [0u8; 256];
    for (i, b) in first.iter_mut().enumerate() {
        *b = r.r8(i as u64);
    }
    let mut second = [0u8; 256];
    for i in (0..256).step_by(4) {
        second[i..i + 4].copy_from_slice(&r.r32(i as u64).to_le_bytes());
    }
    // TCTR (0x48) runs only with the clock, which did not move.
    assert_eq!(first, second);
}

#[test]
fn mac_writes_and_soft_reset_keeps_them() {
    let mut r = Rig::c();
    r.w32(0x00, 0x0403_0201);
    r.w32(0x04, 0x0605);
    r.w8(0x37, 0x0C);
    r.w16(0x3C, 0x0005);
    r.w8(0x37, 0x10);
    assert_eq!(r.r8(0x37) & 0x1C, 0, "RST self-clears, RE/TE off");
    assert_eq!(r.r32(0x00), 0x0403_0201);
    assert_eq!(r.r16(0x3C), 0, "IMR cleared by reset");
    r.dev.reset();
    assert_eq!(
        r.r32(0x00),
        0x1200_5452,
        "hard reset reloads the EEPROM MAC"
    );
}
