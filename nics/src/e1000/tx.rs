//! Transmit: the descriptor ring walk (SDM "Transmit Functionality"), legacy
//! descriptors with their checksum fields, context and data descriptors, TCP segmentation,
//! VLAN insertion (CTRL.VME + VLE), short-frame padding (TCTL.PSP) and DD write-back on
//! RS, with loopback (RCTL.LBM, PHY BMCR loopback) to the device's own receiver.
//!
//! Each descriptor is read once into a local copy. Packets are assembled in a buffer the
//! device owns ([`FRAME_CAPACITY`] bytes, allocated once); TSO segments are cut in that
//! buffer, with the header restored from a saved copy after each segment. A backend
//! that carries virtio-net headers gets TCP segmentation and checksum work as GSO.

use vm_memory::GuestMemory;
use vm_nic_backends::{VirtioNetHdr, MIN_FRAME_LEN};

use super::filter::Dest;
use super::offload::{self, tucmd, Context};
use super::regs::{self, ctrl, icr, rctl, tctl};
use super::stats::idx;
use super::E1000;
use crate::dma;

/// The largest packet the transmitter assembles: the whole 64 KiB packet buffer (a GSO
/// packet handed to a virtio-net-header backend; plain packets and TSO segments are
/// bounded by the transmit FIFO, see `tx_fifo_bytes`).
pub const FRAME_CAPACITY: usize = 65536;

/// Descriptor command bits (legacy CMD and data DCMD share these positions).
pub mod cmd {
    /// End of packet.
    pub const EOP: u8 = 1 << 0;
    /// Legacy: insert checksum (CSO/CSS).
    pub const IC: u8 = 1 << 2;
    /// Data: TCP segmentation enable.
    pub const TSE: u8 = 1 << 2;
    /// Report status (write back DD).
    pub const RS: u8 = 1 << 3;
    /// Extended descriptor.
    pub const DEXT: u8 = 1 << 5;
    /// VLAN packet enable.
    pub const VLE: u8 = 1 << 6;
    /// Interrupt delay enable.
    pub const IDE: u8 = 1 << 7;
}

/// POPTS bits of a data descriptor.
pub mod popts {
    /// Insert IP checksum.
    pub const IXSM: u8 = 1 << 0;
    /// Insert TCP/UDP checksum.
    pub const TXSM: u8 = 1 << 1;
}

/// The transmitter's state between descriptors.
#[derive(Clone, Debug)]
pub struct TxEngine {
    /// The last context descriptor.
    pub ctx: Context,
    /// The context the packet in progress uses, latched at its first data descriptor (a
    /// context descriptor arriving mid-packet applies to the next packet).
    pub pkt: Context,
    /// Packet assembly buffer, always [`FRAME_CAPACITY`] bytes long; `len` are used.
    pub frame: Vec<u8>,
    /// Bytes of `frame` in use.
    pub len: usize,
    /// Output staging buffer for VLAN insertion and padding.
    pub out: Vec<u8>,
    /// Saved TSO header, restored after each segment.
    pub tso_hdr: [u8; 256],
    /// A packet is being assembled (descriptors without EOP seen).
    pub in_packet: bool,
    /// The next data descriptor is the packet's first.
    pub first: bool,
    /// The packet uses TCP segmentation.
    pub tse: bool,
    /// The packet goes to the backend as one GSO frame.
    pub gso: bool,
    /// The packet's POPTS (from its first data descriptor).
    pub popts: u8,
    /// VLAN tag to insert, once a descriptor with VLE has been seen.
    pub vlan: Option<u16>,
    /// TSO segments sent for this packet.
    pub seg: u16,
    /// TSO payload bytes sent for this packet.
    pub sent_payload: u32,
    /// The packet is being discarded (too long, DMA fault, bad TSO context).
    pub discard: bool,
}

impl TxEngine {
    /// An idle transmitter with its buffers allocated.
    pub fn new() -> Self {
        TxEngine {
            ctx: Context::default(),
            pkt: Context::default(),
            frame: vec![0; FRAME_CAPACITY],
            len: 0,
            out: Vec::with_capacity(FRAME_CAPACITY + 4),
            tso_hdr: [0; 256],
            in_packet: false,
            first: false,
            tse: false,
            gso: false,
            popts: 0,
            vlan: None,
            seg: 0,
            sent_payload: 0,
            discard: false,
        }
    }

    /// Forgets the context and any packet in progress.
    pub fn reset(&mut self) {
        self.ctx = Context::default();
        self.end_packet();
    }

    fn end_packet(&mut self) {
        self.len = 0;
        self.in_packet = false;
        self.first = false;
        self.tse = false;
        self.gso = false;
        self.popts = 0;
        self.vlan = None;
        self.seg = 0;
        self.sent_payload = 0;
        self.discard = false;
    }
}

