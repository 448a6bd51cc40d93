//! Transmit: CR.TXP sends TBCR bytes from page TPSR, appending the FCS unless TCR.CRC
//! inhibits it, and reports through TSR and ISR.PTX/TXE. TCR.LB selects loopback:
//! modes 1 (internal) and 2 (encoder/decoder) deliver the frame to this NIC's own
//! receiver only; mode 3 (external) sends it and also receives it back, as the cable
//! would. Loopback calls the receive path directly — it never transmits again, so there
//! is no recursion — and leaves the packet's last 8 bytes in the FIFO register.

use log::debug;

use super::crc::fcs;
use super::registers::{Isr, Tcr, Tsr};
use super::Ne2000;

/// Longest frame (without FCS) vm-nic transmits: 1514 bytes plus an 802.1Q tag. The
/// DP8390 would send any TBCR (a jabbering station); vm-nic aborts such a transmission
/// with TSR.ABT and ISR.TXE instead.
pub const MAX_TX_LEN: usize = 1518;

impl<M> Ne2000<M> {
    fn tsr_base(&self) -> Tsr {
        // RTL8029AS: TSR bit 1 always reads 1.
        if self.is_pci() {
            Tsr::RTL_ONE
        } else {
            Tsr::empty()
        }
    }

    /// Executes CR.TXP.
    pub(super) fn transmit(&mut self) {
        if !self.st.started {
            debug!("ne2000: CR.TXP while stopped ignored");
            return;
        }
        let len = self.st.tbcr as usize;
        let inhibit = self.st.tcr.contains(Tcr::CRC);
        let max = MAX_TX_LEN + if inhibit { 4 } else { 0 };
        self.st.ncr = 0;
        if len == 0 || len > max {
            debug!("ne2000: transmit of {len} bytes (TBCR) aborted: allowed 1..={max}");
            self.st.tsr = self.tsr_base() | Tsr::ABT;
            self.st.isr |= Isr::TXE;
            return;
        }
        let start = (self.st.tpsr as u16) << 8;
        let mut frame = std::mem::take(&mut self.tx_buf);
        frame.clear();
        match self.ram_slice(start, len) {
            Some(ram) => frame.extend_from_slice(ram),
            None => frame.extend((0..len as u16).map(|i| self.mem_read(start.wrapping_add(i)))),
        }
        self.st.clda = start.wrapping_add(len as u16);
        self.work += 1 + (len / 64) as u64;
        let mut tsr = self.tsr_base() | Tsr::PTX;
        let lb = self.st.tcr.loopback();
        if lb == 0 || lb == 3 {
            if !self.st.link_up {
                debug!("ne2000: link down: frame lost, carrier sense lost");
                tsr |= Tsr::CRS;
            } else if let Err(e) = self.backend.send(&frame) {
                debug!("ne2000: backend refused a {len}-byte frame: {e}");
            }
        }
        if lb != 0 {
            self.loop_back(&frame, inhibit);
        }
        self.tx_buf = frame;
        self.st.tsr = tsr;
        self.st.isr |= Isr::PTX;
    }

    fn loop_back(&mut self, frame: &[u8], inhibit: bool) {
        let (body, sum, ok) = if inhibit {
            match frame.len().checked_sub(4) {
                Some(n) => {
                    let got: [u8; 4] = frame[n..].try_into().unwrap_or_default();
                    (&frame[..n], got, fcs(&frame[..n]) == got)
                }
                None => (frame, [0; 4], false),
            }
        } else {
            (frame, fcs(frame), true)
        };
        // The FIFO keeps the last 8 bytes that went through it: the end of body + FCS.
        let mut tail = [0u8; 8];
        let n = (body.len() + 4).min(8);
        let wire = body.iter().chain(sum.iter()).skip(body.len() + 4 - n);
        for (slot, b) in tail[8 - n..].iter_mut().zip(wire) {
            *slot = *b;
        }
        self.st.fifo = tail;
        self.st.fifo_pos = 0;
        let out = self.receive_frame(body, sum, ok);
        debug!("ne2000: loopback of {} bytes: {out:?}", frame.len());
    }
}
