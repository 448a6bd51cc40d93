//! Register behaviour: reset values, masks, Linux's `ethtool -t` register test, the I/O
//! window and software reset.

mod e1000_support;

use e1000_support::*;
use vm_nic_devices::e1000::regs::{self, TABLE};
use vm_nic_devices::e1000::Variant;
use vm_nic_devices::NicDevice;

const VARIANTS: [Variant; 3] = [Variant::E82540EM, Variant::E82544GC, Variant::E82545EM];

/// `reg_pattern_test` of Linux's e1000_ethtool.c: every pattern written reads back
/// masked. Returns the failing offset.
fn pattern(r: &mut Rig, reg: u64, mask: u32, write: u32) -> Result<(), String> {
    for t in [0x5a5a_5a5au32, 0xa5a5_a5a5, 0, 0xffff_ffff] {
        r.w(reg, write & t);
        let got = r.r(reg);
        if got != write & t & mask {
            return Err(format!(
                "pattern test reg {reg:04X} failed: got {got:#010x} expected {:#010x}",
                write & t & mask
            ));
        }
    }
    Ok(())
}

fn set_and_check(r: &mut Rig, reg: u64, mask: u32, write: u32) -> Result<(), String> {
    r.w(reg, write & mask);
    let got = r.r(reg);
    if got & mask != write & mask {
        return Err(format!("set/check reg {reg:04X} failed: got {got:#010x}"));
    }
    Ok(())
}

/// The whole of Linux's e1000_reg_test for an 82543-or-later MAC.
fn linux_reg_test(r: &mut Rig) -> Result<(), String> {
    let toggle = 0xffff_f833;
    let before = r.r(STATUS);
    let value = r.r(STATUS) & toggle;
    r.w(STATUS, toggle);
    let after = r.r(STATUS) & toggle;
    if value != after {
        return Err(format!("STATUS changed: {after:#x} vs {value:#x}"));
    }
    r.w(STATUS, before);
    pattern(r, 0x0028, 0xffff_ffff, 0xffff_ffff)?; // FCAL
    pattern(r, 0x002c, 0x0000_ffff, 0xffff_ffff)?; // FCAH
    pattern(r, 0x0030, 0x0000_ffff, 0xffff_ffff)?; // FCT
    pattern(r, 0x0038, 0x0000_ffff, 0xffff_ffff)?; // VET
    pattern(r, RDTR, 0x0000_ffff, 0xffff_ffff)?;
    pattern(r, RDBAH, 0xffff_ffff, 0xffff_ffff)?;
    pattern(r, RDLEN, 0x000f_ff80, 0x000f_ffff)?;
    pattern(r, RDH, 0x0000_ffff, 0x0000_ffff)?;
    pattern(r, RDT, 0x0000_ffff, 0x0000_ffff)?;
    pattern(r, 0x2168, 0x0000_fff8, 0x0000_fff8)?; // FCRTH
    pattern(r, 0x0170, 0x0000_ffff, 0x0000_ffff)?; // FCTTV
    pattern(r, 0x0410, 0x3fff_ffff, 0x3fff_ffff)?; // TIPG
    pattern(r, TDBAH, 0xffff_ffff, 0xffff_ffff)?;
    pattern(r, TDLEN, 0x000f_ff80, 0x000f_ffff)?;
    set_and_check(r, RCTL, 0xffff_ffff, 0)?;
    let before = 0x06df_b3fe;
    set_and_check(r, RCTL, before, 0x003f_fffb)?;
    set_and_check(r, TCTL, 0xffff_ffff, 0)?;
    set_and_check(r, RCTL, before, 0xffff_ffff)?;
    pattern(r, RDBAL, 0xffff_fff0, 0xffff_ffff)?;
    pattern(r, 0x0178, 0xc000_ffff, 0x0000_ffff)?; // TXCW
    pattern(r, TDBAL, 0xffff_fff0, 0xffff_ffff)?;
    pattern(r, TIDV, 0x0000_ffff, 0x0000_ffff)?;
    for i in 0..16 {
        pattern(r, RAL0 + 4 + 8 * i, 0x8003_ffff, 0xffff_ffff)?;
    }
    for i in 0..128 {
        pattern(r, MTA + 4 * i, 0xffff_ffff, 0xffff_ffff)?;
    }
    Ok(())
}

#[test]
fn linux_ethtool_register_test_passes_on_every_variant() {
    for v in VARIANTS {
        let mut r = Rig::new(v);
        r.wait_link();
        assert_eq!(linux_reg_test(&mut r), Ok(()), "{v:?}");
    }
}

#[test]
fn status_is_read_only_and_reports_the_link() {
    let mut r = Rig::new(Variant::E82540EM);
    assert_eq!(r.r(STATUS) & 2, 0, "link is down while auto-negotiating");
    r.wait_link();
    let s = r.r(STATUS);
    assert_eq!(s & 0x3c3, 0x283, "FD, LU, 1000 Mb/s, ASDV 1000");
    r.w(STATUS, 0);
    assert_eq!(r.r(STATUS), s);
}

