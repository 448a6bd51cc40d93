//! NE2000 (RTL8029, `ne2k_pci`) driven as Linux's 8390 core and ne2k-pci drive it:
//! every byte crosses the data port (32-bit port I/O, word mode). TX: remote-DMA write
//! into the transmit pages, RDC poll, TPSR/TBCR, CR.TXP, then ISR/TSR reads and the
//! acknowledge. RX: the ring walk of `ei_receive` (CURR on page 1, BNRY, the 4-byte
//! header by remote read, the frame by remote read, BNRY update) and the ISR
//! acknowledge. No descriptors and no guest DMA: the ring lives in the card's 16 KiB.

use vm_memory::GuestMemoryMmap;
use vm_nic_devices::{ManualClock, NicDevice, RxOutcome};

use super::{config, guest_ram, tcp_frame, Dir, Rig, MAC};

const CMD: u64 = 0x00;
const PSTART: u64 = 0x01;
const PSTOP: u64 = 0x02;
const BNRY: u64 = 0x03;
const TPSR: u64 = 0x04;
const TSR: u64 = 0x04;
const TBCR0: u64 = 0x05;
const TBCR1: u64 = 0x06;
const ISR: u64 = 0x07;
const RSAR0: u64 = 0x08;
const RSAR1: u64 = 0x09;
const RBCR0: u64 = 0x0a;
const RBCR1: u64 = 0x0b;
const RCR: u64 = 0x0c;
const TCR: u64 = 0x0d;
const DCR: u64 = 0x0e;
const IMR: u64 = 0x0f;
const PAR0: u64 = 0x01;
const CURR: u64 = 0x07;
const MAR0: u64 = 0x08;
const DATA: u64 = 0x10;

const STOP: u8 = 0x01;
const START: u8 = 0x02;
const TRANS: u8 = 0x04;
const RREAD: u8 = 0x08;
const RWRITE: u8 = 0x10;
const NODMA: u8 = 0x20;
const PAGE1: u8 = 0x40;

const ISR_RX: u8 = 0x01;
const ISR_TX: u8 = 0x02;
const ISR_RX_ERR: u8 = 0x04;
const ISR_RDC: u8 = 0x40;

/// ne2k-pci's layout: two 6-page TX buffers at 0x40, the ring 0x4C..0x80.
const TX_START: u8 = 0x40;
const RX_START: u8 = 0x4c;
const RX_STOP: u8 = 0x80;

/// Pages in the receive ring.
pub const RING_PAGES: usize = (RX_STOP - RX_START) as usize;

/// One NE2000 PCI with the Linux driver's state.
pub struct Ne2000Rig {
    dev: Box<dyn NicDevice<GuestMemoryMmap>>,
    dir: Dir,
    batch: u32,
    frame: Vec<u8>,
    /// Where the driver copies received frames (the skb).
    rx_buf: Vec<u8>,
    accepted: u64,
    received_ok: u64,
}

impl Ne2000Rig {
    /// A rig moving `len`-byte frames in `dir`, `batch` per interrupt (TX: 1, as the
    /// 8390 transmits one buffer at a time). Panics if the batch does not fit the ring.
    pub fn new(dir: Dir, len: usize, batch: u32) -> Self {
        let mem = guest_ram();
        let clock = ManualClock::new();
        let mut dev =
            vm_nic_devices::models::create("ne2k_pci", &[], config(&mem, &clock)).expect("ne2k");
        dev.config_write(4, 2, 0x1);
        let pages = (len.max(60) + 8).div_ceil(256);
        match dir {
            Dir::Tx => assert_eq!(batch, 1, "the 8390 sends one buffer at a time"),
            Dir::Rx => assert!(
                pages * (batch as usize) < RING_PAGES,
                "batch does not fit the ring"
            ),
        }
        let mut rig = Ne2000Rig {
            dev,
            dir,
            batch,
            frame: tcp_frame(MAC, len.max(60)),
            rx_buf: vec![0; 2048],
            accepted: 0,
            received_ok: 0,
        };
        rig.init();
        rig
    }

    fn outb(&mut self, off: u64, v: u8) {
        self.dev.bar_write(0, off, 1, v as u32);
    }
    fn inb(&mut self, off: u64) -> u8 {
        self.dev.bar_read(0, off, 1) as u8
    }

    /// NS8390_init(dev, 1) in word mode.
    fn init(&mut self) {
        self.outb(CMD, NODMA | STOP);
        self.outb(DCR, 0x49);
        self.outb(RBCR0, 0);
        self.outb(RBCR1, 0);
        self.outb(RCR, 0x20);
        self.outb(TCR, 0x02);
        self.outb(TPSR, TX_START);
        self.outb(PSTART, RX_START);
        self.outb(BNRY, RX_STOP - 1);
        self.outb(PSTOP, RX_STOP);
        self.outb(ISR, 0xff);
        self.outb(IMR, 0);
        self.outb(CMD, NODMA | PAGE1 | STOP);
        for (i, b) in MAC.iter().enumerate() {
            self.outb(PAR0 + i as u64, *b);
        }
        self.outb(CURR, RX_START);
        for i in 0..8 {
            self.outb(MAR0 + i, 0);
        }
        self.outb(CMD, NODMA | STOP);
        self.outb(ISR, 0xff);
        self.outb(IMR, 0x3f);
        self.outb(CMD, NODMA | START);
        self.outb(TCR, 0);
        self.outb(RCR, 0x04);
    }

