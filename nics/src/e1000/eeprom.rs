//! The 64-word Microwire serial EEPROM (93C46-compatible) behind EECD and EERD.
//!
//! SDM: "EEPROM Interface" and "EEPROM Address Map"; the Microwire opcodes are
//! those of the 93C46: READ 10b, WRITE 01b, ERASE 11b, and under opcode 00b the address's
//! top two bits select EWEN 11b, EWDS 00b, ERAL 10b and WRAL 01b. Every instruction
//! starts with a 1 start bit. Programming completes at once: DO reads "ready" (1) as
//! soon as the chip is selected again.

use super::regs::eecd;

/// Words in the EEPROM.
pub const WORDS: usize = 64;
/// Word index of the checksum word.
pub const CHECKSUM_WORD: usize = 0x3f;
/// What all 64 words must add up to.
pub const CHECKSUM_SUM: u16 = 0xbaba;
/// Address bits of a 64-word part.
const ADDR_BITS: u32 = 6;

/// Builds the image of an 82540EM-style EEPROM (SDM table 5-2) for `mac` and the given
/// PCI identity, with the checksum word making the sum 0xBABA.
pub fn image(mac: [u8; 6], device: u16, subsystem: u16, subsystem_vendor: u16) -> [u16; WORDS] {
    let mut w = [0xffffu16; WORDS];
    w[0] = u16::from_le_bytes([mac[0], mac[1]]);
    w[1] = u16::from_le_bytes([mac[2], mac[3]]);
    w[2] = u16::from_le_bytes([mac[4], mac[5]]);
    // 0x03 compatibility, 0x05 image version, 0x06/0x07 OEM.
    w[3] = 0x0000;
    w[4] = 0xffff; // LED settings: none, the driver uses its defaults.
    w[5] = 0x0000;
    w[6] = 0x0000;
    w[7] = 0x0000;
    // 0x08/0x09 printed board assembly number.
    w[8] = 0x3000;
    w[9] = 0x1000;
    // 0x0A initialization control 1: signature 01b, load subsystem/vendor IDs.
    w[0x0a] = 0x6403;
    w[0x0b] = subsystem;
    w[0x0c] = subsystem_vendor;
    w[0x0d] = device;
    w[0x0e] = 0x8086;
    // 0x0F initialization control 2: PAUSE and ASM_DIR advertised (full flow control).
    w[0x0f] = 0x3040;
    w[0x10] = 0x0008;
    w[0x11] = 0x2000;
    w[0x12] = 0x7e14;
    w[0x13] = 0x0048;
    w[0x14] = 0x1000;
    w[0x15] = 0x00d8;
    w[0x16] = 0x0000;
    w[0x17] = 0x2700;
    w[0x18] = 0x6cc9;
    w[0x19] = 0x3150;
    w[0x1a] = 0x0722;
    w[0x1b] = 0x040b;
    w[0x1c] = 0x0984;
    w[0x1d] = 0x0000;
    w[0x1e] = 0xc000;
    w[0x1f] = 0x0706;
    w[0x20] = 0x1008;
    w[0x21] = 0x0000;
    w[0x22] = 0x0f04;
    w[0x23] = 0x7fff;
    w[0x24] = 0x4d01;
    w[0x30] = 0x0100;
    w[0x31] = 0x4000;
    w[0x32] = 0x121c;
    w[CHECKSUM_WORD] = 0;
    let sum = w.iter().fold(0u16, |a, &x| a.wrapping_add(x));
    w[CHECKSUM_WORD] = CHECKSUM_SUM.wrapping_sub(sum);
    w
}

/// Where the Microwire state machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Phase {
    /// Chip not selected, or selected and waiting for a start bit.
    #[default]
    Idle,
    /// Shifting in opcode and address bits after the start bit.
    Command,
    /// Shifting in 16 data bits for WRITE or WRAL.
    Data,
    /// Shifting out data bits (READ); sequential reads continue into the next word.
    Reading,
    /// The instruction is complete; further clocks are ignored until CS drops.
    Done,
}

/// The serial EEPROM and its bit-bang interface state (all of it is saved state).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Eeprom {
    /// The contents.
    #[cfg_attr(feature = "serde", serde(with = "serde_big_array::BigArray"))]
    pub words: [u16; WORDS],
    /// Programming enabled by EWEN (cleared by EWDS and at power-on).
    pub write_enabled: bool,
    /// Where the Microwire transfer is.
    pub phase: Phase,
    /// Bits shifted in for the current field.
    pub shift: u32,
    /// Number of bits in `shift`.
    pub bits: u32,
    /// Opcode and address once decoded.
    pub op: u32,
    /// Word address.
    pub addr: u32,
    /// Output position while reading: bit index into the word stream, or None before
    /// the first data clock (the dummy zero).
    pub out_bit: Option<u32>,
    /// Last SK level, to find rising edges.
    pub sk: bool,
    /// Last CS level.
    pub cs: bool,
}

