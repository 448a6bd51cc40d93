//! The 93C46 serial EEPROM (64 x 16 bits) behind 9346CR, modelled at the pin level: the
//! driver bit-bangs EECS/EESK/EEDI in programming mode and samples EEDO.
//!
//! Protocol (93C46 datasheet, 6-bit addresses): with CS high, a start bit 1, a 2-bit
//! opcode and 6 address bits are clocked in on rising SK edges. READ (10) drives a dummy
//! 0 then D15..D0 and continues with the next word (sequential read); WRITE (01) and
//! ERASE (11) need a prior EWEN; opcode 00 with address bits 5:4 selects EWDS (00), WRAL
//! (01), ERAL (10) and EWEN (11). Programming is instantaneous: DO reads 1 (ready) as soon
//! as CS is raised again.

/// Number of 16-bit words.
pub const WORDS: usize = 64;

/// Where the shift register is in a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// CS low, or waiting for the start bit.
    #[default]
    Idle = 0,
    /// Collecting the opcode and address bits.
    Command = 1,
    /// Shifting data out.
    Reading = 2,
    /// Collecting 16 data bits for WRITE or WRAL.
    WriteData = 3,
    /// Command finished; ignoring clocks until CS drops.
    Done = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Command,
            2 => Phase::Reading,
            3 => Phase::WriteData,
            4 => Phase::Done,
            _ => Phase::Idle,
        }
    }
}

/// The EEPROM's contents and serial state (part of the device's saved state).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Eeprom {
    /// The 64 words.
    #[cfg_attr(feature = "serde", serde(with = "serde_big_array::BigArray"))]
    pub words: [u16; WORDS],
    /// Command phase (see [`Phase`]), stored as its number for a plain state struct.
    pub phase: u8,
    /// Bits shifted in during the current phase.
    pub bits: u8,
    /// Shift register: command bits, or data being written.
    pub shift: u16,
    /// Address of the word being read or written.
    pub addr: u8,
    /// Erase/write enabled (EWEN seen, EWDS not since).
    pub write_enabled: bool,
    /// Last chip select, clock and data-out levels.
    pub cs: bool,
    /// Last serial clock level.
    pub sk: bool,
    /// Data out level.
    pub dout: bool,
    /// WRITE (false) or WRAL (true) while collecting data.
    pub write_all: bool,
}

impl Eeprom {
    /// An EEPROM holding `words`, idle, write-disabled (as after power-on).
    pub fn new(words: [u16; WORDS]) -> Self {
        Eeprom {
            words,
            phase: Phase::Idle as u8,
            bits: 0,
            shift: 0,
            addr: 0,
            write_enabled: false,
            cs: false,
            sk: false,
            dout: true,
            write_all: false,
        }
    }

    /// The default RTL8139 image: ID 0x8129, vendor/device/subsystem IDs, MIN_GNT/MAX_LAT,
    /// the MAC at words 7-9, and zero Config bytes.
    pub fn default_image(mac: [u8; 6], device_id: u16) -> [u16; WORDS] {
        let mut w = [0u16; WORDS];
        w[0] = 0x8129;
        w[1] = 0x10EC;
        w[2] = device_id;
        w[3] = 0x10EC;
        w[4] = device_id;
        // Byte 0x0A MNGNT, 0x0B MXLAT.
        w[5] = 0x4020;
        for i in 0..3 {
            w[7 + i] = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
        }
        w
    }