impl Default for TxEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: GuestMemory> E1000<M> {
    /// True when transmitted frames go back to the receiver instead of the wire.
    pub(crate) fn loopback_active(&self) -> bool {
        self.reg(regs::RCTL) & rctl::LBM_MASK != 0 || self.phy.loopback()
    }

    /// The transmit FIFO: PBA.TXA KiB (64 KiB of packet buffer minus the receive share).
    /// A packet or TSO segment must fit in it.
    pub(crate) fn tx_fifo_bytes(&self) -> usize {
        let rxa = (self.reg(regs::PBA) & 0xffff).min(64) as usize;
        (64 - rxa) * 1024
    }

    /// Walks the transmit ring from TDH to TDT (a TDT or TCTL write).
    pub(crate) fn start_xmit(&mut self) {
        if self.reg(regs::TCTL) & tctl::EN == 0 {
            return;
        }
        if !self.pci.bus_master() {
            log::debug!("e1000: transmit with PCI bus mastering disabled");
            return;
        }
        let count = self.reg(regs::TDLEN) / 16;
        let mut head = self.reg(regs::TDH);
        let tail = self.reg(regs::TDT);
        if count == 0 || head == tail {
            return;
        }
        if head >= count || tail >= count {
            log::debug!("e1000: TDH {head} or TDT {tail} beyond a ring of {count} descriptors");
            return;
        }
        let base = (self.reg(regs::TDBAH) as u64) << 32 | self.reg(regs::TDBAL) as u64;
        let mut visited = 0;
        while head != tail && visited < count {
            visited += 1;
            self.work += 1;
            let addr = base.wrapping_add(head as u64 * 16);
            let Some(desc) = dma::read_array::<M, 16>(&self.mem, addr) else {
                log::debug!("e1000: TX descriptor at {addr:#x} outside guest memory");
                break;
            };
            self.tx_descriptor(&desc, addr);
            head = (head + 1) % count;
            self.set_reg(regs::TDH, head);
        }
        let mut causes = 0;
        if head == tail {
            causes |= icr::TXQE;
        }
        let lwthresh = self.reg(regs::TXDCTL) >> 25;
        let left = (tail + count - head) % count;
        if lwthresh != 0 && left < lwthresh * 8 {
            causes |= icr::TXD_LOW;
        }
        if causes != 0 {
            self.raise(causes);
        }
    }

    fn tx_descriptor(&mut self, d: &[u8; 16], addr: u64) {
        let lower = dma::le32(d, 8);
        let upper = dma::le32(d, 12);
        let dcmd = (lower >> 24) as u8;
        let dtyp = (lower >> 20) & 0xf;
        if dcmd & cmd::DEXT != 0 && dtyp == 0 {
            self.tx.ctx = Context::parse(d);
            if self.tx.ctx.tucmd & tucmd::TSE != 0 {
                self.stats.inc(idx::TSCTC);
            }
        } else if dcmd & cmd::DEXT != 0 && dtyp == 1 {
            if !self.tx.in_packet {
                self.start_packet(dcmd & cmd::TSE != 0, (upper >> 8) as u8);
            }
            self.tx_data(dma::le64(d, 0), (lower & 0xf_ffff) as usize, dcmd, upper);
            if dcmd & cmd::EOP != 0 {
                self.finish_packet(None);
            }
        } else if dcmd & cmd::DEXT != 0 {
            log::debug!("e1000: TX descriptor type {dtyp} is reserved; skipped");
        } else {
            if !self.tx.in_packet {
                self.start_packet(false, 0);
            }
            self.tx_data(dma::le64(d, 0), (lower & 0xffff) as usize, dcmd, upper);
            if dcmd & cmd::EOP != 0 {
                let ic = (dcmd & cmd::IC != 0).then_some(((upper >> 8) as u8, (lower >> 16) as u8));
                self.finish_packet(ic);
            }
        }
        if dcmd & cmd::RS != 0 {
            // DD in the status byte; the other status bits (EC, LC, TU) stay clear.
            if !dma::write_from(&self.mem, addr.wrapping_add(12), &[1]) {
                log::debug!("e1000: TX write-back at {addr:#x} outside guest memory");
            }
            self.tx_delay_interrupt(dcmd & cmd::IDE != 0);
        }
    }

