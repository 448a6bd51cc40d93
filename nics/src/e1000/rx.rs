//! Receive (SDM "Receive Functionality"): length checks (LPE, SBP), filtering, VLAN strip (CTRL.VME), the
//! FCS (stored unless RCTL.SECRC), checksum offload reporting (RXCSUM), buffer sizes
//! (BSIZE/BSEX), packets spread over several descriptors, the RDMTS threshold and the
//! out-of-descriptors case.
//!
//! A frame that does not fit the free descriptors is not lost: [`RxOutcome::NoBuffer`]
//! tells the event loop to keep it in the backend's queue; RNBC counts it once and RXO
//! tells the driver. A frame looped back by the transmitter has no queue to wait in:
//! it is dropped and counted in MPC, as the FIFO would overflow.

use vm_memory::GuestMemory;
use vm_nic_backends::MIN_FRAME_LEN;

use super::filter::Dest;
use super::offload;
use super::regs::{self, ctrl, icr, rctl, rxcsum};
use super::stats::idx;
use super::E1000;
use crate::device::RxOutcome;
use crate::dma;

/// The longest frame (with FCS) the receiver stores with LPE set.
pub const MAX_LONG: usize = 16384;
/// The longest frame (with FCS) without LPE: 1518 + a VLAN tag.
pub const MAX_NORMAL: usize = 1522;
/// Capacity of the receive staging buffer.
pub const FRAME_CAPACITY: usize = MAX_LONG + 8;

/// Receive descriptor status bits.
pub mod status {
    /// Descriptor done.
    pub const DD: u8 = 1 << 0;
    /// End of packet.
    pub const EOP: u8 = 1 << 1;
    /// Ignore checksum indication.
    pub const IXSM: u8 = 1 << 2;
    /// Packet was VLAN tagged (tag stripped into `special`).
    pub const VP: u8 = 1 << 3;
    /// TCP/UDP checksum calculated (bit 4 is reserved on these parts: there is no
    /// separate UDP bit).
    pub const TCPCS: u8 = 1 << 5;
    /// IP checksum calculated.
    pub const IPCS: u8 = 1 << 6;
}

/// Receive descriptor error bits.
pub mod errors {
    /// TCP/UDP checksum error.
    pub const TCPE: u8 = 1 << 5;
    /// IP checksum error.
    pub const IPE: u8 = 1 << 6;
}

/// The receive buffer size selected by RCTL.BSIZE and BSEX.
pub fn buffer_size(rctl: u32) -> usize {
    let bsize = (rctl >> rctl::BSIZE_SHIFT) & 3;
    if rctl & rctl::BSEX != 0 {
        [2048, 16384, 8192, 4096][bsize as usize]
    } else {
        [2048, 1024, 512, 256][bsize as usize]
    }
}

struct Ring {
    base: u64,
    count: u32,
    head: u32,
    tail: u32,
}

impl Ring {
    fn free(&self) -> u32 {
        (self.tail + self.count - self.head) % self.count
    }
}

impl<M: GuestMemory> E1000<M> {
    fn rx_ring(&self) -> Option<Ring> {
        let count = self.reg(regs::RDLEN) / 16;
        let head = self.reg(regs::RDH);
        let tail = self.reg(regs::RDT);
        if count == 0 || head >= count || tail >= count {
            return None;
        }
        let base = (self.reg(regs::RDBAH) as u64) << 32 | self.reg(regs::RDBAL) as u64;
        Some(Ring {
            base,
            count,
            head,
            tail,
        })
    }

    /// Receiver on, DMA allowed, link up, and at least one free descriptor.
    pub(crate) fn rx_ready(&self) -> bool {
        self.reg(regs::RCTL) & rctl::EN != 0
            && self.pci.bus_master()
            && self.phy.link
            && !self.loopback_active()
            && self.rx_ring().is_some_and(|r| r.free() > 0)
    }

    /// Offers one frame (without FCS) to the receiver. `looped` marks a frame from the
    /// device's own transmitter in loopback mode.
    pub(crate) fn receive_frame(&mut self, frame: &[u8], looped: bool) -> RxOutcome {
        let rctl = self.reg(regs::RCTL);
        if rctl & rctl::EN == 0 {
            return RxOutcome::Filtered;
        }
        if !self.pci.bus_master() {
            log::debug!("e1000: frame received with bus mastering disabled; dropped");
            return RxOutcome::Filtered;
        }
        if !looped && (!self.phy.link || self.loopback_active()) {
            return RxOutcome::Filtered;
        }
        if frame.len() < 14 {
            self.stats.inc(idx::RUC);
            return RxOutcome::Dropped;
        }
        let wire = frame.len().max(MIN_FRAME_LEN) + 4;
        let limit = if rctl & (rctl::LPE | rctl::SBP) != 0 {
            MAX_LONG
        } else {
            MAX_NORMAL
        };
        if wire > limit {
            log::debug!("e1000: {wire}-byte frame exceeds {limit} (LPE/SBP); dropped");
            self.stats.inc(idx::ROC);
            return RxOutcome::Dropped;
        }
        let Some(dest) = self.filter(frame) else {
            return RxOutcome::Filtered;
        };
        let Some(ring) = self.rx_ring() else {
            log::debug!("e1000: receive ring misconfigured (RDLEN/RDH/RDT)");
            return self.no_buffer(looped);
        };
        let bufsize = buffer_size(rctl);
        let (len, vlan, st, err) = self.stage_rx_frame(frame);
        let needed = len.div_ceil(bufsize) as u32;
        if ring.free() < needed {
            return self.no_buffer(looped);
        }
        self.store_rx_frame(ring, len, bufsize, vlan, st, err);
        self.rx_stalled = false;
        self.count_rx(dest, wire);
        RxOutcome::Accepted
    }

