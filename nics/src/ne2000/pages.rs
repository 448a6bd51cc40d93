//! The paged register file at offsets 0x00-0x0F: CR on every page, then page 0 (status and
//! control), page 1 (addresses), page 2 (diagnostic read-back) and page 3 (RTL8029AS
//! configuration, PCI only).

use log::debug;

use super::registers::{
    cr, page0, page1, page2, Dcr, Isr, Rcr, Tcr, OPEN_BUS, RTL8029_ID, RTL_RCR_READ_ONES,
};
use super::state::RemoteDma;
use super::Ne2000;

/// `word` with byte `index` (0 = low, 1 = high) replaced by `v`: the 8-bit halves of
/// the 16-bit counters and addresses.
fn with_byte(word: u16, index: u8, v: u8) -> u16 {
    let mut b = word.to_le_bytes();
    b[index as usize & 1] = v;
    u16::from_le_bytes(b)
}

impl<M> Ne2000<M> {
    /// CR as read back: page, remote DMA command, STA/STP from the run state. TXP is
    /// always clear because transmission completes inside the write that set it.
    pub(super) fn cr_value(&self) -> u8 {
        let run = if self.st.started { cr::STA } else { cr::STP };
        (self.st.page << cr::PS_SHIFT) | self.st.remote_cmd | run
    }

    /// Reads register `off` (0x00..=0x0F) of the selected page.
    pub(super) fn reg_read(&mut self, off: u8) -> u8 {
        if off == 0 {
            return self.cr_value();
        }
        match self.st.page {
            0 => self.page0_read(off),
            1 => self.page1_read(off),
            2 => self.page2_read(off),
            _ => self.page3_read(off),
        }
    }

    /// Writes register `off` (0x00..=0x0F) of the selected page.
    pub(super) fn reg_write(&mut self, off: u8, v: u8) {
        if off == 0 {
            return self.cr_write(v);
        }
        match self.st.page {
            0 => self.page0_write(off, v),
            1 => self.page1_write(off, v),
            2 => self.page2_write(off, v),
            _ => self.page3_write(off, v),
        }
    }

    fn cr_write(&mut self, v: u8) {
        self.st.page = (v & cr::PS_MASK) >> cr::PS_SHIFT;
        if v & cr::STP != 0 {
            // Stop wins over Start (DP8390D CR description).
            self.st.started = false;
            self.st.isr |= Isr::RST;
        } else if v & cr::STA != 0 {
            if !self.st.started {
                // The overflow recovery sequence ends with Start: the receiver resumes.
                self.st.overflow = false;
            }
            self.st.started = true;
            self.st.isr.remove(Isr::RST);
        }
        let rd = v & cr::RD_MASK;
        self.st.remote_cmd = rd;
        if rd & cr::RD_ABORT != 0 {
            self.st.dma = RemoteDma::Idle;
        } else {
            match rd {
                cr::RD_READ => self.remote_start(RemoteDma::Read),
                cr::RD_WRITE => self.remote_start(RemoteDma::Write),
                cr::RD_SEND => self.send_packet_command(),
                _ => debug!(
                    "ne2000: CR write {v:#04x} with RD=000 (not allowed): remote DMA unchanged"
                ),
            }
        }
        if v & cr::TXP != 0 {
            self.transmit();
        }
    }

    fn page0_read(&mut self, off: u8) -> u8 {
        let pci = self.is_pci();
        let s = &mut self.st;
        match off {
            page0::CLDA0_PSTART => s.clda as u8,
            page0::CLDA1_PSTOP => (s.clda >> 8) as u8,
            page0::BNRY => s.bnry,
            page0::TSR_TPSR => s.tsr.bits(),
            page0::NCR_TBCR0 => s.ncr,
            page0::FIFO_TBCR1 => {
                let b = s.fifo[s.fifo_pos as usize & 7];
                s.fifo_pos = (s.fifo_pos + 1) & 7;
                b
            }
            page0::ISR => s.isr.bits(),
            page0::CRDA0_RSAR0 => s.crda as u8,
            page0::CRDA1_RSAR1 => (s.crda >> 8) as u8,
            page0::ID0_RBCR0 | page0::ID1_RBCR1 if pci => {
                RTL8029_ID[(off - page0::ID0_RBCR0) as usize]
            }
            page0::RSR_RCR => s.rsr.bits(),
            page0::CNTR0_TCR | page0::CNTR1_DCR | page0::CNTR2_IMR => {
                // Tally counters clear when read (DP8390D, Network Tally Counters).
                let i = (off - page0::CNTR0_TCR) as usize;
                std::mem::take(&mut s.cntr[i])
            }
            _ => OPEN_BUS,
        }
    }