    /// ne2k_pci_block_output + NS8390_trigger_send + the TX interrupt.
    fn send(&mut self) -> usize {
        let count = self.frame.len().next_multiple_of(2);
        self.outb(IMR, 0);
        self.outb(CMD, NODMA | START);
        self.outb(ISR, ISR_RDC);
        self.outb(RBCR0, count as u8);
        self.outb(RBCR1, (count >> 8) as u8);
        self.outb(RSAR0, 0);
        self.outb(RSAR1, TX_START);
        self.outb(CMD, RWRITE | START);
        let mut chunks = self.frame.chunks_exact(4);
        for c in &mut chunks {
            let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            self.dev.bar_write(0, DATA, 4, v);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let v = u16::from_le_bytes([rest[0], rest.get(1).copied().unwrap_or(0)]);
            self.dev.bar_write(0, DATA, 2, v as u32);
        }
        let rdc = self.inb(ISR) & ISR_RDC != 0;
        self.outb(ISR, ISR_RDC);
        self.outb(CMD, NODMA);
        let busy = self.inb(CMD) & TRANS != 0;
        self.outb(TBCR0, self.frame.len() as u8);
        self.outb(TBCR1, (self.frame.len() >> 8) as u8);
        self.outb(TPSR, TX_START);
        self.outb(CMD, NODMA | TRANS | START);
        self.outb(IMR, 0x3f);
        // ei_interrupt -> ei_tx_intr.
        let isr = self.inb(ISR);
        let tsr = self.inb(TSR);
        self.outb(ISR, ISR_TX);
        usize::from(rdc && !busy && isr & ISR_TX != 0 && tsr & 1 != 0)
    }

    /// A remote read of `count` bytes at card address `at` into the driver's buffer.
    fn block_input(&mut self, count: usize, at: u16) {
        self.outb(CMD, NODMA | START);
        self.outb(RBCR0, count as u8);
        self.outb(RBCR1, (count >> 8) as u8);
        self.outb(RSAR0, at as u8);
        self.outb(RSAR1, (at >> 8) as u8);
        self.outb(CMD, RREAD | START);
        let words = count / 4;
        for k in 0..words {
            let v = self.dev.bar_read(0, DATA, 4);
            self.rx_buf[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
        }
        let mut k = words * 4;
        if count & 2 != 0 {
            let v = self.dev.bar_read(0, DATA, 2) as u16;
            self.rx_buf[k..k + 2].copy_from_slice(&v.to_le_bytes());
            k += 2;
        }
        if count & 1 != 0 {
            self.rx_buf[k] = self.dev.bar_read(0, DATA, 1) as u8;
        }
        self.outb(ISR, ISR_RDC);
    }

    /// The frames arrive, then ei_interrupt -> ei_receive drains the ring.
    fn receive(&mut self) -> usize {
        for _ in 0..self.batch {
            let out = self.dev.receive(&self.frame);
            assert_eq!(out, RxOutcome::Accepted, "ne2000 refused a frame");
        }
        self.accepted += self.batch as u64;
        let _isr = self.inb(ISR);
        let mut got = 0;
        for _ in 0..self.batch {
            self.outb(CMD, NODMA | PAGE1);
            let curr = self.inb(CURR);
            self.outb(CMD, NODMA);
            let mut this = self.inb(BNRY).wrapping_add(1);
            if this >= RX_STOP {
                this = RX_START;
            }
            if this == curr {
                break;
            }
            self.block_input(4, (this as u16) << 8);
            let hdr = [
                self.rx_buf[0],
                self.rx_buf[1],
                self.rx_buf[2],
                self.rx_buf[3],
            ];
            let count = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
            // The count covers header, frame and FCS; the driver reads frame + FCS.
            let pkt_len = count.saturating_sub(4).min(self.rx_buf.len());
            self.block_input(pkt_len, ((this as u16) << 8) + 4);
            got += usize::from(hdr[0] & 1 != 0 && pkt_len == self.frame.len() + 4);
            let next = if hdr[1] >= RX_STOP { RX_START } else { hdr[1] };
            self.outb(BNRY, next.wrapping_sub(1));
        }
        self.outb(ISR, ISR_RX | ISR_RX_ERR);
        self.received_ok += got as u64;
        got
    }

    /// Frames the driver read back intact (status OK, right length).
    pub fn received_ok(&self) -> u64 {
        self.received_ok
    }

    /// The device under test.
    pub fn device(&self) -> &dyn NicDevice<GuestMemoryMmap> {
        &*self.dev
    }
}

impl Rig for Ne2000Rig {
    fn run_batch(&mut self) -> usize {
        match self.dir {
            Dir::Tx => self.send(),
            Dir::Rx => self.receive(),
        }
    }

    fn frames_done(&self) -> u64 {
        self.dev.backend().counters().sent_frames + self.accepted
    }
}
