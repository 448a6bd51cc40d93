//! RTL8139 driven as Linux drives it. C mode (8139too): four TX slots with TSAD set at
//! open and one TSD write per frame, TSD status reads and an ISR acknowledge per batch;
//! RX into a 32 KiB ring with WRAP (RxNoWrap), one CAPR write per frame. C+ mode
//! (8139cp): 64-entry TX and RX descriptor rings, OWN handed back by the driver, one
//! TPPoll write per TX batch, RX checksum offload on.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_devices::{ManualClock, NicDevice, RxOutcome};

use super::{config, guest_ram, tcp_frame, Dir, Rig, MAC};

const TSD0: u64 = 0x10;
const TSAD0: u64 = 0x20;
const RBSTART: u64 = 0x30;
const CR: u64 = 0x37;
const CAPR: u64 = 0x38;
const IMR: u64 = 0x3c;
const ISR: u64 = 0x3e;
const RCR: u64 = 0x44;
const TPPOLL: u64 = 0xd9;
const CPCR: u64 = 0xe0;
const RDSAR: u64 = 0xe4;

const OWN: u32 = 1 << 31;
const EOR: u32 = 1 << 30;
const FS: u32 = 1 << 29;
const LS: u32 = 1 << 28;
const LGSEN: u32 = 1 << 27;

/// C+ ring size (the 6-bit descriptor index).
pub const CPLUS_RING: u32 = 64;
/// The C-mode receive ring: 32 KiB (+16 bytes, + room for WRAP overflow).
pub const RX_RING_LEN: usize = 32 << 10;

const TX_RING_AT: u64 = 0x1000;
const RX_RING_AT: u64 = 0x2000;
const TX_BUF_AT: u64 = 0x10_0000;
const RX_BUF_AT: u64 = 0x20_0000;
const RX_BUF_STRIDE: u64 = 2048;
const RX_BUFS: u64 = 8;
/// 8139cp's receive buffer size.
const RX_BUF_SZ: u32 = 1536;

/// Which personality and load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// RTL8139 (revision 0x10), C mode.
    Normal,
    /// RTL8139C+ (revision 0x20), C+ mode, plain frames.
    CPlus,
    /// RTL8139C+ large send: one frame of the rig's length, MSS 1448, in 4 KiB
    /// descriptors.
    CPlusTso,
}

/// One RTL8139 with its rings set up.
pub struct Rtl8139Rig {
    dev: Box<dyn NicDevice<GuestMemoryMmap>>,
    mem: GuestMemoryMmap,
    mode: Mode,
    dir: Dir,
    batch: u32,
    frame: Vec<u8>,
    /// C+ TX: (opts1 without OWN/EOR, buffer address) of each descriptor of one frame.
    descs: Vec<(u32, u64)>,
    /// C mode: next TX slot; C+: next descriptor index (TX or RX).
    next: u32,
    /// C mode RX: the driver's read offset (cur_rx).
    cur_rx: u16,
    accepted: u64,
}

impl Rtl8139Rig {
    /// A rig in `mode` moving `len`-byte frames in `dir`, `batch` per interrupt.
    /// Panics if the batch does not fit the ring or slots.
    pub fn new(mode: Mode, dir: Dir, len: usize, batch: u32) -> Self {
        let mem = guest_ram();
        let clock = ManualClock::new();
        let rev = if mode == Mode::Normal { "0x10" } else { "0x20" };
        let props = vec![("revision".to_string(), rev.to_string())];
        let mut dev = vm_nic_devices::models::create("rtl8139", &props, config(&mem, &clock))
            .expect("rtl8139");
        dev.config_write(4, 2, 0x7);
        let mut rig = Rtl8139Rig {
            dev,
            mem,
            mode,
            dir,
            batch,
            frame: tcp_frame(MAC, len),
            descs: Vec::new(),
            next: 0,
            cur_rx: 0,
            accepted: 0,
        };
        rig.put(TX_BUF_AT, &rig.frame.clone());
        match mode {
            Mode::Normal => rig.setup_normal(),
            Mode::CPlus | Mode::CPlusTso => rig.setup_cplus(),
        }
        rig.dev.bar_write(0, IMR, 2, 0xffff);
        rig.ack();
        rig
    }

    fn put(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }

    fn setup_normal(&mut self) {
        match self.dir {
            Dir::Tx => assert!(self.batch <= 4, "C mode has four TX slots"),
            Dir::Rx => {
                let per = (self.frame.len() + 8).next_multiple_of(4);
                assert!(
                    per * self.batch as usize + 16 < RX_RING_LEN,
                    "batch does not fit the ring"
                );
            }
        }
        for i in 0..4 {
            self.dev.bar_write(0, TSAD0 + 4 * i, 4, TX_BUF_AT as u32);
        }
        self.dev.bar_write(0, RBSTART, 4, RX_BUF_AT as u32);
        self.dev.bar_write(0, CR, 1, 0x0c);
        // APM | AB | WRAP | RBLEN = 32 KiB.
        self.dev.bar_write(0, RCR, 4, 0x2 | 0x8 | 0x80 | 2 << 11);
    }