    fn no_buffer(&mut self, looped: bool) -> RxOutcome {
        if looped {
            self.stats.inc(idx::MPC);
            self.raise(icr::RXO);
            return RxOutcome::Dropped;
        }
        if !self.rx_stalled {
            self.rx_stalled = true;
            self.stats.inc(idx::RNBC);
            self.raise(icr::RXO);
        }
        RxOutcome::NoBuffer
    }

    /// Copies the frame into the staging buffer as the receiver stores it: padded to the
    /// minimum length, VLAN tag stripped, FCS appended unless SECRC. Returns the stored
    /// length, the stripped tag, and the checksum status and error bits.
    fn stage_rx_frame(&mut self, frame: &[u8]) -> (usize, Option<u16>, u8, u8) {
        let ctrl_reg = self.reg(regs::CTRL);
        let rctl = self.reg(regs::RCTL);
        let vet = self.reg(regs::VET) as u16;
        let buf = &mut self.rx_frame;
        buf.clear();
        buf.extend_from_slice(frame);
        if buf.len() < MIN_FRAME_LEN {
            buf.resize(MIN_FRAME_LEN, 0);
        }
        let crc = offload::fcs(buf);
        let mut vlan = None;
        if ctrl_reg & ctrl::VME != 0
            && u16::from_be_bytes([buf[12], buf[13]]) == vet
            && buf.len() >= 18
        {
            vlan = Some(u16::from_be_bytes([buf[14], buf[15]]));
            buf.copy_within(16.., 12);
            buf.truncate(buf.len() - 4);
        }
        let csum = self.reg(regs::RXCSUM);
        let chk = offload::rx_checksum(
            &self.rx_frame,
            vet,
            csum & rxcsum::IPOFL != 0,
            csum & rxcsum::TUOFL != 0,
        );
        let (mut st, mut err) = (0u8, 0u8);
        match chk.ip {
            Some(good) => {
                st |= status::IPCS;
                if !good {
                    err |= errors::IPE;
                }
            }
            None => st |= status::IXSM,
        }
        if let Some(good) = chk.l4 {
            st &= !status::IXSM;
            st |= status::TCPCS;
            if !good {
                err |= errors::TCPE;
            }
        }
        if vlan.is_some() {
            st |= status::VP;
        }
        if rctl & rctl::SECRC == 0 {
            self.rx_frame.extend_from_slice(&crc);
        }
        (self.rx_frame.len(), vlan, st, err)
    }

    /// Writes the staged frame into as many descriptors' buffers as it needs.
    fn store_rx_frame(
        &mut self,
        mut ring: Ring,
        len: usize,
        bufsize: usize,
        vlan: Option<u16>,
        st: u8,
        err: u8,
    ) {
        let pcss = (self.reg(regs::RXCSUM) & 0xff) as usize;
        let pkt_csum = self
            .rx_frame
            .get(pcss..len)
            .map_or(0, |s| offload::fold(offload::sum_bytes(s, 0)));
        let mut done = 0;
        while done < len {
            self.work += 1;
            let addr = ring.base.wrapping_add(ring.head as u64 * 16);
            let n = (len - done).min(bufsize);
            let last = done + n == len;
            match dma::read_array::<M, 16>(&self.mem, addr) {
                Some(desc) => {
                    let buf = dma::le64(&desc, 0);
                    if buf == 0 {
                        // SDM: a null buffer address means "skip this descriptor".
                        log::debug!(
                            "e1000: RX descriptor {} has a null buffer; skipped",
                            ring.head
                        );
                    } else if !dma::write_from(&self.mem, buf, &self.rx_frame[done..done + n]) {
                        log::debug!("e1000: RX buffer {buf:#x}+{n} outside guest memory");
                    }
                    let mut wb = [0u8; 8];
                    wb[0..2].copy_from_slice(&(n as u16).to_le_bytes());
                    // The packet checksum is reported in the first descriptor.
                    if done == 0 {
                        wb[2..4].copy_from_slice(&pkt_csum.to_le_bytes());
                    }
                    wb[4] = status::DD | if last { status::EOP | st } else { 0 };
                    wb[5] = if last { err } else { 0 };
                    wb[6..8].copy_from_slice(&vlan.unwrap_or(0).to_le_bytes());
                    if !dma::write_from(&self.mem, addr.wrapping_add(8), &wb) {
                        log::debug!("e1000: RX write-back at {addr:#x} outside guest memory");
                    }
                }
                None => log::debug!("e1000: RX descriptor at {addr:#x} outside guest memory"),
            }
            self.work += (n / 64) as u64;
            done += n;
            ring.head = (ring.head + 1) % ring.count;
        }
        self.set_reg(regs::RDH, ring.head);
        let rdmts = (self.reg(regs::RCTL) >> rctl::RDMTS_SHIFT) & 3;
        let threshold = ring.count >> (rdmts + 1).min(3);
        if ring.free() <= threshold {
            self.raise(icr::RXDMT0);
        }
        self.rx_delay_interrupt();
    }

    fn count_rx(&mut self, dest: Dest, wire: usize) {
        let s = &mut self.stats;
        s.inc(idx::GPRC);
        s.inc(idx::TPR);
        s.add(idx::GORC, wire as u64);
        s.add(idx::TOR, wire as u64);
        s.add_size_bucket(idx::PRC64, wire);
        match dest {
            Dest::Broadcast => s.inc(idx::BPRC),
            Dest::Multicast => s.inc(idx::MPRC),
            Dest::Unicast => {}
        }
    }
}