    /// The station address stored at words 7-9.
    pub fn mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        for i in 0..3 {
            m[2 * i..2 * i + 2].copy_from_slice(&self.words[7 + i].to_le_bytes());
        }
        m
    }

    /// Byte `off` of the image (little-endian words), for auto-loaded config bytes.
    pub fn byte(&self, off: usize) -> u8 {
        let w = self.words[(off / 2) % WORDS];
        w.to_le_bytes()[off % 2]
    }

    /// Drops chip select and forgets any command in progress.
    pub fn deselect(&mut self) {
        self.cs = false;
        self.sk = false;
        self.phase = Phase::Idle as u8;
        self.bits = 0;
        self.shift = 0;
        self.dout = true;
    }

    /// Applies new pin levels from a 9346CR write in programming mode.
    pub fn set_pins(&mut self, cs: bool, sk: bool, di: bool) {
        if !cs {
            self.deselect();
            return;
        }
        if !self.cs {
            // Rising CS starts a new command; DO shows ready (programming is instant).
            self.phase = Phase::Idle as u8;
            self.bits = 0;
            self.dout = true;
        }
        let rising = sk && !self.sk;
        self.cs = true;
        self.sk = sk;
        if rising {
            self.clock(di);
        }
    }

    fn clock(&mut self, di: bool) {
        match Phase::from_u8(self.phase) {
            Phase::Idle => {
                if di {
                    self.phase = Phase::Command as u8;
                    self.bits = 0;
                    self.shift = 0;
                }
            }
            Phase::Command => {
                self.shift = (self.shift << 1) | di as u16;
                self.bits += 1;
                if self.bits == 8 {
                    self.decode();
                }
            }
            Phase::Reading => {
                if self.bits == 16 {
                    // Sequential read: continue with the next word.
                    self.addr = (self.addr + 1) % WORDS as u8;
                    self.shift = self.words[self.addr as usize];
                    self.bits = 0;
                }
                self.dout = self.shift & 0x8000 != 0;
                self.shift <<= 1;
                self.bits += 1;
            }
            Phase::WriteData => {
                self.shift = (self.shift << 1) | di as u16;
                self.bits += 1;
                if self.bits == 16 {
                    self.program(self.shift);
                }
            }
            Phase::Done => {}
        }
    }

    fn decode(&mut self) {
        let opcode = (self.shift >> 6) & 3;
        let addr = (self.shift & 0x3F) as u8;
        self.addr = addr;
        self.bits = 0;
        match opcode {
            0b10 => {
                self.phase = Phase::Reading as u8;
                self.shift = self.words[addr as usize];
                self.dout = false; // the dummy zero bit
            }
            0b01 => {
                self.phase = Phase::WriteData as u8;
                self.write_all = false;
                self.shift = 0;
            }
            0b11 => {
                if self.write_enabled {
                    self.words[addr as usize] = 0xFFFF;
                } else {
                    log::debug!("rtl8139: 93C46 ERASE ignored: writes disabled (no EWEN)");
                }
                self.finish();
            }
            _ => match addr >> 4 {
                0b00 => {
                    self.write_enabled = false;
                    self.finish();
                }
                0b01 => {
                    self.phase = Phase::WriteData as u8;
                    self.write_all = true;
                    self.shift = 0;
                }
                0b10 => {
                    if self.write_enabled {
                        self.words = [0xFFFF; WORDS];
                    } else {
                        log::debug!("rtl8139: 93C46 ERAL ignored: writes disabled (no EWEN)");
                    }
                    self.finish();
                }
                _ => {
                    self.write_enabled = true;
                    self.finish();
                }
            },
        }
    }

    fn program(&mut self, data: u16) {
        if !self.write_enabled {
            log::debug!("rtl8139: 93C46 WRITE/WRAL ignored: writes disabled (no EWEN)");
        } else if self.write_all {
            self.words = [data; WORDS];
        } else {
            self.words[self.addr as usize] = data;
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Done as u8;
        self.dout = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift_in(e: &mut Eeprom, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            let di = value >> i & 1 != 0;
            e.set_pins(true, false, di);
            e.set_pins(true, true, di);
        }
        e.set_pins(true, false, false);
    }

    fn read(e: &mut Eeprom, addr: u32, addr_len: u32) -> u16 {
        e.set_pins(false, false, false);
        e.set_pins(true, false, false);
        shift_in(e, (6 << addr_len) | addr, 3 + addr_len + 2);
        let mut v = 0u16;
        for _ in 0..16 {
            e.set_pins(true, true, false);
            v = (v << 1) | e.dout as u16;
            e.set_pins(true, false, false);
        }
        e.set_pins(false, false, false);
        v
    }

    fn command(e: &mut Eeprom, cmd: u32, len: u32, data: Option<u16>) {
        e.set_pins(false, false, false);
        e.set_pins(true, false, false);
        shift_in(e, cmd, len);
        if let Some(d) = data {
            shift_in(e, d as u32, 16);
        }
        e.set_pins(false, false, false);
    }

    #[test]
    fn reads_like_linux_and_rejects_eight_bit_addresses() {
        let mut e = Eeprom::new(Eeprom::default_image(
            [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            0x8139,
        ));
        assert_eq!(read(&mut e, 0, 6), 0x8129);
        assert_eq!(read(&mut e, 7, 6), 0x5452);
        assert_eq!(read(&mut e, 9, 6), 0x5634);
        // Linux probes with 8 address bits first; a 93C46 must not answer 0x8129 then.
        assert_ne!(read(&mut e, 0, 8), 0x8129);
    }

    #[test]
    fn write_needs_ewen_and_erase_commands_work() {
        let mut e = Eeprom::new([0x1234; WORDS]);
        command(&mut e, (5 << 6) | 3, 9, Some(0xBEEF));
        assert_eq!(read(&mut e, 3, 6), 0x1234, "write without EWEN");
        command(&mut e, (4 << 6) | 0x30, 9, None); // EWEN
        command(&mut e, (5 << 6) | 3, 9, Some(0xBEEF));
        assert_eq!(read(&mut e, 3, 6), 0xBEEF);
        command(&mut e, (7 << 6) | 3, 9, None); // ERASE
        assert_eq!(read(&mut e, 3, 6), 0xFFFF);
        command(&mut e, (4 << 6) | 0x10, 9, Some(0x5555)); // WRAL
        assert_eq!(read(&mut e, 63, 6), 0x5555);
        command(&mut e, (4 << 6) | 0x20, 9, None); // ERAL
        assert_eq!(read(&mut e, 10, 6), 0xFFFF);
        command(&mut e, 4 << 6, 9, None); // EWDS
        command(&mut e, (5 << 6) | 3, 9, Some(0));
        assert_eq!(read(&mut e, 3, 6), 0xFFFF);
    }
}
