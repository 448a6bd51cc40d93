//! A guest-driver model for NE2000 tests: the register sequences of Linux's 8390 core
//! (lib8390.c) and ne2k-pci.c, driven only through `NicDevice` BAR accesses. Shared by
//! the unit tests (via `#[path]`) and the integration tests; the including module must
//! have `NicDevice` in scope. Every wait loop is bounded.

#![allow(dead_code)]

use std::marker::PhantomData;

use super::NicDevice;
use vm_memory::GuestMemory;

/// CR bits as Linux's 8390.h names them.
pub const E8390_STOP: u8 = 0x01;
pub const E8390_START: u8 = 0x02;
pub const E8390_TRANS: u8 = 0x04;
pub const E8390_RREAD: u8 = 0x08;
pub const E8390_RWRITE: u8 = 0x10;
pub const E8390_NODMA: u8 = 0x20;
pub const E8390_PAGE0: u8 = 0x00;
pub const E8390_PAGE1: u8 = 0x40;
pub const E8390_PAGE2: u8 = 0x80;
pub const E8390_PAGE3: u8 = 0xc0;

/// Page 0 offsets.
pub const EN0_STARTPG: u8 = 0x01;
pub const EN0_STOPPG: u8 = 0x02;
pub const EN0_BOUNDARY: u8 = 0x03;
pub const EN0_TSR: u8 = 0x04;
pub const EN0_TPSR: u8 = 0x04;
pub const EN0_TCNTLO: u8 = 0x05;
pub const EN0_TCNTHI: u8 = 0x06;
pub const EN0_ISR: u8 = 0x07;
pub const EN0_RSARLO: u8 = 0x08;
pub const EN0_RSARHI: u8 = 0x09;
pub const EN0_RCNTLO: u8 = 0x0a;
pub const EN0_RCNTHI: u8 = 0x0b;
pub const EN0_RSR: u8 = 0x0c;
pub const EN0_RXCR: u8 = 0x0c;
pub const EN0_TXCR: u8 = 0x0d;
pub const EN0_COUNTER0: u8 = 0x0d;
pub const EN0_DCFG: u8 = 0x0e;
pub const EN0_COUNTER1: u8 = 0x0e;
pub const EN0_IMR: u8 = 0x0f;
pub const EN0_COUNTER2: u8 = 0x0f;
pub const EN1_PHYS: u8 = 0x01;
pub const EN1_CURPAG: u8 = 0x07;
pub const EN1_MULT: u8 = 0x08;
pub const NE_DATAPORT: u8 = 0x10;
pub const NE_RESET: u8 = 0x1f;

/// ISR bits.
pub const ENISR_RX: u8 = 0x01;
pub const ENISR_TX: u8 = 0x02;
pub const ENISR_RX_ERR: u8 = 0x04;
pub const ENISR_TX_ERR: u8 = 0x08;
pub const ENISR_OVER: u8 = 0x10;
pub const ENISR_COUNTERS: u8 = 0x20;
pub const ENISR_RDC: u8 = 0x40;
pub const ENISR_RESET: u8 = 0x80;
pub const ENISR_ALL: u8 = 0x3f;

/// RCR values Linux uses.
pub const E8390_RXCONFIG: u8 = 0x04;
pub const E8390_RXOFF: u8 = 0x20;
pub const E8390_TXCONFIG: u8 = 0x00;
pub const E8390_TXOFF: u8 = 0x02;

/// Linux's TX_PAGES: two 6-page transmit buffers.
pub const TX_PAGES: u8 = 12;

/// Drives one NE2000 as Linux does. `D` is the device, `M` its guest memory type.
pub struct Driver<D, M> {
    /// The device under test.
    pub dev: D,
    /// First transmit page (NESM_START_PG).
    pub tx_start: u8,
    /// First receive ring page.
    pub rx_start: u8,
    /// Ring stop page (NESM_STOP_PG).
    pub stop: u8,
    /// The driver's idea of the next packet page.
    pub current_page: u8,
    /// Word-wide transfers (DCR.WTS), as ne2k-pci always uses.
    pub word16: bool,
    _m: PhantomData<M>,
}

