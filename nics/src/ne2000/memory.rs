//! The card's packet memory as the DP8390's local and remote DMA see it: the 32-byte
//! station address PROM at 0x0000, 16 KiB of RAM at 0x4000..0x8000 (pages 0x40-0x7F), and
//! nothing elsewhere.
//!
//! 16 KiB is what a genuine NE2000 carries and what Linux's ne2k-pci (NESM_START_PG 0x40,
//! NESM_STOP_PG 0x80) and ne.c assume for word-wide cards; the RTL8029AS addresses the same
//! window. Every access is bounds-checked here: reads of absent memory return 0xFF (an
//! undriven bus) and writes to it or to the PROM are dropped and logged, so no guest value
//! can reach outside the 16 KiB.

use log::debug;
use vm_nic_backends::MacAddr;

use super::Ne2000;

/// Size of the station address PROM.
pub const PROM_SIZE: usize = 32;
/// First card address of packet RAM.
pub const RAM_START: u16 = 0x4000;
/// Size of packet RAM.
pub const RAM_SIZE: usize = 16 * 1024;
/// First page of packet RAM (RAM_START / 256).
pub const RAM_START_PAGE: u8 = 0x40;
/// First page after packet RAM.
pub const RAM_STOP_PAGE: u8 = 0x80;

/// The PROM image: each MAC byte twice (the PROM is byte-wide on a word-wide bus, so word
/// reads return it doubled), zeros, and the NE2000 signature 0x57 ('W') at 0x1C-0x1F,
/// which drivers read as bytes 14/15 after undoubling.
pub fn prom_image(mac: MacAddr) -> [u8; PROM_SIZE] {
    let mut p = [0u8; PROM_SIZE];
    for (i, b) in mac.bytes().iter().enumerate() {
        p[2 * i] = *b;
        p[2 * i + 1] = *b;
    }
    p[0x1c..0x20].fill(0x57);
    p
}

fn ram_index(addr: u16) -> Option<usize> {
    let off = addr.checked_sub(RAM_START)? as usize;
    (off < RAM_SIZE).then_some(off)
}

impl<M> Ne2000<M> {
    /// Reads one byte of card memory.
    pub(super) fn mem_read(&self, addr: u16) -> u8 {
        if (addr as usize) < PROM_SIZE {
            return self.prom[addr as usize];
        }
        match ram_index(addr) {
            Some(i) => self.st.mem[i],
            None => 0xff,
        }
    }

    /// `len` bytes of packet RAM from `addr`, when they all lie inside RAM.
    pub(super) fn ram_slice(&self, addr: u16, len: usize) -> Option<&[u8]> {
        let i = ram_index(addr)?;
        self.st.mem.get(i..i.checked_add(len)?)
    }

    /// Writes one byte of card memory; the PROM and absent memory ignore writes.
    pub(super) fn mem_write(&mut self, addr: u16, value: u8) {
        match ram_index(addr) {
            Some(i) => self.st.mem[i] = value,
            None => debug!("ne2000: write of {value:#04x} to card address {addr:#06x} outside packet RAM dropped"),
        }
    }

    /// Writes `data` starting at `addr`, which must not cross a 256-byte page (callers
    /// split at page boundaries, where ring wrapping happens).
    pub(super) fn mem_write_page(&mut self, addr: u16, data: &[u8]) {
        match ram_index(addr) {
            Some(i) if i + data.len() <= RAM_SIZE => {
                self.st.mem[i..i + data.len()].copy_from_slice(data)
            }
            _ => {
                for (i, b) in data.iter().enumerate() {
                    self.mem_write(addr.wrapping_add(i as u16), *b);
                }
            }
        }
    }
}
