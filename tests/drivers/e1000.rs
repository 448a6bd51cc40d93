//! A small polling e1000 (82540EM) driver, written against the testkit bench the way a
//! guest OS driver is written against the hardware (Intel 8254x SDM chapter 14,
//! "General Initialization and Reset Operation").
//!
//! `Bugs` switches on mistakes real drivers make, so tests can show how each one
//! surfaces.

#![allow(dead_code)]

use vm_nic::devices::e1000::regs::{self, ctrl, eerd, icr, rctl, tctl};
use vm_nic::devices::pci::{command, reg};
use vm_nic::testkit::{Bench, BenchDevice, Failure};

/// Descriptors per ring: 16 x 16 bytes = 256 bytes (TDLEN/RDLEN count in 128-byte
/// units, SDM 13.4.38).
pub const RING: u32 = 16;
pub const TX_RING: u64 = 0x1_0000;
pub const RX_RING: u64 = 0x1_1000;
pub const TX_BUFS: u64 = 0x2_0000;
pub const RX_BUFS: u64 = 0x6_0000;
pub const BUF_SIZE: u64 = 2048;

/// Legacy transmit descriptor command bits (SDM 3.3.3.1).
const CMD_EOP: u8 = 1 << 0;
const CMD_IFCS: u8 = 1 << 1;
const CMD_RS: u8 = 1 << 3;
/// Descriptor Done, in both descriptor kinds' status byte.
const STA_DD: u8 = 1 << 0;
/// End of Packet, in the receive descriptor's status byte.
const STA_EOP: u8 = 1 << 1;
/// RCTL.SECRC: strip the Ethernet CRC (SDM 13.4.22).
const RCTL_SECRC: u32 = 1 << 26;

/// Mistakes the driver can be told to make.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bugs {
    /// Programs TDLEN for half the descriptors the driver then uses.
    pub tx_ring_half_length: bool,
    /// Fills the transmit descriptor but never writes TDT.
    pub skip_tdt_write: bool,
    /// Never gives receive descriptors to the device (RDT stays 0).
    pub skip_rdt_write: bool,
}

/// The driver's state: where BAR0 is, the MAC it read, and its ring positions.
#[derive(Debug)]
pub struct E1000Driver {
    pub bar0: u64,
    pub mac: [u8; 6],
    tx_tail: u32,
    rx_next: u32,
    pub bugs: Bugs,
}

impl E1000Driver {
    fn r32<D: BenchDevice>(&self, b: &mut Bench<D>, off: u32) -> u32 {
        b.mmio_read(self.bar0 + off as u64, 4)
    }

    fn w32<D: BenchDevice>(&self, b: &mut Bench<D>, off: u32, v: u32) {
        b.mmio_write(self.bar0 + off as u64, 4, v)
    }

    /// Finds the function, reads BAR0 from config space and turns on memory decoding
    /// and bus mastering (the firmware has placed the BARs: `Bench::enumerate`).
    pub fn probe<D: BenchDevice>(b: &mut Bench<D>, bugs: Bugs) -> Result<Self, Failure> {
        let id = b.config_read(reg::VENDOR_ID, 4);
        b.check(id == 0x100e_8086, || format!("not an 82540EM: {id:#x}"))?;
        let bar0 = (b.config_read(reg::BAR0, 4) & !0xf) as u64;
        let cmd = b.config_read(reg::COMMAND, 2) as u16 | command::MEMORY | command::BUS_MASTER;
        b.config_write(reg::COMMAND, 2, cmd as u32);
        Ok(E1000Driver {
            bar0,
            mac: [0; 6],
            tx_tail: 0,
            rx_next: 0,
            bugs,
        })
    }

    /// Global reset (CTRL.RST), every interrupt masked, pending causes cleared.
    pub fn reset<D: BenchDevice>(&mut self, b: &mut Bench<D>) -> Result<(), Failure> {
        self.w32(b, regs::IMC, u32::MAX);
        let c = self.r32(b, regs::CTRL);
        self.w32(b, regs::CTRL, c | ctrl::RST);
        // The SDM asks for 1 us before the next access; RST self-clears.
        b.advance(1_000);
        let c = self.r32(b, regs::CTRL);
        b.check(c & ctrl::RST == 0, || format!("CTRL.RST still set: {c:#x}"))?;
        self.w32(b, regs::IMC, u32::MAX);
        self.r32(b, regs::ICR);
        Ok(())
    }

    /// Reads one EEPROM word through EERD (SDM 13.4.4), polling DONE a bounded number
    /// of times.
    pub fn eeprom_word<D: BenchDevice>(&self, b: &mut Bench<D>, addr: u8) -> Result<u16, Failure> {
        self.w32(
            b,
            regs::EERD,
            eerd::START | (addr as u32) << eerd::ADDR_SHIFT,
        );
        for _ in 0..100 {
            let v = self.r32(b, regs::EERD);
            if v & eerd::DONE != 0 {
                return Ok((v >> eerd::DATA_SHIFT) as u16);
            }
            b.advance(1_000);
        }
        Err(b.failure(format!("EERD read of word {addr} never completed")))
    }

