//! The register file: byte-granular reads composed into 1/2/4-byte accesses, and writes
//! split at register boundaries so a byte, word or dword access to any register behaves
//! as the matching part of its natural-width write.

use vm_memory::GuestMemory;

use super::regs::{self, cr, cr9346, tcr};
use super::{Revision, Rtl8139};

/// The natural span (base, width) of the register holding byte `off`.
fn span(off: u8) -> (u8, u8) {
    match off {
        0x10..=0x1F | 0x40..=0x4F | 0x54..=0x57 => (off & !3, 4),
        0x34 | 0x35 | 0x38..=0x3F | 0x62 | 0x63 | 0x74 | 0x75 | 0xE0 | 0xE1 => (off & !1, 2),
        _ => (off, 1),
    }
}

/// `old` with the bytes selected by `mask` replaced from `v`.
fn merge(old: u32, v: u32, mask: u32) -> u32 {
    (old & !mask) | (v & mask)
}

fn byte_of(v: u32, off: u8, base: u8) -> u8 {
    (v >> (8 * (off - base) as u32)) as u8
}

impl<M: GuestMemory> Rtl8139<M> {
    /// Reads `size` bytes at `off` (little-endian); bytes past 0xFF read as 0.
    pub(super) fn read(&self, off: u8, size: u8) -> u32 {
        let mut v = 0u32;
        for i in 0..size as u16 {
            let o = off as u16 + i;
            if o < 256 {
                v |= (self.read_byte(o as u8) as u32) << (8 * i);
            }
        }
        v
    }

    /// One register byte. Reads have no side effects on this chip.
    pub(super) fn read_byte(&self, off: u8) -> u8 {
        let cplus = self.rev == Revision::Rtl8139CPlus;
        let b = |v: u32, base: u8| byte_of(v, off, base);
        match off {
            0x00..=0x05 | 0x08..=0x0F => self.r.bytes[off as usize],
            0x10..=0x17 => b(self.r.tsd[(off as usize - 0x10) / 4], off & !3),
            0x18..=0x1F if !self.cplus_any() => b(self.r.tsd[(off as usize - 0x10) / 4], off & !3),
            0x20..=0x33 => self.r.bytes[off as usize],
            0x34 | 0x35 => b(self.r.erbcr as u32, 0x34),
            regs::ERSR => self.r.ersr,
            regs::CR => self.r.cr | if self.rx_ring_empty() { cr::BUFE } else { 0 },
            0x38 | 0x39 => b(self.r.capr as u32, 0x38),
            0x3A | 0x3B => b(self.r.cbr as u32, 0x3A),
            0x3C | 0x3D => b(self.r.imr as u32, 0x3C),
            0x3E | 0x3F => b(self.r.isr as u32, 0x3E),
            0x40..=0x43 => b(self.r.tcr | self.rev.hwverid(), 0x40),
            0x44..=0x47 => b(self.r.rcr, 0x44),
            0x48..=0x4B => b(self.tctr_now(), 0x48),
            0x4C..=0x4F => b(self.r.mpc, 0x4C),
            regs::CR9346 => self.cr9346_read(),
            regs::CONFIG0 | regs::CONFIG1 | regs::CONFIG3 | regs::CONFIG4 => {
                self.r.bytes[off as usize]
            }
            0x54..=0x57 => b(self.r.timer_int, 0x54),
            regs::MSR => self.msr(),
            0x5C | 0x5D => self.r.bytes[off as usize],
            regs::RERID => self.rev.id(),
            0x60 | 0x61 => b(self.tsad() as u32, 0x60),
            0x62 | 0x63 => b(self.r.bmcr as u32, 0x62),
            0x64 | 0x65 => b(self.bmsr() as u32, 0x64),
            0x66 | 0x67 | 0x70 | 0x71 => self.r.bytes[off as usize],
            0x68 | 0x69 => b(self.anlpar() as u32, 0x68),
            0x6A | 0x6B => b(self.aner() as u32, 0x6A),
            0x74 | 0x75 => b(self.cscr() as u32, 0x74),
            0x78..=0x80 | 0x84..=0xD8 => self.r.bytes[off as usize],
            0xE0 | 0xE1 if cplus => b(self.r.cpcmd as u32, 0xE0),
            0xE2..=0xEC if cplus => self.r.bytes[off as usize],
            _ => 0,
        }
    }