    fn setup_cplus(&mut self) {
        self.descs = self.tso_descs();
        let per_frame = self.descs.len() as u32;
        assert!(
            self.batch * per_frame <= CPLUS_RING,
            "batch does not fit the C+ ring"
        );
        // TX on, RX on, RX checksum, PCI multiple read/write.
        self.dev.bar_write(0, CPCR, 2, 0x2b);
        self.dev.bar_write(0, TSAD0, 4, TX_RING_AT as u32);
        self.dev.bar_write(0, TSAD0 + 4, 4, 0);
        self.dev.bar_write(0, RDSAR, 4, RX_RING_AT as u32);
        self.dev.bar_write(0, RDSAR + 4, 4, 0);
        for i in 0..CPLUS_RING {
            self.arm_rx(i);
        }
        self.dev.bar_write(0, CR, 1, 0x0c);
        self.dev.bar_write(0, RCR, 4, 0x2 | 0x8);
    }

    /// (opts1 without OWN/EOR, buffer address) of the descriptors of one frame.
    fn tso_descs(&self) -> Vec<(u32, u64)> {
        let n = self.frame.len();
        if self.mode != Mode::CPlusTso {
            return vec![(FS | LS | n as u32, TX_BUF_AT)];
        }
        let lso = LGSEN | 1448 << 16;
        let mut out = vec![(FS | lso | 54, TX_BUF_AT)];
        let mut off = 54;
        while off < n {
            let len = (n - off).min(4096);
            out.push((lso | len as u32, TX_BUF_AT + off as u64));
            off += len;
        }
        let last = out.len() - 1;
        out[last].0 |= LS;
        out
    }

    fn desc_at(ring: u64, i: u32) -> u64 {
        ring + i as u64 * 16
    }

    fn arm_rx(&self, i: u32) {
        let eor = if i == CPLUS_RING - 1 { EOR } else { 0 };
        let mut d = [0u8; 16];
        d[0..4].copy_from_slice(&(OWN | eor | RX_BUF_SZ).to_le_bytes());
        d[8..16].copy_from_slice(&(RX_BUF_AT + (i as u64 % RX_BUFS) * RX_BUF_STRIDE).to_le_bytes());
        self.put(Self::desc_at(RX_RING_AT, i), &d);
    }

    /// Reads and acknowledges the interrupt causes (rtl8139_interrupt / cp_interrupt).
    fn ack(&mut self) -> u16 {
        let isr = self.dev.bar_read(0, ISR, 2) as u16;
        self.dev.bar_write(0, ISR, 2, isr as u32);
        isr
    }

    fn normal_tx(&mut self) -> usize {
        let len = self.frame.len() as u32;
        for _ in 0..self.batch {
            let slot = self.next as u64;
            self.dev.bar_write(0, TSD0 + 4 * slot, 4, len);
            self.next = (self.next + 1) % 4;
        }
        let _ = self.ack();
        // rtl8139_tx_interrupt reads each completed slot's status.
        let mut done = 0;
        for k in 0..self.batch {
            let slot = (self.next + 4 - self.batch + k) % 4;
            let tsd = self.dev.bar_read(0, TSD0 + 4 * slot as u64, 4);
            done += (tsd & (1 << 15) != 0) as usize;
        }
        done
    }

    fn normal_rx(&mut self) -> usize {
        for _ in 0..self.batch {
            let out = self.dev.receive(&self.frame);
            assert_eq!(out, RxOutcome::Accepted, "rtl8139 refused a frame");
            // Header (4) + frame + FCS (4), dword aligned; CAPR trails by 16.
            let step = (self.frame.len() + 8).next_multiple_of(4) as u16;
            self.cur_rx = self.cur_rx.wrapping_add(step);
            self.dev
                .bar_write(0, CAPR, 2, self.cur_rx.wrapping_sub(16) as u32);
        }
        self.accepted += self.batch as u64;
        let _ = self.ack();
        self.batch as usize
    }

    fn cplus_tx(&mut self) -> usize {
        for _ in 0..self.batch {
            for k in 0..self.descs.len() {
                let (opts1, addr) = self.descs[k];
                let i = self.next;
                let eor = if i == CPLUS_RING - 1 { EOR } else { 0 };
                let mut d = [0u8; 16];
                d[0..4].copy_from_slice(&(OWN | eor | opts1).to_le_bytes());
                d[8..16].copy_from_slice(&addr.to_le_bytes());
                self.put(Self::desc_at(TX_RING_AT, i), &d);
                self.next = (i + 1) % CPLUS_RING;
            }
        }
        self.dev.bar_write(0, TPPOLL, 1, 0x40);
        let _ = self.ack();
        self.batch as usize
    }

    fn cplus_rx(&mut self) -> usize {
        for _ in 0..self.batch {
            let out = self.dev.receive(&self.frame);
            assert_eq!(out, RxOutcome::Accepted, "rtl8139 C+ refused a frame");
        }
        self.accepted += self.batch as u64;
        let _ = self.ack();
        for _ in 0..self.batch {
            self.arm_rx(self.next);
            self.next = (self.next + 1) % CPLUS_RING;
        }
        self.batch as usize
    }

    /// The device under test.
    pub fn device(&self) -> &dyn NicDevice<GuestMemoryMmap> {
        &*self.dev
    }
}

impl Rig for Rtl8139Rig {
    fn run_batch(&mut self) -> usize {
        match (self.mode, self.dir) {
            (Mode::Normal, Dir::Tx) => self.normal_tx(),
            (Mode::Normal, Dir::Rx) => self.normal_rx(),
            (_, Dir::Tx) => self.cplus_tx(),
            (_, Dir::Rx) => self.cplus_rx(),
        }
    }

    fn frames_done(&self) -> u64 {
        self.dev.backend().counters().sent_frames + self.accepted
    }
}
