//! 93C46 through 9346CR, auto-load, the Config write lock and HltClk.

mod rtl8139_support;

use rtl8139_support::*;

#[test]
fn linux_reads_id_and_mac_with_six_address_bits() {
    for rig in [Rig::c as fn() -> Rig, Rig::cplus] {
        let mut r = rig();
        // Linux probes with 8 address bits; a 93C46 answers garbage, so it uses 6.
        assert_ne!(r.read_eeprom(0, 8), 0x8129);
        assert_eq!(r.read_eeprom(0, 6), 0x8129);
        assert_eq!(r.read_eeprom(1, 6), 0x10EC);
        assert_eq!(r.read_eeprom(2, 6), 0x8139);
        let mac: Vec<u8> = (7..10)
            .flat_map(|w| r.read_eeprom(w, 6).to_le_bytes())
            .collect();
        assert_eq!(mac, MAC);
    }
}

#[test]
fn write_erase_and_write_protection() {
    let mut r = Rig::cplus();
    // WRITE without EWEN is ignored.
    r.eeprom_cmd((5 << 6) | 0x20, 9, Some(0xBEEF));
    assert_eq!(r.read_eeprom(0x20, 6), 0);
    // Linux 8139cp's write_eeprom: EWEN, WRITE, poll ready, EWDS.
    r.eeprom_cmd((4 << 6) | (3 << 4), 9, None);
    r.eeprom_cmd((5 << 6) | 0x20, 9, Some(0xBEEF));
    r.w8(0x50, 0x80);
    r.w8(0x50, 0x88);
    assert_eq!(r.r8(0x50) & 1, 1, "DO shows ready after programming");
    r.w8(0x50, 0);
    r.eeprom_cmd(4 << 6, 9, None);
    assert_eq!(r.read_eeprom(0x20, 6), 0xBEEF);
    r.eeprom_cmd((7 << 6) | 0x20, 9, None);
    assert_eq!(r.read_eeprom(0x20, 6), 0xBEEF, "ERASE after EWDS ignored");
    r.eeprom_cmd((4 << 6) | (3 << 4), 9, None);
    r.eeprom_cmd((7 << 6) | 0x20, 9, None);
    assert_eq!(r.read_eeprom(0x20, 6), 0xFFFF, "ERASE");
    r.eeprom_cmd((4 << 6) | (1 << 4), 9, Some(0x1234));
    assert_eq!(r.read_eeprom(0x3F, 6), 0x1234, "WRAL");
    r.eeprom_cmd((4 << 6) | (2 << 4), 9, None);
    assert_eq!(r.read_eeprom(0x00, 6), 0xFFFF, "ERAL");
}

#[test]
fn autoload_reloads_the_station_address() {
    let mut r = Rig::c();
    r.eeprom_cmd((4 << 6) | (3 << 4), 9, None);
    r.eeprom_cmd((5 << 6) | 7, 9, Some(0x0A02));
    r.w32(0x00, 0);
    r.w8(0x50, 0x40);
    assert_eq!(r.r8(0x50) & 0xC0, 0, "back to normal mode");
    assert_eq!(r.r16(0x00), 0x0A02);
    assert_eq!(r.r16(0x02), 0x1200);
}

#[test]
fn config_registers_need_the_unlock() {
    let mut r = Rig::c();
    let c1 = r.r8(0x52);
    r.w8(0x52, c1 | 0x20);
    assert_eq!(r.r8(0x52), c1, "locked");
    r.w8(0x50, 0xC0);
    r.w8(0x52, 0xF3);
    assert_eq!(r.r8(0x52), 0xFF, "unlocked; IOMAP/MEMMAP stay");
    r.w8(0x59, 0xFF);
    assert_eq!(r.r8(0x59), 0x70, "Config3: PARM_En, Magic, LinkUp writable");
    r.w8(0x59, 0x40);
    assert_eq!(r.r8(0x59), 0x40);
    r.w8(0x5A, 0x04);
    assert_eq!(r.r8(0x5A), 0x04);
    r.w8(0x51, 0xFF);
    assert_eq!(r.r8(0x51), 0, "Config0 is read-only");
    r.w8(0x50, 0x00);
    r.w8(0x59, 0);
    assert_eq!(r.r8(0x59), 0x40);
    r.w8(0xD8, 0x41);
    assert_eq!(r.r8(0xD8), 0x41, "Config5 is not locked");
}

#[test]
fn bmcr_locked_bits() {
    let mut r = Rig::c();
    r.w16(0x62, 0x0000);
    assert_eq!(r.r16(0x62), 0x3100, "speed/ANE/duplex locked");
    r.w8(0x50, 0xC0);
    r.w16(0x62, 0x0000);
    assert_eq!(r.r16(0x62), 0);
    assert_eq!(
        r.r16(0x64) & 0x24,
        0x04,
        "link, but no AN complete with ANE off"
    );
    assert_eq!(r.r16(0x68), 0);
    assert_eq!(r.r8(0x58) & 0x08, 0x08, "MSR SPEED_10 when 10M is forced");
    r.w16(0x62, 0x8000);
    assert_eq!(r.r16(0x62), 0x3100, "BMCR reset");
}

#[test]
fn hltclk_halts_the_timer_counter() {
    let mut r = Rig::c();
    r.w32(0x48, 0);
    r.clock.advance(1_000);
    assert_eq!(r.r32(0x48), 33);
    r.w8(0x5B, b'H');
    r.clock.advance(1_000_000);
    assert_eq!(r.r32(0x48), 33, "frozen");
    r.w8(0x5B, b'R');
    r.clock.advance(1_000);
    assert_eq!(r.r32(0x48), 66);
}
