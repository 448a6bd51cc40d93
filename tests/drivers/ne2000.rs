//! A small polling NE2000 driver (DP8390D datasheet, "Initialization Procedure" and
//! "Remote DMA"), for the RTL8029 PCI function and the ISA card alike: it only needs the
//! base of the 32-port I/O window.

use vm_nic::testkit::{Bench, BenchDevice, Failure};

// Page 0 registers (offsets in the I/O window).
const CR: u64 = 0x00;
const PSTART: u64 = 0x01;
const PSTOP: u64 = 0x02;
const BNRY: u64 = 0x03;
const TPSR: u64 = 0x04;
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
// Page 1.
const PAR0: u64 = 0x01;
const CURR: u64 = 0x07;
const MAR0: u64 = 0x08;
// Outside the register file.
const DATA: u64 = 0x10;
const RESET: u64 = 0x1f;

// CR bits.
const STP: u8 = 0x01;
const STA: u8 = 0x02;
const TXP: u8 = 0x04;
const RD_READ: u8 = 0x08;
const RD_WRITE: u8 = 0x10;
const RD_ABORT: u8 = 0x20;
const PAGE1: u8 = 0x40;

// ISR bits.
pub const ISR_PRX: u8 = 0x01;
pub const ISR_PTX: u8 = 0x02;
pub const ISR_TXE: u8 = 0x08;
pub const ISR_RDC: u8 = 0x40;
pub const ISR_RST: u8 = 0x80;

/// Transmit buffer: pages 0x40-0x45; receive ring: pages 0x46-0x7f.
pub const TX_PAGE: u8 = 0x40;
pub const RX_START: u8 = 0x46;
pub const RX_STOP: u8 = 0x80;

/// Mistakes the driver can be told to make.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bugs {
    /// Never programs TBCR before setting CR.TXP.
    pub skip_tbcr: bool,
    /// Swaps PSTART and PSTOP.
    pub swapped_ring_bounds: bool,
}

/// The driver's state.
#[derive(Debug)]
pub struct Ne2000Driver {
    pub base: u64,
    pub mac: [u8; 6],
    pub bugs: Bugs,
}

impl Ne2000Driver {
    fn out<D: BenchDevice>(&self, b: &mut Bench<D>, reg: u64, v: u8) {
        b.io_write(self.base + reg, 1, v as u32)
    }

    fn inb<D: BenchDevice>(&self, b: &mut Bench<D>, reg: u64) -> u8 {
        b.io_read(self.base + reg, 1) as u8
    }

    /// Sets up a remote DMA of `len` bytes at card address `addr` with command `rd`.
    fn remote<D: BenchDevice>(&self, b: &mut Bench<D>, addr: u16, len: u16, rd: u8) {
        self.out(b, RSAR0, addr as u8);
        self.out(b, RSAR1, (addr >> 8) as u8);
        self.out(b, RBCR0, len as u8);
        self.out(b, RBCR1, (len >> 8) as u8);
        self.out(b, CR, rd | STA);
    }

    /// Waits for Remote DMA Complete and acknowledges it.
    fn remote_done<D: BenchDevice>(&self, b: &mut Bench<D>) -> Result<(), Failure> {
        let isr = self.inb(b, ISR);
        b.check(isr & ISR_RDC != 0, || {
            format!("remote DMA not complete: ISR {isr:#04x}")
        })?;
        self.out(b, ISR, ISR_RDC);
        Ok(())
    }

    /// Reads `len` bytes of card memory at `addr` through the data port.
    pub fn read_card<D: BenchDevice>(
        &self,
        b: &mut Bench<D>,
        addr: u16,
        len: u16,
    ) -> Result<Vec<u8>, Failure> {
        self.remote(b, addr, len, RD_READ);
        let data = (0..len).map(|_| self.inb(b, DATA)).collect();
        self.remote_done(b)?;
        Ok(data)
    }

