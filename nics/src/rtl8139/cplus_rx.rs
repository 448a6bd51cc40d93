//! C+ mode receive into the ring of 16-byte descriptors at RDSAR. A frame fills as many
//! NIC-owned descriptors as it needs (FS on the first, LS on the last); the chip reserves
//! them all before writing, and hands them back last-to-first so the driver never sees a
//! partial frame. With CpCmd.RxChkSum the status carries the protocol and IP/TCP/UDP
//! checksum verdicts; with CpCmd.RxVlan an 802.1Q tag is removed into `opts2`.

use vm_memory::GuestMemory;

use super::filter::{Fcs, Match};
use super::offload::{self, ETH_P_8021Q};
use super::regs::{cpcmd, desc, int, RDSAR};
use super::Rtl8139;
use crate::device::RxOutcome;
use crate::dma;

/// A local copy of one RX descriptor, read once.
#[derive(Clone, Copy, Default)]
struct RxDesc {
    index: u8,
    opts1: u32,
    addr: u64,
}

static ZEROS: [u8; 60] = [0; 60];

impl<M: GuestMemory> Rtl8139<M> {
    fn rx_ring(&self) -> u64 {
        self.bytes_u64(RDSAR) & !0xFF
    }

    pub(super) fn cplus_can_receive(&self) -> bool {
        let at = self.rx_ring() + self.r.rx_index as u64 * desc::SIZE;
        dma::read_array::<M, 4>(&self.mem, at).is_some_and(|d| dma::le32(&d, 0) & desc::OWN != 0)
    }

    pub(super) fn cplus_receive(&mut self, frame: &[u8]) -> RxOutcome {
        if !self.rx_enabled() {
            return RxOutcome::Filtered;
        }
        let Some(m) = self.filter(frame) else {
            return RxOutcome::Filtered;
        };
        if !self.pci.bus_master() {
            log::debug!("rtl8139: frame dropped: bus mastering is off");
            self.r.tally.miss_pkt = self.r.tally.miss_pkt.wrapping_add(1);
            return RxOutcome::Dropped;
        }
        let strip = self.r.cpcmd & cpcmd::RX_VLAN != 0
            && frame.len() >= 18
            && u16::from_be_bytes([frame[12], frame[13]]) == ETH_P_8021Q;
        let (head, tail, vlan) = if strip {
            let tci = u16::from_be_bytes([frame[14], frame[15]]);
            (
                &frame[..12],
                &frame[16..],
                desc::RX_VLAN_TAGGED | tci.swap_bytes() as u32,
            )
        } else {
            (frame, &frame[frame.len()..], 0)
        };
        let pad = &ZEROS[..60usize.saturating_sub(head.len() + tail.len())];
        let mut fcs = Fcs::new();
        for part in [head, tail, pad] {
            fcs.update(part);
        }
        let fcs = fcs.bytes();
        let parts: [&[u8]; 4] = [head, tail, pad, &fcs];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > desc::RX_LEN_MASK as usize {
            log::debug!("rtl8139: {total}-byte frame exceeds the C+ length field: dropped");
            self.r.tally.rx_err += 1;
            return RxOutcome::Dropped;
        }
        let mut status = match m {
            Match::Broadcast => desc::RX_BAR,
            Match::Multicast => desc::RX_MAR,
            Match::Physical => desc::RX_PAM,
        };
        if self.r.cpcmd & cpcmd::RX_CHKSUM != 0 {
            status |= offload::rx_checksum_bits(frame);
        }
        let mut descs = [RxDesc::default(); desc::RING_MAX];
        let (n, next) = match self.reserve_rx(total, &mut descs) {
            Ok(reserved) => reserved,
            Err(outcome) => return outcome,
        };
        let mut lens = [0usize; desc::RING_MAX];
        if !self.copy_to_buffers(&descs[..n], &parts, &mut lens) {
            return RxOutcome::Dropped;
        }
        self.work += total as u64 / 64;
        if !self.hand_back_rx(&descs[..n], &lens, status | total as u32, vlan) {
            return RxOutcome::Dropped;
        }
        self.r.rx_index = next;
        let t = &mut self.r.tally;
        t.rx_ok += 1;
        match m {
            Match::Broadcast => t.rx_ok_brd += 1,
            Match::Multicast => t.rx_ok_mul += 1,
            Match::Physical => t.rx_ok_phy += 1,
        }
        self.raise(int::ROK);
        RxOutcome::Accepted
    }

