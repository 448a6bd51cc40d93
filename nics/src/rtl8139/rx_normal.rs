//! Normal (C) mode receive into the ring at RBSTART: 8, 16, 32 or 64 KiB (RCR.RBLEN) plus
//! 16 bytes. Each packet is a 4-byte header (status, length including the 4-byte CRC),
//! the data and the CRC, and the next packet starts at the next 4-byte boundary. The
//! driver reports what it consumed through CAPR, which lags its read pointer by 16 bytes.
//!
//! With RCR.WRAP set (and a ring below 64 KiB) a packet crossing the end continues past
//! it, into the 1.5 KiB the datasheet tells drivers to reserve; a packet that would spill
//! further wraps instead, so the chip never writes outside what the guest set aside. A
//! frame that does not fit in the free space waits (`RxOutcome::NoBuffer`, ISR.RXOVW).

use vm_memory::GuestMemory;

use super::filter::{self, Fcs, Match};
use super::regs::{int, rcr, rxstat, RBSTART};
use super::Rtl8139;
use crate::device::RxOutcome;
use crate::dma;

/// The longest frame (with CRC) the ring accepts; the chip flags longer ones LONG (4 KiB).
pub(super) const MAX_RX_LEN: usize = 4096;
/// What the datasheet tells a driver to reserve past the ring when WRAP is set.
const WRAP_SPILL: usize = 16 + 1536;
/// Space a full-size frame needs: header + 1514 bytes + CRC, aligned.
const FULL_FRAME_NEED: usize = 1524;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl<M: GuestMemory> Rtl8139<M> {
    pub(super) fn ring_size(&self) -> usize {
        8192 << ((self.r.rcr >> rcr::RBLEN_SHIFT) & 3)
    }

    fn rx_read_ptr(&self) -> usize {
        (self.r.capr as usize + 16) % self.ring_size()
    }

    /// True when the driver has consumed everything written (CR.BUFE).
    pub(super) fn rx_ring_empty(&self) -> bool {
        self.rx_read_ptr() == self.r.cbr as usize % self.ring_size()
    }

    /// Bytes the chip may write before reaching the driver's read pointer.
    fn rx_free(&self) -> usize {
        let size = self.ring_size();
        let w = self.r.cbr as usize % size;
        let r = self.rx_read_ptr();
        if r == w {
            size
        } else {
            (r + size - w) % size
        }
    }

    /// True when a full-size frame fits, and also while the ring is full but ISR.RXOVW
    /// is clear: the chip flags a full ring when a frame arrives, so the frame must be
    /// offered (and answered `NoBuffer`) to raise RXOVW. Linux 8139too depends on it: its
    /// NAPI poll reads the ring only while ISR shows ROK/RXOVW/FOVW and acks them after
    /// every frame, so after a poll that used its whole budget on a full ring nothing
    /// else would bring the driver back, and the ring would never drain.
    pub(super) fn normal_can_receive(&self) -> bool {
        self.rx_free() > FULL_FRAME_NEED || self.r.isr & int::RXOVW == 0
    }

    /// Filters a frame against IDR/MAR/RCR; `None` when it is not for us.
    pub(super) fn filter(&self, frame: &[u8]) -> Option<Match> {
        let dst: [u8; 6] = frame.get(..6)?.try_into().ok()?;
        filter::accept(&dst, self.r.rcr, &self.idr(), &self.mar())
    }

    pub(super) fn normal_receive(&mut self, frame: &[u8]) -> RxOutcome {
        if !self.rx_enabled() {
            return RxOutcome::Filtered;
        }
        let Some(m) = self.filter(frame) else {
            return RxOutcome::Filtered;
        };
        // Frames from the backend carry no padding; the wire minimum is 60 bytes + CRC.
        let mut pad = [0u8; 60];
        let data: &[u8] = if frame.len() < pad.len() {
            pad[..frame.len()].copy_from_slice(frame);
            &pad
        } else {
            frame
        };
        let len = data.len() + 4;
        if len > MAX_RX_LEN || !self.pci.bus_master() {
            log::debug!(
                "rtl8139: {}-byte frame dropped (longer than {MAX_RX_LEN} or bus mastering off)",
                frame.len()
            );
            self.r.mpc = (self.r.mpc + 1) & 0xFF_FFFF;
            return RxOutcome::Dropped;
        }
        let need = align4(4 + len);
        if need >= self.rx_free() {
            self.raise(int::RXOVW);
            return RxOutcome::NoBuffer;
        }
        let status = rxstat::ROK
            | match m {
                Match::Broadcast => rxstat::BAR,
                Match::Multicast => rxstat::MAR,
                Match::Physical => rxstat::PAM,
            };
        let header = (status as u32 | (len as u32) << 16).to_le_bytes();
        let mut fcs = Fcs::new();
        fcs.update(data);
        let size = self.ring_size();
        let start = self.r.cbr as usize % size;
        let contiguous =
            self.r.rcr & rcr::WRAP != 0 && size < 65536 && start + need <= size + WRAP_SPILL;
        let ok = self.ring_write(start, &header, contiguous)
            && self.ring_write(start + 4, data, contiguous)
            && self.ring_write(start + 4 + data.len(), &fcs.bytes(), contiguous);
        self.work += 1 + len as u64 / 64;
        if !ok {
            log::debug!("rtl8139: RX ring at RBSTART is outside guest memory");
            self.master_abort();
            self.r.mpc = (self.r.mpc + 1) & 0xFF_FFFF;
            return RxOutcome::Dropped;
        }
        self.r.cbr = ((start + need) % size) as u16;
        self.r.erbcr = len as u16;
        self.r.ersr = 0x09; // ERGood | EROK
        self.raise(int::ROK);
        RxOutcome::Accepted
    }

    /// Writes `data` at ring offset `off` (which may lie past the end when `contiguous`),
    /// wrapping to the ring start otherwise.
    fn ring_write(&self, off: usize, data: &[u8], contiguous: bool) -> bool {
        let base = self.bytes_u32(RBSTART) as u64;
        if contiguous {
            return dma::write_from(&self.mem, base + off as u64, data);
        }
        let size = self.ring_size();
        let o = off % size;
        let first = data.len().min(size - o);
        dma::write_from(&self.mem, base + o as u64, &data[..first])
            && dma::write_from(&self.mem, base, &data[first..])
    }
}