impl Eeprom {
    /// An EEPROM holding `words`.
    pub fn new(words: [u16; WORDS]) -> Self {
        Eeprom {
            words,
            write_enabled: false,
            phase: Phase::Idle,
            shift: 0,
            bits: 0,
            op: 0,
            addr: 0,
            out_bit: None,
            sk: false,
            cs: false,
        }
    }

    /// Returns the bus interface to its power-on state (contents are kept).
    pub fn reset_interface(&mut self) {
        *self = Eeprom::new(self.words);
    }

    /// The level of the DO pin.
    pub fn data_out(&self) -> bool {
        match self.phase {
            Phase::Reading => match self.out_bit {
                None => false,
                Some(bit) => {
                    let word = self.words[(bit / 16) as usize % WORDS];
                    word >> (15 - bit % 16) & 1 != 0
                }
            },
            // Ready/busy status: programming is instantaneous, so always ready.
            _ => self.cs,
        }
    }

    /// Applies a write of the EECD pins SK, CS and DI.
    pub fn write_pins(&mut self, value: u32) {
        let cs = value & eecd::CS != 0;
        let sk = value & eecd::SK != 0;
        let di = value & eecd::DI != 0;
        if !cs {
            if self.cs {
                log::trace!("e1000: EEPROM deselected in phase {:?}", self.phase);
            }
            self.phase = Phase::Idle;
            self.bits = 0;
            self.shift = 0;
        } else if sk && !self.sk {
            self.clock_in(di);
        }
        self.cs = cs;
        self.sk = sk;
    }

    fn clock_in(&mut self, di: bool) {
        match self.phase {
            Phase::Idle => {
                if di {
                    self.phase = Phase::Command;
                    self.shift = 0;
                    self.bits = 0;
                }
            }
            Phase::Command => {
                self.push(di);
                if self.bits == 2 + ADDR_BITS {
                    self.op = self.shift >> ADDR_BITS;
                    self.addr = self.shift & ((1 << ADDR_BITS) - 1);
                    self.shift = 0;
                    self.bits = 0;
                    self.decode();
                }
            }
            Phase::Data => {
                self.push(di);
                if self.bits == 16 {
                    let data = self.shift as u16;
                    self.program(data);
                    self.phase = Phase::Done;
                }
            }
            Phase::Reading => {
                let next = self.out_bit.map_or(self.addr * 16, |b| b + 1);
                self.out_bit = Some(next % (WORDS as u32 * 16));
            }
            Phase::Done => {}
        }
    }

    fn push(&mut self, di: bool) {
        self.shift = self.shift << 1 | di as u32;
        self.bits += 1;
    }

    fn decode(&mut self) {
        let sub = self.addr >> (ADDR_BITS - 2);
        match (self.op, sub) {
            (0b10, _) => {
                self.phase = Phase::Reading;
                self.out_bit = None;
            }
            (0b01, _) | (0b00, 0b01) => self.phase = Phase::Data,
            (0b11, _) => {
                if self.write_enabled {
                    self.words[self.addr as usize] = 0xffff;
                }
                self.phase = Phase::Done;
            }
            (0b00, 0b11) => {
                self.write_enabled = true;
                self.phase = Phase::Done;
            }
            (0b00, 0b00) => {
                self.write_enabled = false;
                self.phase = Phase::Done;
            }
            (0b00, _) => {
                // ERAL.
                if self.write_enabled {
                    self.words = [0xffff; WORDS];
                }
                self.phase = Phase::Done;
            }
            _ => self.phase = Phase::Done,
        }
    }

    fn program(&mut self, data: u16) {
        if !self.write_enabled {
            log::debug!("e1000: EEPROM write while programming is disabled (no EWEN)");
            return;
        }
        if self.op == 0b01 {
            self.words[self.addr as usize] = data;
        } else {
            self.words = [data; WORDS];
        }
    }

    /// The word at `addr` as EERD returns it (addresses wrap at the part size).
    pub fn read_word(&self, addr: u32) -> u16 {
        self.words[addr as usize % WORDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_checksums_to_baba() {
        let w = image([0x52, 0x54, 0, 0x12, 0x34, 0x56], 0x100e, 0x001e, 0x8086);
        let sum = w.iter().fold(0u16, |a, &x| a.wrapping_add(x));
        assert_eq!(sum, CHECKSUM_SUM);
        assert_eq!(w[0], 0x5452);
        assert_eq!(w[2], 0x5634);
        assert_eq!(w[0x0d], 0x100e);
    }
}