    fn start_packet(&mut self, tse: bool, popts: u8) {
        let ctx = self.tx.ctx;
        self.tx.pkt = ctx;
        self.tx.in_packet = true;
        self.tx.first = true;
        self.tx.popts = popts;
        if tse {
            let hdr = ctx.hdrlen as usize;
            if ctx.mss == 0 || hdr == 0 || hdr + ctx.mss as usize > self.tx_fifo_bytes() {
                log::debug!(
                    "e1000: TSO context with hdrlen {hdr} mss {} rejected",
                    ctx.mss
                );
                self.stats.inc(idx::TSCTFC);
                self.tx.discard = true;
                return;
            }
            self.tx.tse = true;
            self.tx.gso = ctx.tcp()
                && self.backend.has_vnet_hdr()
                && !self.loopback_active()
                && hdr + ctx.paylen as usize <= FRAME_CAPACITY;
        }
    }

    /// Appends `len` bytes from guest address `addr`, cutting TSO segments as they fill.
    fn tx_data(&mut self, mut addr: u64, len: usize, dcmd: u8, upper: u32) {
        // VLE and the VLAN tag count in the first data descriptor of a TSO packet, else
        // in the EOP descriptor (SDM, TCP/IP data descriptor command field).
        let vlan_desc = if self.tx.tse {
            self.tx.first
        } else {
            dcmd & cmd::EOP != 0
        };
        if vlan_desc {
            self.tx.vlan = (dcmd & cmd::VLE != 0).then_some((upper >> 16) as u16);
        }
        self.tx.first = false;
        let tso = self.tx.tse && !self.tx.gso;
        let seg_limit = if tso {
            self.tx.pkt.hdrlen as usize + self.tx.pkt.mss as usize
        } else if self.tx.gso {
            FRAME_CAPACITY
        } else {
            self.tx_fifo_bytes()
        };
        let mut remaining = len;
        while remaining > 0 && !self.tx.discard {
            if tso && self.tx.len == seg_limit {
                // A full segment is sent only once more payload follows, so that the
                // last one is known at EOP (it alone keeps FIN and PSH).
                self.tso_segment(false);
            }
            let room = seg_limit.saturating_sub(self.tx.len);
            if room == 0 {
                log::debug!("e1000: TX packet longer than {seg_limit} bytes (FIFO) dropped");
                self.tx.discard = true;
                break;
            }
            let n = remaining.min(room);
            let start = self.tx.len;
            if !dma::read_into(&self.mem, addr, &mut self.tx.frame[start..start + n]) {
                log::debug!("e1000: TX buffer {addr:#x}+{n} outside guest memory; packet dropped");
                self.tx.discard = true;
                break;
            }
            self.work += (n / 64) as u64;
            self.tx.len += n;
            addr = addr.wrapping_add(n as u64);
            remaining -= n;
        }
    }

    /// Sends the TSO segment in the buffer and restores the header for the next one.
    fn tso_segment(&mut self, last: bool) {
        let ctx = self.tx.pkt;
        let hdr = (ctx.hdrlen as usize).min(self.tx.len);
        if self.tx.seg == 0 {
            self.tx.tso_hdr[..hdr].copy_from_slice(&self.tx.frame[..hdr]);
        }
        let n = self.tx.len;
        offload::fix_tso_segment(
            &mut self.tx.frame[..n],
            &ctx,
            self.tx.seg,
            self.tx.sent_payload,
            last,
            self.tx.popts,
        );
        self.transmit(n, None);
        self.tx.frame[..hdr].copy_from_slice(&self.tx.tso_hdr[..hdr]);
        self.tx.sent_payload = self.tx.sent_payload.wrapping_add((n - hdr) as u32);
        self.tx.seg = self.tx.seg.wrapping_add(1);
        self.tx.len = hdr;
    }

    /// EOP: applies checksums and sends (or sends the last TSO segment).
    /// `legacy_ic` is (CSS, CSO) of a legacy descriptor with IC set.
    fn finish_packet(&mut self, legacy_ic: Option<(u8, u8)>) {
        if self.tx.discard {
            self.tx.end_packet();
            return;
        }
        let ctx = self.tx.pkt;
        let n = self.tx.len;
        if self.tx.tse && !self.tx.gso {
            let payload = self.tx.sent_payload as usize + n.saturating_sub(ctx.hdrlen as usize);
            if payload != ctx.paylen as usize {
                // The SDM counts a TSO packet whose data does not add up to PAYLEN as a
                // context failure; what was assembled is still sent.
                log::debug!(
                    "e1000: TSO payload {payload} differs from PAYLEN {}",
                    ctx.paylen
                );
                self.stats.inc(idx::TSCTFC);
            }
            if n > ctx.hdrlen as usize || self.tx.seg == 0 {
                self.tso_segment(true);
            }
        } else if self.tx.gso {
            let frame = &mut self.tx.frame[..n];
            offload::fix_ip_lengths(frame, &ctx, None);
            if self.tx.popts & popts::IXSM != 0 {
                ctx.insert_ip_checksum(frame);
            }
            let hdr = VirtioNetHdr {
                flags: VirtioNetHdr::F_NEEDS_CSUM,
                gso_type: if ctx.ipv4() {
                    VirtioNetHdr::GSO_TCPV4
                } else {
                    VirtioNetHdr::GSO_TCPV6
                },
                hdr_len: ctx.hdrlen as u16,
                gso_size: ctx.mss,
                csum_start: ctx.tucss as u16,
                csum_offset: (ctx.tucso as u16).wrapping_sub(ctx.tucss as u16),
            };
            self.transmit(n, Some(hdr));
        } else {
            let gso = self.plain_checksums(legacy_ic);
            self.transmit(n, gso);
        }
        self.tx.end_packet();
    }

