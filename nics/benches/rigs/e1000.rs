//! e1000 driven as Linux's e1000 driver drives it: legacy TX descriptors
//! (EOP|IFCS|RS) or a TSO context plus data descriptors, RX with RXCSUM IP+TCP offload,
//! broadcast accept and the station address in RAR0, IMS as `IMS_ENABLE_MASK`; one TDT
//! write per TX batch, one RDT write per RX batch, one ICR read (read-to-clear) per
//! batch.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_devices::e1000::{Variant, E1000};
use vm_nic_devices::{ManualClock, NetBackend, NicDevice, RxOutcome};

use super::{config_with, guest_ram, tcp_frame, Dir, Rig, MAC};

/// Descriptors per ring (RDLEN/TDLEN = 16 KiB).
pub const RING: u32 = 1024;

const CTRL: u64 = 0x0000;
const ICR: u64 = 0x00c0;
const IMS: u64 = 0x00d0;
const RCTL: u64 = 0x0100;
const TCTL: u64 = 0x0400;
const RDBAL: u64 = 0x2800;
const RDLEN: u64 = 0x2808;
const RDH: u64 = 0x2810;
const RDT: u64 = 0x2818;
const TDBAL: u64 = 0x3800;
const TDLEN: u64 = 0x3808;
const TDH: u64 = 0x3810;
const TDT: u64 = 0x3818;
const RXCSUM: u64 = 0x5000;
const RAL0: u64 = 0x5400;
const RAH0: u64 = 0x5404;

const TX_RING_AT: u64 = 0x1_0000;
const RX_RING_AT: u64 = 0x2_0000;
/// Where every TX descriptor's buffer points (the frame stays cache-hot, as the
/// memcpy baseline's buffers do).
const TX_BUF_AT: u64 = 0x10_0000;
/// RX buffers: one per descriptor, 16 KiB apart, from here.
const RX_BUF_AT: u64 = 0x20_0000;
/// RX buffer stride.
const RX_BUF_STRIDE: u64 = 16 << 10;
/// How many distinct RX buffers the ring cycles over (keeps them cache-resident:
/// descriptor `i` uses buffer `i % RX_BUFS`).
const RX_BUFS: u64 = 8;

/// What the rig sends or receives per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Plain frames of this many bytes (no FCS).
    Frame(usize),
    /// One TSO send of this many bytes (54 bytes of headers + payload), MSS 1448.
    Tso(usize),
}

/// An e1000 with its rings set up.
pub struct E1000Rig {
    dev: E1000<GuestMemoryMmap>,
    mem: GuestMemoryMmap,
    dir: Dir,
    batch: u32,
    /// Descriptors one frame (or TSO send) takes.
    per_frame: u32,
    /// Descriptors in the ring in use (a multiple of 8 holding whole TSO sends).
    ring: u32,
    tail: u32,
    frame: Vec<u8>,
    accepted: u64,
}

fn desc(addr: u64, lower: u32, upper: u32) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&lower.to_le_bytes());
    d[12..16].copy_from_slice(&upper.to_le_bytes());
    d
}

impl E1000Rig {
    /// A rig for `variant` moving `load` in direction `dir`, `batch` frames per
    /// doorbell. Panics if the batch does not fit the ring.
    pub fn new(variant: Variant, dir: Dir, load: Load, batch: u32) -> Self {
        Self::with_backend(variant, dir, load, batch, Box::new(NullBackend::new()))
    }

