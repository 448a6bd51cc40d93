//! Receive: address recognition (RCR.AB/AM/PRO against PAR0-5 and the MAR hash), runts
//! (RCR.AR), monitor mode, the receive buffer ring between PSTART and PSTOP with its
//! 4-byte headers, ring overflow (ISR.OVW, CNTR2) and the tally counters.
//!
//! Each stored packet starts on a page boundary at CURR with a header — receive status,
//! next page pointer, byte count (header + frame + FCS, little-endian) — followed by the
//! frame and its FCS, wrapping from PSTOP to PSTART at page boundaries. Every write is
//! bounded by the ring (at most PSTOP - PSTART pages) and by packet RAM.

use log::debug;

use super::crc::{fcs, multicast_index};
use super::registers::{Isr, Rcr, Rsr};
use super::Ne2000;
use crate::device::RxOutcome;

/// Bytes of ring header in front of each packet.
pub const HEADER_LEN: usize = 4;
/// Bytes of frame check sequence stored after each frame.
pub const FCS_LEN: usize = 4;
/// Shortest frame (without FCS) that is not a runt: 64 bytes on the wire.
pub const MIN_FRAME_LEN: usize = 60;

/// Tally counter indexes (CNTR0, frame alignment errors, cannot count on a virtual wire).
const CNTR_CRC: usize = 1;
const CNTR_MISSED: usize = 2;

/// Pages a stored packet of `bytes` (header + frame + FCS) occupies: the DP8390 starts
/// the next packet on the page after the one its local DMA address points into when the
/// packet ends, so an exact multiple of 256 still uses one more page. Linux's ei_receive
/// checks the header's next pointer against `this + 1 + (count >> 8)`.
fn pages_for(bytes: usize) -> usize {
    bytes / 256 + 1
}

impl<M> Ne2000<M> {
    /// The ring size and free pages, or `None` when the ring is misconfigured (empty, or
    /// CURR outside it). One page is always kept between CURR and BNRY (see the module
    /// documentation of `ne2000`). A BNRY outside the ring counts as PSTOP - 1, the page
    /// before PSTART in ring order: Linux writes `BNRY = next - 1`, which is PSTART - 1
    /// whenever the next packet sits at PSTART, and the DP8390 only compares pages.
    fn ring_free(&self) -> Option<(usize, usize)> {
        let s = &self.st;
        let ring = s.pstart..s.pstop;
        if ring.is_empty() || !ring.contains(&s.curr) {
            return None;
        }
        let bnry = if ring.contains(&s.bnry) {
            s.bnry
        } else {
            s.pstop - 1
        };
        let size = (s.pstop - s.pstart) as isize;
        let free = (bnry as isize - s.curr as isize - 1).rem_euclid(size);
        Some((size as usize, free as usize))
    }

    /// True when the receiver is running and has not overflowed: the next frame is then
    /// offered whatever room the ring has left, as on the wire. A frame that fits is
    /// stored (ISR.PRX); one that does not raises ISR.OVW and waits in the backend
    /// (`RxOutcome::NoBuffer`) until the host frees the ring. Refusing frames merely
    /// because a maximum-size one might not fit would leave the guest without any
    /// interrupt when packets sit in the ring after it acknowledged PRX — Linux's
    /// ei_receive takes at most nine packets per call and then clears PRX, so the
    /// packets that arrived meanwhile are announced only by the next frame's PRX or OVW.
    pub(super) fn rx_ready(&self) -> bool {
        let s = &self.st;
        s.started && !s.overflow && s.tcr.loopback() == 0
    }

    /// Increments tally counter `i`; counters stop at 192 and raise ISR.CNT once their
    /// MSB is set (DP8390D, Network Tally Counters).
    pub(super) fn tally(&mut self, i: usize) {
        let c = &mut self.st.cntr[i];
        if *c < 0xc0 {
            *c += 1;
        }
        if *c & 0x80 != 0 {
            self.st.isr |= Isr::CNT;
        }
    }

    /// (accepted, group address) for destination `dst` under the current filters.
    fn address_match(&self, dst: &[u8; 6]) -> (bool, bool) {
        let rcr = self.st.rcr;
        if dst == &[0xff; 6] {
            (rcr.contains(Rcr::AB), true)
        } else if dst[0] & 1 != 0 {
            let i = multicast_index(dst);
            let hit = self.st.mar[i >> 3] & (1 << (i & 7)) != 0;
            (rcr.contains(Rcr::AM) && hit, true)
        } else {
            (rcr.contains(Rcr::PRO) || dst == &self.st.par, false)
        }
    }