    /// Resets the card (reset port), reads the PROM and initialises it as the DP8390D's
    /// initialization procedure says; the card is started at the end.
    pub fn start<D: BenchDevice>(b: &mut Bench<D>, base: u64, bugs: Bugs) -> Result<Self, Failure> {
        let mut d = Ne2000Driver {
            base,
            mac: [0; 6],
            bugs,
        };
        let v = d.inb(b, RESET);
        d.out(b, RESET, v);
        let isr = d.inb(b, ISR);
        b.check(isr & ISR_RST != 0, || {
            format!("reset not reported: ISR {isr:#04x}")
        })?;
        d.out(b, CR, RD_ABORT | STP);
        d.out(b, DCR, 0x48); // byte transfers, normal operation, FIFO threshold 8 bytes
        d.out(b, RBCR0, 0);
        d.out(b, RBCR1, 0);
        d.out(b, RCR, 0x20); // monitor mode while setting up
        d.out(b, TCR, 0x02); // internal loopback while setting up
        d.out(b, ISR, 0xff);
        // Station address: the PROM holds each byte twice.
        let prom = d.read_card(b, 0, 12)?;
        for i in 0..6 {
            d.mac[i] = prom[2 * i];
        }
        let (start, stop) = if bugs.swapped_ring_bounds {
            (RX_STOP, RX_START)
        } else {
            (RX_START, RX_STOP)
        };
        d.out(b, TPSR, TX_PAGE);
        d.out(b, PSTART, start);
        d.out(b, PSTOP, stop);
        d.out(b, BNRY, start);
        d.out(b, ISR, 0xff);
        d.out(b, IMR, 0x3f);
        d.out(b, CR, PAGE1 | RD_ABORT | STP);
        for i in 0..6 {
            d.out(b, PAR0 + i as u64, d.mac[i]);
        }
        for i in 0..8 {
            d.out(b, MAR0 + i, 0);
        }
        d.out(b, CURR, start.wrapping_add(1));
        d.out(b, CR, RD_ABORT | STA);
        d.out(b, TCR, 0x00);
        d.out(b, RCR, 0x04); // accept broadcast and our own address
        Ok(d)
    }

    /// Copies `frame` to the transmit buffer and sends it; checks the card reported
    /// Packet Transmitted.
    pub fn transmit<D: BenchDevice>(&self, b: &mut Bench<D>, frame: &[u8]) -> Result<(), Failure> {
        let len = frame.len() as u16;
        self.remote(b, (TX_PAGE as u16) << 8, len, RD_WRITE);
        for &byte in frame {
            self.out(b, DATA, byte);
        }
        self.remote_done(b)?;
        if !self.bugs.skip_tbcr {
            self.out(b, TBCR0, len as u8);
            self.out(b, TBCR1, (len >> 8) as u8);
        }
        self.out(b, CR, RD_ABORT | TXP | STA);
        let isr = self.inb(b, ISR);
        self.out(b, ISR, isr & (ISR_PTX | ISR_TXE));
        b.check(isr & ISR_PTX != 0, || {
            format!("packet not transmitted: ISR {isr:#04x} (PTX clear)")
        })
    }

    /// Takes the next packet from the receive ring, if any, and moves BNRY past it.
    pub fn receive<D: BenchDevice>(&self, b: &mut Bench<D>) -> Result<Option<Vec<u8>>, Failure> {
        self.out(b, CR, PAGE1 | RD_ABORT | STA);
        let curr = self.inb(b, CURR);
        self.out(b, CR, RD_ABORT | STA);
        let bnry = self.inb(b, BNRY);
        let page = if bnry + 1 >= RX_STOP {
            RX_START
        } else {
            bnry + 1
        };
        if page == curr {
            return Ok(None);
        }
        let hdr = self.read_card(b, (page as u16) << 8, 4)?;
        let (next, count) = (hdr[1], u16::from_le_bytes([hdr[2], hdr[3]]));
        b.check(
            (RX_START..RX_STOP).contains(&next) && count >= 4 + 60 + 4,
            || format!("bad packet header at page {page:#04x}: {hdr:02x?}"),
        )?;
        // Frame without the 4-byte header and the 4-byte FCS; the remote DMA wraps at
        // PSTOP by itself.
        let frame = self.read_card(b, ((page as u16) << 8) + 4, count - 8)?;
        let bnry = if next == RX_START {
            RX_STOP - 1
        } else {
            next - 1
        };
        self.out(b, BNRY, bnry);
        self.out(b, ISR, ISR_PRX);
        Ok(Some(frame))
    }

    /// Reads and acknowledges the interrupt causes.
    pub fn interrupt_causes<D: BenchDevice>(&self, b: &mut Bench<D>) -> u8 {
        let isr = self.inb(b, ISR);
        self.out(b, ISR, isr);
        isr
    }
}