impl<D: NicDevice<M>, M: GuestMemory> Driver<D, M> {
    /// A driver with ne2k-pci's memory layout: TX at 0x40, ring 0x4C..0x80.
    pub fn new(dev: D) -> Self {
        Driver {
            dev,
            tx_start: 0x40,
            rx_start: 0x40 + TX_PAGES,
            stop: 0x80,
            current_page: 0x40 + TX_PAGES,
            word16: true,
            _m: PhantomData,
        }
    }

    pub fn outb(&mut self, off: u8, v: u8) {
        self.dev.bar_write(0, off as u64, 1, v as u32);
    }
    pub fn inb(&mut self, off: u8) -> u8 {
        self.dev.bar_read(0, off as u64, 1) as u8
    }
    pub fn outw(&mut self, off: u8, v: u16) {
        self.dev.bar_write(0, off as u64, 2, v as u32);
    }
    pub fn inw(&mut self, off: u8) -> u16 {
        self.dev.bar_read(0, off as u64, 2) as u16
    }
    pub fn outl(&mut self, off: u8, v: u32) {
        self.dev.bar_write(0, off as u64, 4, v);
    }
    pub fn inl(&mut self, off: u8) -> u32 {
        self.dev.bar_read(0, off as u64, 4)
    }

    /// Reads register `off` on `page` and returns to page 0 (no DMA, run state kept).
    pub fn read_paged(&mut self, page: u8, off: u8) -> u8 {
        let run = self.inb(0) & (E8390_START | E8390_STOP);
        self.outb(0, E8390_NODMA | page | run);
        let v = self.inb(off);
        self.outb(0, E8390_NODMA | E8390_PAGE0 | run);
        v
    }

    /// Writes register `off` on `page` and returns to page 0.
    pub fn write_paged(&mut self, page: u8, off: u8, v: u8) {
        let run = self.inb(0) & (E8390_START | E8390_STOP);
        self.outb(0, E8390_NODMA | page | run);
        self.outb(off, v);
        self.outb(0, E8390_NODMA | E8390_PAGE0 | run);
    }

    /// ne2k_pci_reset_8390: read-then-write the reset port, wait for ISR.RST (bounded),
    /// acknowledge. Returns whether the reset was acknowledged.
    pub fn reset_8390(&mut self) -> bool {
        let v = self.inb(NE_RESET);
        self.outb(NE_RESET, v);
        let acked = (0..100).any(|_| self.inb(EN0_ISR) & ENISR_RESET != 0);
        self.outb(EN0_ISR, ENISR_RESET);
        acked
    }

    /// The station address PROM read of ne2k_pci_init_one: word mode, 32 byte reads.
    pub fn read_prom(&mut self) -> [u8; 32] {
        let seq = [
            (E8390_NODMA | E8390_PAGE0 | E8390_STOP, 0x00),
            (0x49, EN0_DCFG),
            (0x00, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_IMR),
            (0xff, EN0_ISR),
            (E8390_RXOFF, EN0_RXCR),
            (E8390_TXOFF, EN0_TXCR),
            (32, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_RSARLO),
            (0x00, EN0_RSARHI),
            (E8390_RREAD | E8390_START, 0x00),
        ];
        for (v, off) in seq {
            self.outb(off, v);
        }
        let mut prom = [0u8; 32];
        for b in prom.iter_mut() {
            *b = self.inb(NE_DATAPORT);
        }
        prom
    }