    /// A frame from the network: padded to 60 bytes (as the sender's MAC pads on a real
    /// wire), given its FCS, filtered and stored.
    pub(super) fn receive_from_network(&mut self, frame: &[u8]) -> RxOutcome {
        if !self.st.started {
            debug!(
                "ne2000: frame of {} bytes arrived while stopped",
                frame.len()
            );
            return RxOutcome::Filtered;
        }
        if self.st.tcr.loopback() != 0 {
            debug!("ne2000: frame from the network ignored in loopback mode");
            return RxOutcome::Filtered;
        }
        let mut padded = [0u8; MIN_FRAME_LEN];
        let body = if frame.len() < MIN_FRAME_LEN {
            padded[..frame.len()].copy_from_slice(frame);
            &padded[..]
        } else {
            frame
        };
        self.receive_frame(body, fcs(body), true)
    }

    /// Filters and stores one frame (`body` without FCS, `fcs` as on the wire, `crc_ok`
    /// whether they agree). Used by the network path and by loopback.
    pub(super) fn receive_frame(&mut self, body: &[u8], fcs: [u8; 4], crc_ok: bool) -> RxOutcome {
        let Some(dst) = body.get(..6).and_then(|d| <[u8; 6]>::try_from(d).ok()) else {
            debug!(
                "ne2000: {}-byte fragment has no destination address",
                body.len()
            );
            return RxOutcome::Filtered;
        };
        let (accepted, group) = self.address_match(&dst);
        if !accepted {
            return RxOutcome::Filtered;
        }
        if body.len() < MIN_FRAME_LEN && !self.st.rcr.contains(Rcr::AR) {
            debug!(
                "ne2000: runt of {} bytes rejected (RCR.AR clear)",
                body.len()
            );
            return RxOutcome::Filtered;
        }
        let mut status = if group { Rsr::PHY } else { Rsr::empty() };
        if !crc_ok {
            status |= Rsr::CRC;
            self.tally(CNTR_CRC);
        }
        if self.st.rcr.contains(Rcr::MON) {
            self.st.rsr = status | Rsr::MPA | Rsr::DIS;
            self.tally(CNTR_MISSED);
            return RxOutcome::Dropped;
        }
        if !crc_ok && !self.st.rcr.contains(Rcr::SEP) {
            self.st.rsr = status;
            self.st.isr |= Isr::RXE;
            return RxOutcome::Dropped;
        }
        if crc_ok {
            status |= Rsr::PRX;
        }
        self.store(body, fcs, status)
    }

    /// Counts a packet the ring could not take.
    fn missed(&mut self, status: Rsr) {
        self.st.rsr = (status & !Rsr::PRX) | Rsr::MPA;
        self.tally(CNTR_MISSED);
    }

    fn store(&mut self, body: &[u8], fcs: [u8; 4], status: Rsr) -> RxOutcome {
        let Some((size, free)) = self.ring_free() else {
            let s = &self.st;
            debug!(
                "ne2000: receive ring misconfigured (PSTART {:#04x} PSTOP {:#04x} CURR {:#04x} BNRY {:#04x}): frame dropped",
                s.pstart, s.pstop, s.curr, s.bnry
            );
            self.missed(status);
            return RxOutcome::Dropped;
        };
        let total = HEADER_LEN + body.len() + FCS_LEN;
        let needed = pages_for(total);
        if needed > size.saturating_sub(1) || total > u16::MAX as usize {
            debug!("ne2000: {total}-byte packet can never fit the {size}-page ring: dropped");
            self.missed(status);
            return RxOutcome::Dropped;
        }
        if needed > free {
            debug!("ne2000: ring overflow ({needed} pages needed, {free} free)");
            self.missed(status);
            self.st.isr |= Isr::OVW | Isr::RST;
            self.st.overflow = true;
            return RxOutcome::NoBuffer;
        }
        let s = &self.st;
        let next = s.curr as usize + needed;
        let next = if next >= s.pstop as usize {
            next - size
        } else {
            next
        } as u8;
        let mut buf = std::mem::take(&mut self.rx_buf);
        buf.clear();
        buf.extend_from_slice(&[status.bits(), next]);
        buf.extend_from_slice(&(total as u16).to_le_bytes());
        buf.extend_from_slice(body);
        buf.extend_from_slice(&fcs);
        let mut page = self.st.curr;
        let mut end = 0u16;
        for chunk in buf.chunks(256) {
            let addr = (page as u16) << 8;
            self.mem_write_page(addr, chunk);
            end = addr.wrapping_add(chunk.len() as u16);
            page = if page.wrapping_add(1) >= self.st.pstop {
                self.st.pstart
            } else {
                page + 1
            };
        }
        self.rx_buf = buf;
        self.work += needed as u64 + (total / 64) as u64;
        let s = &mut self.st;
        s.clda = end;
        s.curr = next;
        s.lnpp = next;
        s.rsr = status;
        s.isr |= if status.contains(Rsr::PRX) {
            Isr::PRX
        } else {
            Isr::RXE
        };
        RxOutcome::Accepted
    }
}
