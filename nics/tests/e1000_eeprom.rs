//! The Microwire EEPROM: reads as Linux's driver does them (bit-bang and EERD), the
//! checksum `ethtool -t` checks, and programming (EWEN, WRITE, ERASE, ERAL, WRAL, EWDS).

mod e1000_support;

use e1000_support::*;
use vm_nic_devices::e1000::Variant;

const READ: u32 = 0b110;
const WRITE: u32 = 0b101;
const ERASE: u32 = 0b111;
const EXT: u32 = 0b100;

#[test]
fn eecd_reset_value() {
    let mut r = Rig::new(Variant::E82540EM);
    let v = r.r(EECD);
    assert_eq!(v & 0x100, 0x100, "EEPROM present");
    assert_eq!(v & 0x200, 0, "64-word part");
    assert_eq!(v & 0x30, 0x10, "flash writes disabled");
    r.w(EECD, 1 << 6);
    assert_ne!(r.r(EECD) & 1 << 7, 0, "GNT follows REQ");
}

#[test]
fn bitbang_reads_mac_ids_and_checksum() {
    for (v, dev) in [
        (Variant::E82540EM, 0x100e),
        (Variant::E82544GC, 0x100c),
        (Variant::E82545EM, 0x100f),
    ] {
        let mut r = Rig::new(v);
        let words: Vec<u16> = (0..64).map(|a| r.ee_read(a)).collect();
        assert_eq!(words[0], u16::from_le_bytes([MAC[0], MAC[1]]));
        assert_eq!(words[1], u16::from_le_bytes([MAC[2], MAC[3]]));
        assert_eq!(words[2], u16::from_le_bytes([MAC[4], MAC[5]]));
        assert_eq!(words[0x0d], dev);
        assert_eq!(words[0x0e], 0x8086);
        let sum = words.iter().fold(0u16, |a, &w| a.wrapping_add(w));
        assert_eq!(sum, 0xbaba, "ethtool EEPROM test checksum");
    }
}

#[test]
fn sequential_read_continues_into_the_next_word() {
    let mut r = Rig::new(Variant::E82540EM);
    r.ee_acquire();
    r.ee_shift_out(READ, 3);
    r.ee_shift_out(0, 6);
    let w0 = r.ee_shift_in(16);
    let w1 = r.ee_shift_in(16);
    r.ee_release();
    assert_eq!(w0 as u16, u16::from_le_bytes([MAC[0], MAC[1]]));
    assert_eq!(w1 as u16, u16::from_le_bytes([MAC[2], MAC[3]]));
}

#[test]
fn eerd_reads_words() {
    let mut r = Rig::new(Variant::E82540EM);
    r.w(EERD, 0x0d << 8 | 1);
    let v = r.r(EERD);
    assert_ne!(v & 0x10, 0, "DONE");
    assert_eq!(v >> 16, 0x100e);
    assert_eq!(v >> 8 & 0xff, 0x0d);
}

#[test]
fn writes_need_ewen_and_persist_in_state() {
    let mut r = Rig::new(Variant::E82540EM);
    r.ee_command(WRITE, 0x20, Some(0x1234));
    assert_ne!(r.ee_read(0x20), 0x1234, "write without EWEN is ignored");
    r.ee_command(EXT, 0b11_0000, None); // EWEN
    r.ee_command(WRITE, 0x20, Some(0x1234));
    assert_eq!(r.ee_read(0x20), 0x1234);
    r.w(EERD, 0x20 << 8 | 1);
    assert_eq!(r.r(EERD) >> 16, 0x1234, "EERD sees the write");
    r.ee_command(ERASE, 0x21, None);
    assert_eq!(r.ee_read(0x21), 0xffff);
    r.ee_command(EXT, 0, None); // EWDS
    r.ee_command(WRITE, 0x20, Some(0x5555));
    assert_eq!(r.ee_read(0x20), 0x1234, "EWDS disables programming");
    let st = r.dev.state();
    assert_eq!(st.eeprom.words[0x20], 0x1234);
    assert_eq!(st.eeprom.words[0x21], 0xffff);
    // A software reset keeps the contents.
    r.w(CTRL, 1 << 26);
    assert_eq!(r.ee_read(0x20), 0x1234);
}

#[test]
fn eral_and_wral_program_every_word() {
    let mut r = Rig::new(Variant::E82540EM);
    r.ee_command(EXT, 0b11_0000, None); // EWEN
    r.ee_command(EXT, 0b01_0000, Some(0xa5a5)); // WRAL
    assert!((0..64).all(|a| r.ee_read(a) == 0xa5a5));
    r.ee_command(EXT, 0b10_0000, None); // ERAL
    assert!((0..64).all(|a| r.ee_read(a) == 0xffff));
}

#[test]
fn ctrl_ext_ee_rst_reloads_the_station_address() {
    let mut r = Rig::new(Variant::E82540EM);
    r.w(RAL0, 0);
    r.w(RAH0, 0);
    r.w(0x18, 1 << 13);
    assert_eq!(r.r(0x18) & 1 << 13, 0, "self-clearing");
    assert_eq!(
        r.r(RAL0),
        u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]])
    );
    assert_eq!(r.r(RAH0) >> 31, 1, "AV");
}