    /// Writes `size` bytes of `val` at `off`, one register at a time.
    pub(super) fn write(&mut self, off: u8, size: u8, val: u32) {
        let start = off as u16;
        let end = (start + size as u16).min(256);
        let mut o = start;
        while o < end {
            let (base, width) = span(o as u8);
            let stop = (base as u16 + width as u16).min(end);
            let mut v = 0u32;
            let mut mask = 0u32;
            for p in o..stop {
                let byte = (val >> (8 * (p - start))) & 0xFF;
                let shift = 8 * (p - base as u16);
                v |= byte << shift;
                mask |= 0xFF << shift;
            }
            self.write_reg(base, v, mask);
            o = stop;
        }
        self.update_irq();
    }

    fn write_reg(&mut self, base: u8, v: u32, mask: u32) {
        let cplus = self.rev == Revision::Rtl8139CPlus;
        match base {
            0x00..=0x05 | 0x08..=0x0F | 0x20..=0x33 => self.r.bytes[base as usize] = v as u8,
            0x10 | 0x14 if self.cplus_any() => {
                let i = (base as usize - 0x10) / 4;
                self.r.tsd[i] = merge(self.r.tsd[i], v, mask);
                if base == 0x10 {
                    self.dtccr_written();
                }
            }
            0x18 | 0x1C if self.cplus_any() => {
                log::debug!("rtl8139: write to reserved C+ offset {base:#x} ignored")
            }
            0x10..=0x1F => {
                let i = (base as usize - 0x10) / 4;
                self.tsd_written(i, merge(self.r.tsd[i], v, mask));
            }
            regs::CR => self.cr_write(v as u8),
            0x38 => self.r.capr = merge(self.r.capr as u32, v, mask) as u16,
            0x3C => self.r.imr = merge(self.r.imr as u32, v, mask) as u16 & self.rev.valid_int(),
            0x3E => self.r.isr &= !((v & mask) as u16),
            0x40 => {
                self.r.tcr = merge(self.r.tcr, v, mask) & tcr::WRITABLE;
                if v & mask & tcr::CLRABT != 0 {
                    // Emulated aborts (oversized descriptor, DMA fault) would only repeat,
                    // so there is nothing to retransmit.
                    log::debug!("rtl8139: TCR.CLRABT: no aborted transmission to retry");
                }
            }
            0x44 => self.r.rcr = merge(self.r.rcr, v, mask) & regs::rcr::WRITABLE,
            0x48 => self.tctr_reset(),
            0x4C => self.r.mpc = 0,
            regs::CR9346 => self.cr9346_write(v as u8),
            regs::CONFIG1 | regs::CONFIG3 | regs::CONFIG4 => self.config_write(base, v as u8),
            0x54 => {
                self.r.timer_int = merge(self.r.timer_int, v, mask);
                self.rearm_timer();
            }
            regs::MSR => self.r.bytes[base as usize] = v as u8 & 0xC0,
            regs::HLTCLK => self.hltclk_write(v as u8),
            0x5C => self.r.bytes[0x5C] = v as u8,
            0x5D => self.r.bytes[0x5D] = v as u8 & 0x0F,
            0x62 => self.bmcr_write(merge(self.r.bmcr as u32, v, mask) as u16),
            0x66 | 0x67 | 0x70 | 0x71 | 0x78..=0x80 | 0x84..=0xD8 => {
                self.r.bytes[base as usize] = v as u8
            }
            0x74 => {
                let old = u16::from_le_bytes([self.r.bytes[0x74], self.r.bytes[0x75]]) as u32;
                let new = (merge(old, v, mask) as u16)
                    & !(regs::mii::CSCR_LINK_OK | regs::mii::CSCR_LINK_CHANGE);
                self.r.bytes[0x74..0x76].copy_from_slice(&new.to_le_bytes());
            }
            regs::TPPOLL if cplus => self.tppoll_write(v as u8),
            0xE0 if cplus => {
                self.r.cpcmd = merge(self.r.cpcmd as u32, v, mask) as u16 & regs::cpcmd::WRITABLE;
            }
            0xE2..=0xEC if cplus => self.r.bytes[base as usize] = v as u8,
            _ => log::debug!("rtl8139: write to read-only or reserved offset {base:#x} ignored"),
        }
    }