    /// __NS8390_init(dev, startp) with `mac` and, when started, `rxconfig` as RCR.
    pub fn init(&mut self, mac: [u8; 6], startp: bool) {
        let endcfg = if self.word16 { 0x49 } else { 0x48 };
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
        self.outb(EN0_DCFG, endcfg);
        self.outb(EN0_RCNTLO, 0);
        self.outb(EN0_RCNTHI, 0);
        self.outb(EN0_RXCR, E8390_RXOFF);
        self.outb(EN0_TXCR, E8390_TXOFF);
        self.outb(EN0_TPSR, self.tx_start);
        self.outb(EN0_STARTPG, self.rx_start);
        self.outb(EN0_BOUNDARY, self.stop - 1);
        self.current_page = self.rx_start;
        self.outb(EN0_STOPPG, self.stop);
        self.outb(EN0_ISR, 0xff);
        self.outb(EN0_IMR, 0x00);
        self.outb(0, E8390_NODMA | E8390_PAGE1 | E8390_STOP);
        for (i, b) in mac.iter().enumerate() {
            self.outb(EN1_PHYS + i as u8, *b);
        }
        self.outb(EN1_CURPAG, self.rx_start);
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
        if startp {
            self.outb(EN0_ISR, 0xff);
            self.outb(EN0_IMR, ENISR_ALL);
            self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
            self.outb(EN0_TXCR, E8390_TXCONFIG);
            self.outb(EN0_RXCR, E8390_RXCONFIG);
            self.set_multicast(&[0; 8], E8390_RXCONFIG);
        }
    }

    /// do_set_multicast_list: load MAR0-7 then RCR.
    pub fn set_multicast(&mut self, mar: &[u8; 8], rxcr: u8) {
        self.outb(EN0_RXCR, E8390_RXCONFIG);
        self.outb(0, E8390_NODMA | E8390_PAGE1);
        for (i, b) in mar.iter().enumerate() {
            self.outb(EN1_MULT + i as u8, *b);
        }
        self.outb(0, E8390_NODMA | E8390_PAGE0);
        self.outb(EN0_RXCR, rxcr);
    }

