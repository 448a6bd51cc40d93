//! A small polling RTL8139 driver in normal (C) mode, as Linux `8139too` programs the
//! chip (RTL8139C datasheet: register descriptions, "Transmit" and "Receive" packet
//! buffer flow).

use vm_nic::devices::pci::{command, reg};
use vm_nic::devices::rtl8139::regs::{self, cr, int, rcr, tsd};
use vm_nic::testkit::{Bench, BenchDevice, Failure};

/// Receive ring: 8 KiB + 16 bytes, plus 1.5 KiB so a frame may run past the end (WRAP).
pub const RX_RING: u64 = 0x1_0000;
pub const RX_RING_SIZE: u16 = 8192;
/// Four transmit buffers of 2 KiB.
pub const TX_BUFS: u64 = 0x2_0000;

/// Mistakes the driver can be told to make.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bugs {
    /// Writes the PCI command register with I/O decoding only (no bus mastering).
    pub no_bus_master: bool,
}

/// The driver's state.
#[derive(Debug)]
pub struct Rtl8139Driver {
    pub base: u64,
    pub mac: [u8; 6],
    tx_next: u8,
    rx_offset: u16,
}

impl Rtl8139Driver {
    fn out8<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8, v: u8) {
        b.io_write(self.base + r as u64, 1, v as u32)
    }
    fn out16<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8, v: u16) {
        b.io_write(self.base + r as u64, 2, v as u32)
    }
    fn out32<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8, v: u32) {
        b.io_write(self.base + r as u64, 4, v)
    }
    fn in8<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8) -> u8 {
        b.io_read(self.base + r as u64, 1) as u8
    }
    fn in16<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8) -> u16 {
        b.io_read(self.base + r as u64, 2) as u16
    }
    fn in32<D: BenchDevice>(&self, b: &mut Bench<D>, r: u8) -> u32 {
        b.io_read(self.base + r as u64, 4)
    }

    /// Probe (BAR0 is the I/O window), software reset, MAC from IDR0-5 (loaded from the
    /// EEPROM at reset), receive ring and transmit buffers, receiver and transmitter on.
    pub fn start<D: BenchDevice>(b: &mut Bench<D>, bugs: Bugs) -> Result<Self, Failure> {
        let base = (b.config_read(reg::BAR0, 4) & !0x3) as u64;
        let cmd = if bugs.no_bus_master {
            command::IO
        } else {
            command::IO | command::BUS_MASTER
        };
        b.config_write(reg::COMMAND, 2, cmd as u32);
        let mut d = Rtl8139Driver {
            base,
            mac: [0; 6],
            tx_next: 0,
            rx_offset: 0,
        };
        d.out8(b, regs::CR, cr::RST);
        let c = d.in8(b, regs::CR);
        b.check(c & cr::RST == 0, || format!("CR.RST still set: {c:#04x}"))?;
        for i in 0..6 {
            d.mac[i] = d.in8(b, regs::IDR0 + i as u8);
        }
        d.out32(b, regs::RBSTART, RX_RING as u32);
        for i in 0..4u8 {
            d.out32(b, regs::TSAD0 + 4 * i, (TX_BUFS + 0x800 * i as u64) as u32);
        }
        d.out8(b, regs::CR, cr::RE | cr::TE);
        d.out32(b, regs::RCR, rcr::APM | rcr::AB | rcr::WRAP);
        d.out16(
            b,
            regs::IMR,
            int::ROK | int::TOK | int::RER | int::TER | int::RXOVW,
        );
        Ok(d)
    }

    /// Copies `frame` into the next transmit buffer and hands it to the chip (TSD write
    /// with OWN clear); checks TOK.
    pub fn transmit<D: BenchDevice>(
        &mut self,
        b: &mut Bench<D>,
        frame: &[u8],
    ) -> Result<(), Failure> {
        let i = self.tx_next;
        b.write_mem(TX_BUFS + 0x800 * i as u64, frame);
        self.out32(b, regs::TSD0 + 4 * i, frame.len() as u32);
        self.tx_next = (i + 1) % 4;
        let status = self.in32(b, regs::TSD0 + 4 * i);
        b.check(status & tsd::TOK != 0, || {
            format!("TSD{i} is {status:#010x}: transmit not OK (TOK clear)")
        })
    }

    /// Takes the next frame from the receive ring, if the buffer is not empty, and moves
    /// CAPR past it.
    pub fn receive<D: BenchDevice>(
        &mut self,
        b: &mut Bench<D>,
    ) -> Result<Option<Vec<u8>>, Failure> {
        if self.in8(b, regs::CR) & cr::BUFE != 0 {
            return Ok(None);
        }
        let at = RX_RING + self.rx_offset as u64;
        let hdr = b.read_mem(at, 4);
        let status = u16::from_le_bytes([hdr[0], hdr[1]]);
        let len = u16::from_le_bytes([hdr[2], hdr[3]]);
        b.check(status & 1 != 0 && len >= 64, || {
            format!(
                "bad receive header at ring offset {:#x}: {hdr:02x?}",
                self.rx_offset
            )
        })?;
        let frame = b.read_mem(at + 4, len as usize - 4);
        self.rx_offset = ((self.rx_offset as u32 + 4 + len as u32 + 3) & !3) as u16 % RX_RING_SIZE;
        self.out16(b, regs::CAPR, self.rx_offset.wrapping_sub(16));
        Ok(Some(frame))
    }

    /// Reads and acknowledges the interrupt causes (ISR is write-1-to-clear).
    pub fn interrupt_causes<D: BenchDevice>(&self, b: &mut Bench<D>) -> u16 {
        let isr = self.in16(b, regs::ISR);
        self.out16(b, regs::ISR, isr);
        isr
    }
}