    /// Inserts the checksums a non-TSO packet asks for; returns a checksum-only GSO
    /// header instead of computing the TCP/UDP checksum when the backend can take it.
    fn plain_checksums(&mut self, legacy_ic: Option<(u8, u8)>) -> Option<VirtioNetHdr> {
        let ctx = self.tx.pkt;
        let n = self.tx.len;
        let host_csum = self.backend.has_vnet_hdr() && !self.loopback_active();
        let partial = |start: u8, at: u8| VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_NONE,
            hdr_len: 0,
            gso_size: 0,
            csum_start: start as u16,
            csum_offset: (at as u16).wrapping_sub(start as u16),
        };
        let frame = &mut self.tx.frame[..n];
        if let Some((css, cso)) = legacy_ic {
            if host_csum && cso > css && (cso as usize) + 2 <= n {
                return Some(partial(css, cso));
            }
            offload::insert_checksum(frame, css as usize, 0, cso as usize, 0);
            return None;
        }
        if self.tx.popts & popts::IXSM != 0 {
            ctx.insert_ip_checksum(frame);
        }
        if self.tx.popts & popts::TXSM != 0 {
            if host_csum && ctx.tucse == 0 && ctx.tucso > ctx.tucss && (ctx.tucso as usize) + 2 <= n
            {
                return Some(partial(ctx.tucss, ctx.tucso));
            }
            offload::insert_checksum(
                frame,
                ctx.tucss as usize,
                ctx.tucse as usize,
                ctx.tucso as usize,
                0,
            );
        }
        None
    }

    /// Puts `self.tx.frame[..n]` on the wire (or loops it back), inserting the VLAN tag
    /// and padding as configured, and counts it.
    fn transmit(&mut self, n: usize, gso: Option<VirtioNetHdr>) {
        let frame = std::mem::take(&mut self.tx.frame);
        let mut out = std::mem::take(&mut self.tx.out);
        let vlan = self
            .tx
            .vlan
            .filter(|_| self.reg(regs::CTRL) & ctrl::VME != 0);
        let pad = self.reg(regs::TCTL) & tctl::PSP != 0 && n < MIN_FRAME_LEN;
        let data: &[u8] = if vlan.is_some() || pad {
            out.clear();
            let split = n.min(12);
            out.extend_from_slice(&frame[..split]);
            if let Some(tci) = vlan {
                out.extend_from_slice(&(self.reg(regs::VET) as u16).to_be_bytes());
                out.extend_from_slice(&tci.to_be_bytes());
            }
            out.extend_from_slice(&frame[split..n]);
            if pad && out.len() < MIN_FRAME_LEN {
                out.resize(MIN_FRAME_LEN, 0);
            }
            &out
        } else {
            &frame[..n]
        };
        self.work += (data.len() / 64) as u64;
        self.count_tx(data);
        if self.loopback_active() {
            // Loopback delivers to our own receiver, which never transmits: no recursion.
            self.receive_frame(data, true);
        } else {
            let shift = if vlan.is_some() { 4 } else { 0 };
            let res = match gso {
                Some(mut h) => {
                    if h.gso_type != VirtioNetHdr::GSO_NONE {
                        h.hdr_len += shift;
                    }
                    h.csum_start += shift;
                    self.backend.send_gso(&h, data)
                }
                None => self.backend.send(data),
            };
            if let Err(e) = res {
                log::debug!("e1000: backend refused a {}-byte frame: {e}", data.len());
            }
        }
        self.tx.frame = frame;
        self.tx.out = out;
    }

    fn count_tx(&mut self, data: &[u8]) {
        let wire = data.len().max(MIN_FRAME_LEN) + 4;
        let s = &mut self.stats;
        s.inc(idx::GPTC);
        s.inc(idx::TPT);
        s.add(idx::GOTC, wire as u64);
        s.add(idx::TOT, wire as u64);
        s.add_size_bucket(idx::PTC64, wire);
        if data.len() >= 6 {
            match Dest::of(&data[..6]) {
                Dest::Broadcast => s.inc(idx::BPTC),
                Dest::Multicast => s.inc(idx::MPTC),
                Dest::Unicast => {}
            }
        }
    }
}