    fn page0_write(&mut self, off: u8, v: u8) {
        let s = &mut self.st;
        match off {
            page0::CLDA0_PSTART => s.pstart = v,
            page0::CLDA1_PSTOP => s.pstop = v,
            page0::BNRY => {
                s.bnry = v;
                // The host removed packets: the receiver may take frames again and the
                // overflow's RST indication ends (DP8390D ISR.RST description).
                if s.overflow {
                    s.overflow = false;
                    s.isr.remove(Isr::RST);
                }
            }
            page0::TSR_TPSR => s.tpsr = v,
            page0::NCR_TBCR0 => s.tbcr = with_byte(s.tbcr, 0, v),
            page0::FIFO_TBCR1 => s.tbcr = with_byte(s.tbcr, 1, v),
            page0::ISR => s.isr.remove(Isr::from_bits_retain(v) & Isr::INTERRUPTS),
            page0::CRDA0_RSAR0 | page0::CRDA1_RSAR1 => {
                s.rsar = with_byte(s.rsar, off - page0::CRDA0_RSAR0, v);
                s.crda = s.rsar;
            }
            page0::ID0_RBCR0 | page0::ID1_RBCR1 => {
                s.rbcr = with_byte(s.rbcr, off - page0::ID0_RBCR0, v);
                s.remote_left = s.rbcr;
            }
            page0::RSR_RCR => s.rcr = Rcr::from_bits_truncate(v),
            page0::CNTR0_TCR => s.tcr = Tcr::from_bits_truncate(v),
            page0::CNTR1_DCR => s.dcr = Dcr::from_bits_truncate(v),
            page0::CNTR2_IMR => s.imr = Isr::from_bits_truncate(v) & Isr::INTERRUPTS,
            _ => {}
        }
    }

    fn page1_read(&self, off: u8) -> u8 {
        match off {
            page1::PAR0..=0x06 => self.st.par[(off - page1::PAR0) as usize],
            page1::CURR => self.st.curr,
            _ => self.st.mar[(off - page1::MAR0) as usize & 7],
        }
    }

    fn page1_write(&mut self, off: u8, v: u8) {
        match off {
            page1::PAR0..=0x06 => self.st.par[(off - page1::PAR0) as usize] = v,
            page1::CURR => self.st.curr = v,
            _ => self.st.mar[(off - page1::MAR0) as usize & 7] = v,
        }
    }

    fn page2_read(&self, off: u8) -> u8 {
        let s = &self.st;
        match off {
            page2::PSTART_CLDA0 => s.pstart,
            page2::PSTOP_CLDA1 => s.pstop,
            page2::RNPP => s.rnpp,
            page2::TPSR => s.tpsr,
            page2::LNPP => s.lnpp,
            page2::ADDR_HI => (s.clda >> 8) as u8,
            page2::ADDR_LO => s.clda as u8,
            page2::RCR if self.is_pci() => s.rcr.bits() | RTL_RCR_READ_ONES,
            page2::RCR => s.rcr.bits(),
            page2::TCR => s.tcr.bits(),
            page2::DCR => s.dcr.bits(),
            page2::IMR => s.imr.bits(),
            _ => OPEN_BUS,
        }
    }

    fn page2_write(&mut self, off: u8, v: u8) {
        let s = &mut self.st;
        match off {
            page2::PSTART_CLDA0 | page2::ADDR_LO => s.clda = with_byte(s.clda, 0, v),
            page2::PSTOP_CLDA1 | page2::ADDR_HI => s.clda = with_byte(s.clda, 1, v),
            page2::RNPP => s.rnpp = v,
            page2::LNPP => s.lnpp = v,
            _ => debug!("ne2000: page 2 write {v:#04x} to reserved offset {off:#x} ignored"),
        }
    }
}
