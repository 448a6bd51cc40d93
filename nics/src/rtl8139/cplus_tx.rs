//! C+ mode transmit: rings of 16-byte descriptors at TNPDS (normal priority) and THPDS
//! (high priority), polled through TPPoll. A frame is the descriptors from FS to LS; the
//! chip only starts it once every fragment is owned by the NIC, and visits at most 64
//! descriptors per poll (the ring index is 6 bits), so a ring with no EOR and no end of
//! owned descriptors cannot keep it busy (CVE-2016-8910).

use vm_memory::GuestMemory;
use vm_nic_backends::{VirtioNetHdr, MAX_FRAME_LEN};

use super::offload;
use super::regs::{desc, int, tppoll, TSAD0};
use super::Rtl8139;
use crate::dma;

/// A local copy of one TX descriptor, read once.
#[derive(Clone, Copy, Default)]
struct TxDesc {
    index: u8,
    opts1: u32,
    opts2: u32,
    addr: u64,
}

fn next_index(i: u8, opts1: u32) -> u8 {
    if opts1 & desc::EOR != 0 {
        0
    } else {
        (i + 1) % desc::RING_MAX as u8
    }
}

impl<M: GuestMemory> Rtl8139<M> {
    /// A TPPoll write.
    pub(super) fn tppoll_write(&mut self, v: u8) {
        if v & tppoll::FSWINT != 0 {
            self.raise(int::SW_INT);
        }
        if v & tppoll::HPQ != 0 {
            self.cplus_transmit(true);
        }
        if v & tppoll::NPQ != 0 {
            self.cplus_transmit(false);
        }
    }

    fn cplus_transmit(&mut self, high: bool) {
        if !self.cplus_tx_mode() || !self.tx_enabled() {
            log::debug!("rtl8139: TPPoll ignored: C+ transmit or CR.TE is off");
            return;
        }
        if !self.pci.bus_master() {
            log::debug!("rtl8139: TPPoll ignored: bus mastering is off");
            return;
        }
        let ring = self.bytes_u64(TSAD0 + if high { 8 } else { 0 }) & !0xFF;
        let mut budget = desc::RING_MAX;
        let mut sent = 0;
        let mut descs = [TxDesc::default(); desc::RING_MAX];
        while budget > 0 {
            let start = if high {
                self.r.tx_hpq_index
            } else {
                self.r.tx_npq_index
            };
            let mut i = start;
            let mut n = 0;
            let mut complete = false;
            while n < budget {
                let at = ring + i as u64 * desc::SIZE;
                let Some(d) = dma::read_array::<M, 16>(&self.mem, at) else {
                    log::debug!("rtl8139: C+ TX descriptor at {at:#x} is outside guest memory");
                    self.master_abort();
                    return;
                };
                self.work += 1;
                let opts1 = dma::le32(&d, 0);
                if opts1 & desc::OWN == 0 {
                    break;
                }
                descs[n] = TxDesc {
                    index: i,
                    opts1,
                    opts2: dma::le32(&d, 4),
                    addr: dma::le64(&d, 8),
                };
                n += 1;
                i = next_index(i, opts1);
                if opts1 & desc::LS != 0 {
                    complete = true;
                    break;
                }
                if i == start {
                    break; // the whole ring is one unfinished frame
                }
            }
            if n == 0 {
                if sent == 0 {
                    self.raise(int::TX_DESC_UNAVAIL);
                }
                break;
            }
            if !complete {
                log::debug!("rtl8139: C+ TX frame has no owned LS descriptor yet; waiting");
                break;
            }
            budget -= n;
            self.transmit_frame(ring, &descs[..n]);
            if high {
                self.r.tx_hpq_index = i;
            } else {
                self.r.tx_npq_index = i;
            }
            sent += 1;
        }
        if sent > 0 {
            self.raise(int::TOK);
        }
    }