    /// The station address: EEPROM words 0-2, low byte first.
    pub fn read_mac<D: BenchDevice>(&mut self, b: &mut Bench<D>) -> Result<[u8; 6], Failure> {
        for i in 0..3 {
            let w = self.eeprom_word(b, i)?.to_le_bytes();
            self.mac[2 * i as usize] = w[0];
            self.mac[2 * i as usize + 1] = w[1];
        }
        Ok(self.mac)
    }

    /// Receive address, rings, receiver and transmitter on, link up, interrupts for
    /// receive, transmit and link changes unmasked.
    pub fn start<D: BenchDevice>(&mut self, b: &mut Bench<D>) {
        let m = self.mac;
        self.w32(b, regs::RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.w32(
            b,
            regs::RAH0,
            u32::from_le_bytes([m[4], m[5], 0, 0]) | 1 << 31,
        );
        for i in 0..128 {
            self.w32(b, regs::MTA + 4 * i, 0);
        }
        // Transmit ring (SDM 14.5).
        let tx_len = if self.bugs.tx_ring_half_length {
            RING / 2
        } else {
            RING
        };
        b.write_mem(TX_RING, &[0; 16 * RING as usize]);
        self.w32(b, regs::TDBAL, TX_RING as u32);
        self.w32(b, regs::TDBAH, 0);
        self.w32(b, regs::TDLEN, tx_len * 16);
        self.w32(b, regs::TDH, 0);
        self.w32(b, regs::TDT, 0);
        self.w32(b, regs::TCTL, tctl::EN | tctl::PSP | 0x0f << 4 | 0x40 << 12);
        // Receive ring (SDM 14.4): every descriptor but one given to the device.
        for i in 0..RING as u64 {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&(RX_BUFS + i * BUF_SIZE).to_le_bytes());
            b.write_mem(RX_RING + 16 * i, &d);
        }
        self.w32(b, regs::RDBAL, RX_RING as u32);
        self.w32(b, regs::RDBAH, 0);
        self.w32(b, regs::RDLEN, RING * 16);
        self.w32(b, regs::RDH, 0);
        if !self.bugs.skip_rdt_write {
            self.w32(b, regs::RDT, RING - 1);
        }
        self.w32(b, regs::RCTL, rctl::EN | rctl::BAM | RCTL_SECRC);
        let c = self.r32(b, regs::CTRL);
        self.w32(b, regs::CTRL, c | ctrl::SLU);
        self.w32(b, regs::IMS, icr::RXT0 | icr::TXDW | icr::LSC);
    }

    /// Queues one frame and rings the doorbell; waits (bounded) for the device to write
    /// the descriptor back.
    pub fn transmit<D: BenchDevice>(
        &mut self,
        b: &mut Bench<D>,
        frame: &[u8],
    ) -> Result<(), Failure> {
        let i = self.tx_tail as u64;
        let buf = TX_BUFS + i * BUF_SIZE;
        b.write_mem(buf, frame);
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
        d[11] = CMD_EOP | CMD_IFCS | CMD_RS;
        b.write_mem(TX_RING + 16 * i, &d);
        self.tx_tail = (self.tx_tail + 1) % RING;
        if !self.bugs.skip_tdt_write {
            self.w32(b, regs::TDT, self.tx_tail);
        }
        let status = b.read_mem(TX_RING + 16 * i + 12, 1)[0];
        b.check(status & STA_DD != 0, || {
            format!("transmit descriptor {i} not written back (DD clear) after the TDT write")
        })
    }

    /// Takes the next received frame, if the device has written one, and gives the
    /// descriptor back.
    pub fn receive<D: BenchDevice>(&mut self, b: &mut Bench<D>) -> Option<Vec<u8>> {
        let i = self.rx_next as u64;
        let d = b.read_mem(RX_RING + 16 * i, 16);
        if d[12] & STA_DD == 0 {
            return None;
        }
        assert!(d[12] & STA_EOP != 0, "frames fit one 2 KiB buffer");
        let len = u16::from_le_bytes([d[8], d[9]]) as usize;
        let frame = b.read_mem(RX_BUFS + i * BUF_SIZE, len);
        b.write_mem(RX_RING + 16 * i + 12, &[0]);
        // The descriptor just emptied becomes the new tail.
        self.w32(b, regs::RDT, self.rx_next);
        self.rx_next = (self.rx_next + 1) % RING;
        Some(frame)
    }

    /// The interrupt handler's first step: read (and so clear) the causes.
    pub fn interrupt_causes<D: BenchDevice>(&self, b: &mut Bench<D>) -> u32 {
        self.r32(b, regs::ICR)
    }
}

/// Firmware, probe, reset, MAC, start, and auto-negotiation time: a ready driver.
pub fn bring_up<D: BenchDevice>(b: &mut Bench<D>, bugs: Bugs) -> Result<E1000Driver, Failure> {
    b.enumerate();
    let mut drv = E1000Driver::probe(b, bugs)?;
    drv.reset(b)?;
    drv.read_mac(b)?;
    drv.start(b);
    b.advance(3_000_000_000);
    Ok(drv)
}
