//! Normal (C) mode transmit: four descriptors, each a TSD status/size register and a TSAD
//! buffer address, served strictly round-robin. Writing a TSD with OWN = 0 hands the
//! buffer to the chip; when the chip is done it sets OWN and TOK (or TABT) and ISR.TOK
//! (or ISR.TER). The early-TX threshold is kept as written: the whole frame is fetched at
//! once, so it never causes an underrun.

use vm_memory::GuestMemory;

use super::regs::{int, tsd, TSAD0};
use super::Rtl8139;
use crate::dma;

impl<M: GuestMemory> Rtl8139<M> {
    /// A write to TSDn (C mode).
    pub(super) fn tsd_written(&mut self, i: usize, val: u32) {
        let v = (self.r.tsd[i] & !tsd::WRITABLE) | (val & tsd::WRITABLE);
        if val & tsd::OWN == 0 {
            // A new transmission: status bits from the previous one are cleared.
            self.r.tsd[i] = v & (tsd::ERTXTH_MASK | tsd::SIZE_MASK);
            self.r.tx_pending |= 1 << i;
            self.kick_normal_tx();
        } else {
            self.r.tsd[i] = v;
        }
    }

    /// Sends every pending descriptor in round-robin order, starting at the one the chip
    /// serves next; stops at the first that is not pending. At most four per call.
    pub(super) fn kick_normal_tx(&mut self) {
        if self.cplus_tx_mode() || !self.tx_enabled() || self.r.tx_pending == 0 {
            return;
        }
        if !self.pci.bus_master() {
            log::debug!("rtl8139: transmit waits: bus mastering is off");
            return;
        }
        for _ in 0..4 {
            let i = (self.r.tx_next & 3) as usize;
            if self.r.tx_pending & (1 << i) == 0 {
                break;
            }
            self.transmit_descriptor(i);
        }
    }

    fn transmit_descriptor(&mut self, i: usize) {
        self.r.tx_pending &= !(1 << i);
        self.r.tx_next = ((i + 1) & 3) as u8;
        self.work += 1;
        let size = (self.r.tsd[i] & tsd::SIZE_MASK) as usize;
        let addr = self.bytes_u32(TSAD0 + 4 * i as u8) as u64;
        if size > tsd::MAX_SIZE {
            log::debug!(
                "rtl8139: TSD{i} size {size} exceeds {} bytes: aborted",
                tsd::MAX_SIZE
            );
            self.abort_descriptor(i);
            return;
        }
        let mut buf = std::mem::take(&mut self.bufs.tx);
        buf.clear();
        buf.resize(size, 0);
        let fetched = dma::read_into(&self.mem, addr, &mut buf);
        if fetched {
            self.emit(&buf);
        }
        self.bufs.tx = buf;
        if !fetched {
            log::debug!("rtl8139: TSAD{i} {addr:#x}+{size} is outside guest memory");
            self.master_abort();
            self.abort_descriptor(i);
            return;
        }
        self.r.tsd[i] |= tsd::OWN | tsd::TOK;
        self.r.tally.tx_ok += 1;
        self.raise(int::TOK);
    }

    fn abort_descriptor(&mut self, i: usize) {
        self.r.tsd[i] |= tsd::OWN | tsd::TABT;
        self.r.tally.tx_err += 1;
        self.r.tally.tx_abt = self.r.tally.tx_abt.wrapping_add(1);
        self.raise(int::TER);
    }
}