    /// Gathers, offloads and sends one frame, then hands its descriptors back.
    fn transmit_frame(&mut self, ring: u64, descs: &[TxDesc]) {
        let first = descs[0];
        let mut ok = first.opts1 & desc::FS != 0;
        if !ok {
            log::debug!(
                "rtl8139: C+ TX descriptor {} lacks FS; frame dropped",
                first.index
            );
        }
        let mut buf = std::mem::take(&mut self.bufs.tx);
        buf.clear();
        for d in descs {
            if !ok {
                break;
            }
            let len = (d.opts1 & desc::TX_LEN_MASK) as usize;
            let at = buf.len();
            if at + len > MAX_FRAME_LEN {
                log::debug!("rtl8139: C+ TX frame longer than {MAX_FRAME_LEN} bytes dropped");
                ok = false;
                break;
            }
            buf.resize(at + len, 0);
            if !dma::read_into(&self.mem, d.addr, &mut buf[at..]) {
                log::debug!(
                    "rtl8139: C+ TX buffer {:#x}+{len} is outside guest memory",
                    d.addr
                );
                self.master_abort();
                ok = false;
            }
            self.work += len as u64 / 64;
        }
        if ok {
            if first.opts2 & desc::TX_VLAN_TAG != 0 && buf.len() >= 12 {
                offload::insert_vlan(&mut buf, (first.opts2 as u16).swap_bytes());
            }
            ok = self.offload_and_send(&mut buf, first.opts1);
        }
        self.bufs.tx = buf;
        for (k, d) in descs.iter().enumerate() {
            // The chip writes status over the command bits: the MSS and checksum
            // requests share bit positions with the error and collision fields.
            let mut status = d.opts1 & (desc::EOR | desc::FS | desc::LS | desc::TX_LEN_MASK);
            if k + 1 == descs.len() && !ok {
                status |= desc::TX_ERR;
            }
            let at = ring + d.index as u64 * desc::SIZE;
            if !dma::write_from(&self.mem, at, &status.to_le_bytes()) {
                self.master_abort();
            }
        }
        if ok {
            self.r.tally.tx_ok += 1;
        } else {
            self.r.tally.tx_err += 1;
            self.raise(int::TER);
        }
    }

    /// Applies the checksum or large-send request of `opts1` and sends. False when a
    /// large send cannot be segmented (the frame is then not sent).
    fn offload_and_send(&mut self, buf: &mut [u8], opts1: u32) -> bool {
        if opts1 & desc::LGSEN != 0 {
            let mss = ((opts1 >> desc::MSS_SHIFT) & desc::MSS_MASK) as usize;
            let Some(plan) = offload::plan_tso(buf, mss) else {
                log::debug!(
                    "rtl8139: large send refused (MSS {mss}, {} bytes)",
                    buf.len()
                );
                return false;
            };
            if self.backend.has_vnet_hdr() && !self.loopback() {
                offload::prepare_gso(buf, &plan);
                let hdr = VirtioNetHdr {
                    flags: VirtioNetHdr::F_NEEDS_CSUM,
                    gso_type: VirtioNetHdr::GSO_TCPV4,
                    hdr_len: plan.hdr_len as u16,
                    gso_size: mss as u16,
                    csum_start: plan.ip.l4() as u16,
                    csum_offset: 16,
                };
                self.work += 1 + buf.len() as u64 / 64;
                if let Err(e) = self.backend.send_gso(&hdr, buf) {
                    log::debug!("rtl8139: backend refused a GSO frame: {e}");
                }
                return true;
            }
            let mut seg = std::mem::take(&mut self.bufs.seg);
            offload::segment(buf, &plan, &mut seg, |s| self.emit(s));
            self.bufs.seg = seg;
            return true;
        }
        if opts1 & (desc::IPCS | desc::TCPCS | desc::UDPCS) != 0 {
            if let Some(ip) = offload::parse_ipv4(buf) {
                if opts1 & desc::IPCS != 0 {
                    offload::fill_ip_checksum(buf, &ip);
                }
                let tcp = opts1 & desc::TCPCS != 0 && ip.proto == offload::IPPROTO_TCP;
                let udp = opts1 & desc::UDPCS != 0 && ip.proto == offload::IPPROTO_UDP;
                if (tcp || udp) && !offload::fill_l4_checksum(buf, &ip) {
                    log::debug!("rtl8139: L4 checksum not inserted (fragment or short header)");
                }
            } else {
                log::debug!("rtl8139: checksum offload requested for a non-IPv4 frame");
            }
        }
        self.emit(buf);
        true
    }
}