#[test]
fn reset_values_match_the_table() {
    let mut r = Rig::new(Variant::E82540EM);
    for def in TABLE {
        if def.kind != regs::Kind::Plain || def.name == "RAL" || def.name == "RAH" {
            continue;
        }
        let off = def.offset as u64;
        assert_eq!(r.r(off), def.reset & def.read, "{} reset", def.name);
    }
    assert_eq!(r.r(0x0038), 0x8100, "VET");
    assert_eq!(r.r(RXCSUM), 0x300, "RXCSUM IPOFL|TUOFL");
    assert_eq!(r.r(0x1000), 0x0010_0030, "PBA 48K RX / 16K TX");
}

#[test]
fn plain_registers_honour_their_write_masks() {
    let mut r = Rig::new(Variant::E82540EM);
    for def in TABLE {
        if def.kind != regs::Kind::Plain {
            continue;
        }
        let off = def.offset as u64;
        r.w(off, 0xffff_ffff);
        let expect = (def.reset & !def.write | def.write) & def.read;
        assert_eq!(r.r(off), expect, "{}", def.name);
        r.w(off, 0);
        assert_eq!(
            r.r(off),
            def.reset & !def.write & def.read,
            "{} cleared",
            def.name
        );
    }
}

#[test]
fn station_address_is_loaded_from_the_eeprom() {
    let mut r = Rig::new(Variant::E82540EM);
    assert_eq!(
        r.r(RAL0),
        u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]])
    );
    assert_eq!(
        r.r(RAH0),
        0x8000_0000 | u16::from_le_bytes([MAC[4], MAC[5]]) as u32
    );
}

#[test]
fn software_reset_restores_registers_and_self_clears() {
    let mut r = Rig::up();
    r.w(0x0028, 0x1234_5678);
    r.w(IMS, 0xff);
    r.w(RAL0, 0);
    let c = r.r(CTRL);
    r.w(CTRL, c | 1 << 26);
    assert_eq!(r.r(CTRL) & 1 << 26, 0, "RST self-clears");
    assert_eq!(r.r(0x0028), 0, "FCAL reset");
    assert_eq!(r.r(IMS), 0, "IMS reset");
    assert_ne!(r.r(RAL0), 0, "RAL0 reloaded from EEPROM");
    assert_ne!(
        r.r(STATUS) & 2,
        0,
        "the PHY keeps its link over a MAC reset"
    );
}

#[test]
fn the_82544gc_lacks_the_82540_additions() {
    let mut r = Rig::new(Variant::E82544GC);
    r.w(EERD, 1);
    assert_eq!(r.r(EERD), 0, "no EERD on the 82544GC");
    r.w(ITR, 100);
    assert_eq!(r.r(ITR), 0, "no ITR on the 82544GC");
    let mut r = Rig::new(Variant::E82545EM);
    r.w(ITR, 100);
    assert_eq!(r.r(ITR), 100);
}

#[test]
fn io_window_reaches_every_register() {
    let mut r = Rig::new(Variant::E82540EM);
    r.dev.bar_write(1, 0, 4, 0x0028);
    assert_eq!(r.dev.bar_read(1, 0, 4), 0x0028, "IOADDR reads back");
    r.dev.bar_write(1, 4, 4, 0xcafe_f00d);
    assert_eq!(r.r(0x0028), 0xcafe_f00d, "IODATA wrote FCAL");
    r.w(0x0028, 0x1111_2222);
    assert_eq!(r.dev.bar_read(1, 4, 4), 0x1111_2222, "IODATA reads FCAL");
    assert_eq!(r.dev.bar_read(1, 8, 4), 0, "reserved I/O offsets read 0");
    r.dev.bar_write(1, 0, 4, 0x0008);
    assert_eq!(r.dev.bar_read(1, 4, 4), r.r(STATUS));
}

#[test]
fn narrow_accesses_read_and_merge_bytes() {
    let mut r = Rig::new(Variant::E82540EM);
    r.w(0x0028, 0x1122_3344);
    assert_eq!(r.dev.bar_read(0, 0x29, 1), 0x33);
    assert_eq!(r.dev.bar_read(0, 0x2a, 2), 0x1122);
    r.dev.bar_write(0, 0x2b, 1, 0xaa);
    assert_eq!(r.r(0x0028), 0xaa22_3344);
    assert_eq!(
        r.dev.bar_read(0, 0x28, 3),
        0,
        "3-byte accesses are not decoded"
    );
    assert_eq!(r.dev.bar_read(0, 0x2_0000, 4), 0, "beyond the BAR");
    assert_eq!(r.dev.bar_read(2, 0, 4), 0, "no BAR2");
}
