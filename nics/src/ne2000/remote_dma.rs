//! Remote DMA: the host's path to packet memory through the data port (0x10-0x17).
//!
//! RSAR/RBCR program a transfer; CR.RD starts a remote read, a remote write or a Send
//! Packet. Each data port access moves one unit: a byte, or with DCR.WTS a 16-bit word
//! (memory is word-wide, so the address's bit 0 is ignored and DCR.BOS picks the byte
//! order). A 32-bit port access moves two units, a 16-bit access in byte mode two bytes
//! (the bus splits it). The address advances by the unit, wrapping from PSTOP to PSTART;
//! the count drops by the unit, and when it reaches zero the transfer stops and ISR.RDC
//! is set. Accesses with no transfer in progress are logged and ignored (reads return 0).

use log::debug;

use super::registers::{Dcr, Isr};
use super::state::RemoteDma;
use super::Ne2000;

impl<M> Ne2000<M> {
    /// Starts a remote read or write from RSAR for RBCR bytes. A zero count completes at
    /// once (ISR.RDC).
    pub(super) fn remote_start(&mut self, mode: RemoteDma) {
        self.st.crda = self.st.rsar;
        self.st.remote_left = self.st.rbcr;
        self.st.dma = mode;
        if self.st.remote_left == 0 {
            self.remote_complete();
        }
    }

    /// Send Packet (CR.RD = 011, needs DCR.ARM): a remote read of the packet at BNRY, its
    /// length taken from the ring header, after which BNRY moves to the header's next
    /// page pointer.
    pub(super) fn send_packet_command(&mut self) {
        if !self.st.dcr.contains(Dcr::ARM) {
            debug!("ne2000: Send Packet command with DCR.ARM clear is not executed");
            return;
        }
        let base = (self.st.bnry as u16) << 8;
        let next = self.mem_read(base.wrapping_add(1));
        let count = u16::from_le_bytes([
            self.mem_read(base.wrapping_add(2)),
            self.mem_read(base.wrapping_add(3)),
        ]);
        self.st.rnpp = next;
        self.st.rsar = base;
        self.st.rbcr = count;
        self.remote_start(RemoteDma::SendPacket);
    }

    fn remote_complete(&mut self) {
        if self.st.dma == RemoteDma::SendPacket {
            self.st.bnry = self.st.rnpp;
        }
        self.st.dma = RemoteDma::Idle;
        self.st.isr |= Isr::RDC;
    }

    /// The address after `addr` + `step`, wrapping from PSTOP to PSTART when the step
    /// crosses into the PSTOP page of a well-formed ring.
    fn remote_next(&self, addr: u16, step: u16) -> u16 {
        let next = addr as u32 + step as u32;
        let (start, stop) = ((self.st.pstart as u32) << 8, (self.st.pstop as u32) << 8);
        if start < stop && (addr as u32) < stop && next >= stop {
            (next - stop + start) as u16
        } else {
            next as u16
        }
    }

    fn remote_advance(&mut self, step: u16) {
        self.st.crda = self.remote_next(self.st.crda, step);
        self.st.remote_left = self.st.remote_left.saturating_sub(step);
        self.work += 1;
        if self.st.remote_left == 0 {
            self.remote_complete();
        }
    }

    fn word_mode(&self) -> bool {
        self.st.dcr.contains(Dcr::WTS)
    }

    /// Reads one transfer unit (byte or word) from the remote DMA.
    fn remote_read_unit(&mut self) -> u16 {
        if !matches!(self.st.dma, RemoteDma::Read | RemoteDma::SendPacket) {
            debug!("ne2000: data port read with no remote read in progress returns 0");
            return 0;
        }
        let addr = self.st.crda;
        let v = if self.word_mode() {
            let a = addr & !1;
            let (b0, b1) = (self.mem_read(a), self.mem_read(a | 1));
            if self.st.dcr.contains(Dcr::BOS) {
                u16::from_be_bytes([b0, b1])
            } else {
                u16::from_le_bytes([b0, b1])
            }
        } else {
            self.mem_read(addr) as u16
        };
        self.remote_advance(if self.word_mode() { 2 } else { 1 });
        v
    }

    /// Writes one transfer unit (byte or word) through the remote DMA.
    fn remote_write_unit(&mut self, v: u16) {
        if self.st.dma != RemoteDma::Write {
            debug!("ne2000: data port write {v:#06x} with no remote write in progress ignored");
            return;
        }
        let addr = self.st.crda;
        if self.word_mode() {
            let bytes = if self.st.dcr.contains(Dcr::BOS) {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            let a = addr & !1;
            self.mem_write(a, bytes[0]);
            self.mem_write(a | 1, bytes[1]);
            self.remote_advance(2);
        } else {
            self.mem_write(addr, v as u8);
            self.remote_advance(1);
        }
    }

    /// Number of transfer units and bits per unit for a port access of `size` bytes.
    fn units(&self, size: u8) -> (u8, u32) {
        if self.word_mode() {
            (size.div_ceil(2), 16)
        } else {
            (size, 8)
        }
    }

    /// A data port read of `size` (1, 2 or 4) bytes.
    pub(super) fn data_read(&mut self, size: u8) -> u32 {
        let (n, bits) = self.units(size);
        let mut v = 0u32;
        for i in 0..n as u32 {
            v |= (self.remote_read_unit() as u32) << (bits * i);
        }
        match size {
            1 => v & 0xff,
            2 => v & 0xffff,
            _ => v,
        }
    }

    /// A data port write of `size` (1, 2 or 4) bytes.
    pub(super) fn data_write(&mut self, size: u8, value: u32) {
        let (n, bits) = self.units(size);
        for i in 0..n as u32 {
            self.remote_write_unit((value >> (bits * i)) as u16);
        }
    }
}