    /// ne2k_pci_block_output: remote write of `data` (count rounded up to even) to
    /// `page` with 32-bit port writes and a trailing 16-bit one; waits for RDC (bounded).
    /// Returns whether RDC came.
    pub fn block_output(&mut self, data: &[u8], page: u8) -> bool {
        let mut buf = data.to_vec();
        if buf.len() & 1 == 1 {
            buf.push(0);
        }
        let count = buf.len();
        self.outb(0, E8390_PAGE0 | E8390_START | E8390_NODMA);
        self.outb(EN0_ISR, ENISR_RDC);
        self.outb(EN0_RCNTLO, count as u8);
        self.outb(EN0_RCNTHI, (count >> 8) as u8);
        self.outb(EN0_RSARLO, 0);
        self.outb(EN0_RSARHI, page);
        self.outb(0, E8390_RWRITE | E8390_START);
        let mut chunks = buf.chunks_exact(4);
        for c in &mut chunks {
            self.outl(NE_DATAPORT, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let rest = chunks.remainder();
        if rest.len() >= 2 {
            self.outw(NE_DATAPORT, u16::from_le_bytes([rest[0], rest[1]]));
        }
        let done = (0..100).any(|_| self.inb(EN0_ISR) & ENISR_RDC != 0);
        self.outb(EN0_ISR, ENISR_RDC);
        done
    }

    /// ne2k_pci_block_input: remote read of `count` bytes at card address `offset`.
    pub fn block_input(&mut self, count: usize, offset: u16) -> Vec<u8> {
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
        self.outb(EN0_RCNTLO, count as u8);
        self.outb(EN0_RCNTHI, (count >> 8) as u8);
        self.outb(EN0_RSARLO, offset as u8);
        self.outb(EN0_RSARHI, (offset >> 8) as u8);
        self.outb(0, E8390_RREAD | E8390_START);
        let mut out = Vec::with_capacity(count);
        for _ in 0..count >> 2 {
            out.extend_from_slice(&self.inl(NE_DATAPORT).to_le_bytes());
        }
        if count & 2 != 0 {
            out.extend_from_slice(&self.inw(NE_DATAPORT).to_le_bytes());
        }
        if count & 1 != 0 {
            out.push(self.inb(NE_DATAPORT));
        }
        self.outb(EN0_ISR, ENISR_RDC);
        out
    }

    /// ne2k_pci_get_8390_hdr: the 4-byte header at `page` with one 32-bit read.
    pub fn get_hdr(&mut self, page: u8) -> [u8; 4] {
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
        self.outb(EN0_RCNTLO, 4);
        self.outb(EN0_RCNTHI, 0);
        self.outb(EN0_RSARLO, 0);
        self.outb(EN0_RSARHI, page);
        self.outb(0, E8390_RREAD | E8390_START);
        let h = self.inl(NE_DATAPORT).to_le_bytes();
        self.outb(EN0_ISR, ENISR_RDC);
        h
    }

    /// ei_start_xmit + NS8390_trigger_send for one frame (padded to 60 bytes) from the
    /// first transmit buffer. Returns the TSR read after completion.
    pub fn send(&mut self, frame: &[u8]) -> u8 {
        let mut data = frame.to_vec();
        if data.len() < 60 {
            data.resize(60, 0);
        }
        self.outb(EN0_IMR, 0);
        self.block_output(&data, self.tx_start);
        self.outb(0, E8390_NODMA | E8390_PAGE0);
        assert_eq!(self.inb(0) & E8390_TRANS, 0, "transmitter busy");
        self.outb(EN0_TCNTLO, data.len() as u8);
        self.outb(EN0_TCNTHI, (data.len() >> 8) as u8);
        self.outb(EN0_TPSR, self.tx_start);
        self.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
        self.outb(EN0_IMR, ENISR_ALL);
        let tsr = self.inb(EN0_TSR);
        self.outb(EN0_ISR, ENISR_TX);
        tsr
    }

    /// ei_receive: takes the packets out of the ring (at most 9 per call, as Linux's
    /// `++rx_pkt_count < 10`),
    /// returning each with its status byte; the frames include their 4-byte FCS, as the
    /// DP8390 stores it.
    pub fn receive(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        let num_rx_pages = self.stop - self.rx_start;
        for _ in 1..10 {
            self.outb(0, E8390_NODMA | E8390_PAGE1);
            let rxing_page = self.inb(EN1_CURPAG);
            self.outb(0, E8390_NODMA | E8390_PAGE0);
            let mut this_frame = self.inb(EN0_BOUNDARY).wrapping_add(1);
            if this_frame >= self.stop {
                this_frame = self.rx_start;
            }
            if this_frame == rxing_page {
                break;
            }
            let hdr = self.get_hdr(this_frame);
            let count = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
            let pkt_len = count.saturating_sub(4);
            let next = this_frame
                .wrapping_add(1)
                .wrapping_add(((pkt_len + 4) >> 8) as u8);
            let ok_next = [
                next,
                next.wrapping_add(1),
                next.wrapping_sub(num_rx_pages),
                next.wrapping_add(1).wrapping_sub(num_rx_pages),
            ];
            assert!(ok_next.contains(&hdr[1]), "bogus next pointer {hdr:?}");
            let data = self.block_input(pkt_len, ((this_frame as u16) << 8) + 4);
            got.push((hdr[0], data));
            let mut next_frame = hdr[1];
            if next_frame >= self.stop {
                next_frame = self.rx_start;
            }
            self.current_page = next_frame;
            self.outb(EN0_BOUNDARY, next_frame.wrapping_sub(1));
        }
        self.outb(EN0_ISR, ENISR_RX | ENISR_RX_ERR);
        got
    }

    /// ei_rx_overrun: stop, clear RBCR, loopback, start, drain the ring, ack OVW, leave
    /// loopback.
    pub fn rx_overrun(&mut self) -> Vec<(u8, Vec<u8>)> {
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
        self.outb(EN0_RCNTLO, 0);
        self.outb(EN0_RCNTHI, 0);
        self.outb(EN0_TXCR, E8390_TXOFF);
        self.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
        let got = self.receive();
        self.outb(EN0_ISR, ENISR_OVER);
        self.outb(EN0_TXCR, E8390_TXCONFIG);
        got
    }
}