    /// True when the C+ register layout at 0x10-0x2F is in use.
    pub(super) fn cplus_any(&self) -> bool {
        self.cplus_tx_mode() || self.cplus_rx_mode()
    }

    fn cr_write(&mut self, v: u8) {
        if v & cr::RST != 0 {
            self.soft_reset();
            return;
        }
        let old = self.r.cr;
        self.r.cr = v & (cr::RE | cr::TE);
        if old & cr::RE == 0 && v & cr::RE != 0 {
            // Enabling the receiver restarts it at the ring start.
            self.r.capr = 0xFFF0;
            self.r.cbr = 0;
            self.r.rx_index = 0;
        }
        if old & cr::TE == 0 && v & cr::TE != 0 {
            self.r.tx_npq_index = 0;
            self.r.tx_hpq_index = 0;
            self.kick_normal_tx();
        }
    }

    fn config_unlocked(&self) -> bool {
        self.r.cr9346 & cr9346::EEM_MASK == cr9346::EEM_CONFIG_WRITE
    }

    fn config_write(&mut self, reg: u8, v: u8) {
        if !self.config_unlocked() {
            log::debug!("rtl8139: write to Config register {reg:#x} while 9346CR is locked");
            return;
        }
        // Read-only bits: Config1 MEMMAP/IOMAP; Config3 GNTSel, CardB_En, CLKRUN_En,
        // FuncRegEn, FBtBEn (loaded from the EEPROM); Config4 reserved bits.
        let ro = match reg {
            regs::CONFIG1 => 0x0C,
            regs::CONFIG3 => 0x8F,
            _ => 0x0A,
        };
        let slot = &mut self.r.bytes[reg as usize];
        *slot = (*slot & ro) | (v & !ro);
    }

    fn cr9346_read(&self) -> u8 {
        let mut v = self.r.cr9346 & 0xCE;
        if v & cr9346::EEM_MASK == cr9346::EEM_PROGRAM && self.eeprom.cs && self.eeprom.dout {
            v |= cr9346::EEDO;
        }
        v
    }

    fn cr9346_write(&mut self, v: u8) {
        match v & cr9346::EEM_MASK {
            cr9346::EEM_AUTOLOAD => {
                self.eeprom.deselect();
                self.autoload();
                self.r.cr9346 = 0;
            }
            cr9346::EEM_PROGRAM => {
                self.r.cr9346 = v & 0xCE;
                self.eeprom.set_pins(
                    v & cr9346::EECS != 0,
                    v & cr9346::EESK != 0,
                    v & cr9346::EEDI != 0,
                );
            }
            _ => {
                self.r.cr9346 = v & 0xCE;
                self.eeprom.deselect();
            }
        }
    }

    fn tsad(&self) -> u16 {
        use super::regs::tsd;
        let mut v = 0u16;
        for (i, t) in self.r.tsd.iter().enumerate() {
            let bit = |mask: u32, shift: usize| ((t & mask != 0) as u16) << (shift + i);
            v |= bit(tsd::TOK, 12) | bit(tsd::TUN, 8) | bit(tsd::TABT, 4) | bit(tsd::OWN, 0);
        }
        v
    }
}