    /// [`E1000Rig::new`] on another backend (a TAP, for the GSO passthrough bench).
    pub fn with_backend(
        variant: Variant,
        dir: Dir,
        load: Load,
        batch: u32,
        backend: Box<dyn NetBackend>,
    ) -> Self {
        let mem = guest_ram();
        let clock = ManualClock::new();
        let mut dev = E1000::new(variant, config_with(&mem, &clock, backend));
        dev.config_write(4, 2, 0x7);
        // Auto-negotiation completes on the injected clock.
        clock.advance(1_000_000_000);
        dev.run_timers();
        let len = match load {
            Load::Frame(n) | Load::Tso(n) => n,
        };
        let frame = tcp_frame(MAC, len);
        let mut rig = E1000Rig {
            dev,
            mem,
            dir,
            batch,
            per_frame: 1,
            ring: RING,
            tail: 0,
            frame,
            accepted: 0,
        };
        rig.w(CTRL, 1 << 6); // SLU
        rig.w(RAL0, u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]));
        rig.w(RAH0, u16::from_le_bytes([MAC[4], MAC[5]]) as u32 | 1 << 31);
        rig.w(IMS, 0x9d); // TXDW | LSC | RXSEQ | RXDMT0 | RXT0
        match dir {
            Dir::Tx => rig.setup_tx(load),
            Dir::Rx => rig.setup_rx(len),
        }
        assert!(
            rig.per_frame * batch < rig.ring,
            "batch {batch} does not fit a ring of {RING}"
        );
        let _ = rig.r(ICR);
        rig
    }

    fn w(&mut self, off: u64, v: u32) {
        self.dev.bar_write(0, off, 4, v);
    }

    fn r(&mut self, off: u64) -> u32 {
        self.dev.bar_read(0, off, 4)
    }

    fn put(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }

    fn setup_tx(&mut self, load: Load) {
        self.put(TX_BUF_AT, &self.frame.clone());
        match load {
            Load::Frame(n) => {
                // Legacy descriptor: EOP | IFCS | RS.
                let d = desc(TX_BUF_AT, n as u32 | 0x0b << 24, 0);
                for i in 0..RING as u64 {
                    self.put(TX_RING_AT + i * 16, &d);
                }
            }
            Load::Tso(n) => self.setup_tso(n),
        }
        self.w(TDBAL, TX_RING_AT as u32);
        self.w(TDLEN, self.ring * 16);
        self.w(TDH, 0);
        self.w(TDT, 0);
        self.w(TCTL, 0x0a | 0x0f << 4 | 0x40 << 12); // EN | PSP, CT, COLD
    }

    /// Context descriptor (TSE, IPv4, TCP, MSS 1448, 54-byte header), then the
    /// header and payload in 4 KiB pieces as an skb's head and page fragments.
    fn setup_tso(&mut self, total: usize) {
        let hdr = 54usize;
        let paylen = (total - hdr) as u32;
        let mut ctx = [0u8; 16];
        ctx[0] = 14; // IPCSS
        ctx[1] = 24; // IPCSO
        ctx[2..4].copy_from_slice(&33u16.to_le_bytes()); // IPCSE
        ctx[4] = 34; // TUCSS
        ctx[5] = 50; // TUCSO
        ctx[8..12].copy_from_slice(&(paylen | 0x27 << 24).to_le_bytes()); // DEXT|TSE|IP|TCP
        ctx[13] = hdr as u8;
        ctx[14..16].copy_from_slice(&1448u16.to_le_bytes());
        let mut descs = vec![ctx];
        let data = |addr: u64, len: usize, eop: bool| {
            // DEXT | TSE | IFCS (+ EOP | RS), DTYP = data, POPTS = IXSM | TXSM.
            let dcmd: u32 = 0x20 | 0x04 | 0x02 | if eop { 0x09 } else { 0 };
            desc(addr, len as u32 | 1 << 20 | dcmd << 24, 3 << 8)
        };
        descs.push(data(TX_BUF_AT, hdr, false));
        let mut off = hdr;
        while off < total {
            let n = (total - off).min(4096);
            descs.push(data(TX_BUF_AT + off as u64, n, off + n == total));
            off += n;
        }
        self.per_frame = descs.len() as u32;
        // The ring holds whole sends back to back (TDLEN a multiple of 128 bytes), so
        // the tail always moves by whole sends.
        let group = self.per_frame * 8;
        self.ring = RING / group * group;
        let sends = self.ring / self.per_frame;
        for s in 0..sends as u64 {
            for (k, d) in descs.iter().enumerate() {
                let at = TX_RING_AT + (s * self.per_frame as u64 + k as u64) * 16;
                self.put(at, d);
            }
        }
    }

    fn setup_rx(&mut self, len: usize) {
        // 2 KiB buffers for standard frames; 4 KiB (BSEX) pages with LPE for jumbo
        // frames, as Linux does for an MTU above 1500.
        let (rctl_size, bufsize) = if len + 4 > 2048 {
            (3 << 16 | 1 << 25 | 1 << 5, 4096)
        } else {
            (0, 2048)
        };
        self.per_frame = (len + 4).div_ceil(bufsize) as u32;
        for i in 0..RING as u64 {
            let buf = RX_BUF_AT + (i % RX_BUFS) * RX_BUF_STRIDE;
            self.put(RX_RING_AT + i * 16, &desc(buf, 0, 0));
        }
        self.w(RXCSUM, 0x300); // IPOFL | TUOFL
        self.w(RDBAL, RX_RING_AT as u32);
        self.w(RDLEN, RING * 16);
        self.w(RDH, 0);
        self.tail = RING - 1;
        self.w(RDT, self.tail);
        self.w(RCTL, 0x2 | 1 << 15 | rctl_size); // EN | BAM | size
    }

    fn tx_batch(&mut self) -> usize {
        self.tail = (self.tail + self.batch * self.per_frame) % self.ring;
        let t = self.tail;
        self.w(TDT, t);
        let _ = self.r(ICR);
        self.batch as usize
    }

    fn rx_batch(&mut self) -> usize {
        for _ in 0..self.batch {
            debug_assert!(self.dev.can_receive());
            let out = self.dev.receive(&self.frame);
            assert_eq!(out, RxOutcome::Accepted, "e1000 refused a frame");
        }
        self.accepted += self.batch as u64;
        let _ = self.r(ICR);
        self.tail = (self.tail + self.batch * self.per_frame) % RING;
        let t = self.tail;
        self.w(RDT, t);
        self.batch as usize
    }

    /// RX: the length, status and errors of the descriptor before RDH (for checks).
    pub fn last_rx_status(&mut self) -> (u16, u8, u8) {
        let head = self.r(RDH);
        let i = (head + RING - 1) % RING;
        let mut wb = [0u8; 8];
        self.mem
            .read_slice(&mut wb, GuestAddress(RX_RING_AT + i as u64 * 16 + 8))
            .unwrap();
        (u16::from_le_bytes([wb[0], wb[1]]), wb[4], wb[5])
    }

    /// The device under test.
    pub fn device(&self) -> &E1000<GuestMemoryMmap> {
        &self.dev
    }
}

impl Rig for E1000Rig {
    fn run_batch(&mut self) -> usize {
        match self.dir {
            Dir::Tx => self.tx_batch(),
            Dir::Rx => self.rx_batch(),
        }
    }

    fn frames_done(&self) -> u64 {
        self.dev.backend().counters().sent_frames + self.accepted
    }
}