    /// Reads NIC-owned descriptors from the current index until they hold `total`
    /// bytes. Returns how many and the index after them, or the outcome when they do
    /// not suffice.
    fn reserve_rx(
        &mut self,
        total: usize,
        descs: &mut [RxDesc; desc::RING_MAX],
    ) -> Result<(usize, u8), RxOutcome> {
        let ring = self.rx_ring();
        let mut i = self.r.rx_index;
        let mut n = 0;
        let mut room = 0usize;
        let mut wrapped = false;
        while n < desc::RING_MAX && room < total && !wrapped {
            let at = ring + i as u64 * desc::SIZE;
            let Some(d) = dma::read_array::<M, 16>(&self.mem, at) else {
                log::debug!("rtl8139: C+ RX descriptor at {at:#x} is outside guest memory");
                self.master_abort();
                return Err(RxOutcome::Dropped);
            };
            self.work += 1;
            let opts1 = dma::le32(&d, 0);
            if opts1 & desc::OWN == 0 {
                break;
            }
            descs[n] = RxDesc {
                index: i,
                opts1,
                addr: dma::le64(&d, 8),
            };
            n += 1;
            room += (opts1 & desc::RX_LEN_MASK) as usize;
            i = if opts1 & desc::EOR != 0 {
                0
            } else {
                (i + 1) % desc::RING_MAX as u8
            };
            // Back at the first descriptor: every one in the ring is reserved.
            wrapped = i == self.r.rx_index;
        }
        if room >= total {
            return Ok((n, i));
        }
        if wrapped || n == desc::RING_MAX {
            log::debug!("rtl8139: the whole C+ RX ring cannot hold {total} bytes: dropped");
            self.r.tally.rx_err += 1;
            return Err(RxOutcome::Dropped);
        }
        self.raise(int::RXOVW);
        Err(RxOutcome::NoBuffer)
    }

    /// Copies `parts` in order into the descriptors' buffers, recording per descriptor
    /// how many bytes it got. False on a DMA fault.
    fn copy_to_buffers(&mut self, descs: &[RxDesc], parts: &[&[u8]], lens: &mut [usize]) -> bool {
        let mut part = 0;
        let mut part_off = 0;
        for (k, d) in descs.iter().enumerate() {
            let mut left = (d.opts1 & desc::RX_LEN_MASK) as usize;
            let mut addr = d.addr;
            while left > 0 && part < parts.len() {
                let src = &parts[part][part_off..];
                let chunk = src.len().min(left);
                if !dma::write_from(&self.mem, addr, &src[..chunk]) {
                    log::debug!("rtl8139: C+ RX buffer {addr:#x} is outside guest memory");
                    self.master_abort();
                    return false;
                }
                addr += chunk as u64;
                left -= chunk;
                lens[k] += chunk;
                part_off += chunk;
                if part_off == parts[part].len() {
                    part += 1;
                    part_off = 0;
                }
            }
        }
        true
    }

    /// Writes `opts2` and the status of each descriptor, last first, so the driver sees
    /// the first descriptor (FS) released only when the whole frame is there.
    fn hand_back_rx(&mut self, descs: &[RxDesc], lens: &[usize], last: u32, vlan: u32) -> bool {
        let ring = self.rx_ring();
        for (k, d) in descs.iter().enumerate().rev() {
            let mut opts1 = d.opts1 & desc::EOR;
            if k == 0 {
                opts1 |= desc::FS;
            }
            if k + 1 == descs.len() {
                opts1 |= desc::LS | last;
            } else {
                opts1 |= lens[k] as u32;
            }
            let at = ring + d.index as u64 * desc::SIZE;
            let ok = dma::write_from(&self.mem, at + 4, &vlan.to_le_bytes())
                && dma::write_from(&self.mem, at, &opts1.to_le_bytes());
            if !ok {
                self.master_abort();
                return false;
            }
        }
        true
    }
}
