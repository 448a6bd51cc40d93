//! The setup prologue: the ops a firmware and a driver would run first, so that a fuzzer
//! starts from a device with BARs placed, bus mastering on, rings programmed and receive
//! buffers posted, and spends its input on the interesting part.
//!
//! Register offsets and values come from the datasheets (Intel 8254x SDM chapter 13,
//! RTL8139C(L)+ register table, DP8390D / RTL8029AS), in the order the Linux drivers
//! (e1000, 8139too / 8139cp, ne2k-pci) program them.

use arbitrary::Arbitrary;
use vm_nic_devices::pci::{command, reg, BarKind};

use crate::fuzzing::kind::DeviceKind;
use crate::fuzzing::layout::*;
use crate::fuzzing::op::{Descriptor, GuestAddr, Op, RingSel, Width};

/// One BAR of the device under test, as the harness resolves [`Op::BarRead`] selectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarInfo {
    /// The BAR index in config space (0 for an ISA device's I/O window).
    pub index: u8,
    /// I/O or memory.
    pub kind: BarKind,
    /// Size in bytes.
    pub size: u64,
}

/// How far the prologue goes before the fuzzer's own ops run.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    /// BARs, command = I/O + memory + bus master, then the driver's initialisation.
    Driver,
    /// BARs and command = I/O + memory + bus master only.
    PciOnly,
    /// Like [`Setup::Driver`] but with bus mastering off: the device must not DMA.
    NoBusMaster,
    /// Like [`Setup::Driver`] with the command register's Interrupt Disable bit set.
    IntxDisabled,
    /// Nothing: the device as it comes out of reset.
    Bare,
}

impl Setup {
    /// The prologue ops for a device of `kind` with these BARs and MAC.
    pub fn ops(self, kind: DeviceKind, bars: &[BarInfo], mac: [u8; 6]) -> Vec<Op> {
        let mut ops = Vec::new();
        if self == Setup::Bare {
            return ops;
        }
        let is_pci = kind != DeviceKind::Ne2kIsa;
        if is_pci {
            ops.extend(program_bars(bars));
            let mut cmd = command::IO | command::MEMORY;
            if self != Setup::NoBusMaster {
                cmd |= command::BUS_MASTER;
            }
            if self == Setup::IntxDisabled {
                cmd |= command::INTX_DISABLE;
            }
            ops.push(Op::ConfigWrite {
                offset: reg::COMMAND as u8,
                width: Width::Word,
                value: cmd as u32,
            });
        }
        if self != Setup::PciOnly {
            ops.extend(driver_init(kind, mac));
        }
        ops
    }
}

/// Config writes placing every BAR at the addresses of [`crate::fuzzing::layout`].
pub fn program_bars(bars: &[BarInfo]) -> Vec<Op> {
    let mut ops = Vec::new();
    for b in bars {
        let addr = match b.kind {
            BarKind::Io => IO_BASE + 0x100 * b.index as u64,
            _ => MMIO_BASE + (b.index as u64) * 0x10_0000,
        };
        let off = reg::BAR0 as u8 + 4 * b.index;
        ops.push(Op::ConfigWrite {
            offset: off,
            width: Width::Dword,
            value: addr as u32,
        });
        if b.kind == BarKind::Mem64 {
            ops.push(Op::ConfigWrite {
                offset: off + 4,
                width: Width::Dword,
                value: 0,
            });
        }
    }
    ops
}

/// A register write to the first BAR.
pub fn reg_write(offset: u32, width: Width, value: u32) -> Op {
    Op::BarWrite {
        bar: 0,
        offset,
        width,
        value,
    }
}

fn w32(offset: u32, value: u32) -> Op {
    reg_write(offset, Width::Dword, value)
}

fn w16(offset: u32, value: u32) -> Op {
    reg_write(offset, Width::Word, value)
}

fn w8(offset: u32, value: u32) -> Op {
    reg_write(offset, Width::Byte, value)
}

/// Receive descriptors pointing at the [`RX_BUFFERS`], `flags` on each (and `last_flags`
/// added on the last one).
fn rx_descriptors(len: u16, flags: u16, last_flags: u16) -> Op {
    let descriptors = (0..RING_ENTRIES)
        .map(|i| Descriptor {
            addr: GuestAddr::InRam((RX_BUFFERS + i * RX_BUFFER_SIZE) as u32),
            len,
            flags: if i == RING_ENTRIES - 1 {
                flags | last_flags
            } else {
                flags
            },
            extra: 0,
        })
        .collect();
    Op::PlaceRing {
        ring: RingSel::Rx,
        first: 0,
        descriptors,
    }
}

/// The driver's initialisation for `kind`: rings at [`TX_RING`]/[`RX_RING`], receive
/// buffers posted, receiver and transmitter on, every interrupt unmasked.
/// Ends with one second of clock time so that link auto-negotiation completes.
pub fn driver_init(kind: DeviceKind, mac: [u8; 6]) -> Vec<Op> {
    let mut ops = match kind {
        k if k.is_e1000() => e1000_init(mac),
        DeviceKind::Rtl8139 => rtl8139_c_init(),
        DeviceKind::Rtl8139CPlus => rtl8139_cplus_init(),
        _ => ne2k_init(mac),
    };
    ops.push(Op::AdvanceClock { ns: 1_000_000_000 });
    ops
}

fn e1000_init(mac: [u8; 6]) -> Vec<Op> {
    let ring_bytes = (RING_ENTRIES * DESCRIPTOR_SIZE) as u32;
    vec![
        w32(0x0000, 1 << 6),                                               // CTRL.SLU
        w32(0x5400, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]])), // RAL0
        w32(0x5404, u32::from_le_bytes([mac[4], mac[5], 0, 0]) | 1 << 31), // RAH0 + AV
        w32(0x3800, TX_RING as u32),                                       // TDBAL
        w32(0x3804, 0),                                                    // TDBAH
        w32(0x3808, ring_bytes),                                           // TDLEN
        w32(0x3810, 0),                                                    // TDH
        w32(0x3818, 0),                                                    // TDT
        w32(0x0400, 1 << 1 | 1 << 3 | 0x0f << 4 | 0x40 << 12),             // TCTL EN PSP CT COLD
        w32(0x2800, RX_RING as u32),                                       // RDBAL
        w32(0x2804, 0),                                                    // RDBAH
        w32(0x2808, ring_bytes),                                           // RDLEN
        w32(0x2810, 0),                                                    // RDH
        rx_descriptors(0, 0, 0),
        w32(0x2818, RING_ENTRIES as u32 - 1),            // RDT
        w32(0x0100, 1 << 1 | 1 << 3 | 1 << 4 | 1 << 15), // RCTL EN UPE MPE BAM, 2 KiB
        w32(0x00d0, 0x0000_00df),                        // IMS: TXDW TXQE LSC RXSEQ RXDMT0 RXO RXT0
    ]
}

fn rtl8139_c_init() -> Vec<Op> {
    let mut ops = vec![
        w8(0x37, 1 << 4),                 // CR.RST
        w32(0x30, RX_RING_BUFFER as u32), // RBSTART
    ];
    for n in 0..4u32 {
        ops.push(w32(0x20 + 4 * n, (TX_BUFFERS as u32) + n * 0x800)); // TSAD0-3
    }
    ops.extend([
        w8(0x37, 1 << 3 | 1 << 2), // CR: RE TE
        w32(0x44, 0x8f),           // RCR: AAP APM AM AB WRAP, 8 KiB + 16
        w16(0x3c, 0xe07f),         // IMR: every source
    ]);
    ops
}

fn rtl8139_cplus_init() -> Vec<Op> {
    const OWN: u16 = 1 << 15; // descriptor bit 31
    const EOR: u16 = 1 << 14; // descriptor bit 30
    vec![
        w8(0x37, 1 << 4),               // CR.RST
        w16(0xe0, 1 << 0 | 1 << 1),     // C+ command: CPlusTxEnb CPlusRxEnb
        w32(0x20, TX_RING as u32),      // TNPDS low
        w32(0x24, 0),                   // TNPDS high
        w32(0x28, TX_RING_HIGH as u32), // THPDS low
        w32(0x2c, 0),                   // THPDS high
        rx_descriptors(RX_BUFFER_SIZE as u16, OWN, EOR),
        w32(0xe4, RX_RING as u32), // RDSAR low
        w32(0xe8, 0),              // RDSAR high
        w8(0x37, 1 << 3 | 1 << 2), // CR: RE TE
        w32(0x44, 0x0f),           // RCR: AAP APM AM AB
        w16(0x3c, 0xe07f),         // IMR
    ]
}

fn ne2k_init(mac: [u8; 6]) -> Vec<Op> {
    let mut ops = vec![
        Op::BarRead {
            bar: 0,
            offset: 0x1f,
            width: Width::Byte,
        }, // reset port: a read resets
        w8(0x1f, 0),
        w8(0x00, 0x21), // CR: page 0, STP, abort remote DMA
        w8(0x0e, 0x49), // DCR: word transfers, normal operation, FIFO 8 bytes
        w8(0x0a, 0),    // RBCR0
        w8(0x0b, 0),    // RBCR1
        w8(0x0c, 0x20), // RCR: monitor while setting up
        w8(0x0d, 0x02), // TCR: internal loopback while setting up
        w8(0x04, 0x40), // TPSR
        w8(0x01, 0x46), // PSTART
        w8(0x02, 0x80), // PSTOP
        w8(0x03, 0x46), // BNRY
        w8(0x07, 0xff), // ISR: clear all
        w8(0x0f, 0x3f), // IMR: every source
        w8(0x00, 0x61), // CR: page 1, STP, abort
    ];
    for (i, b) in mac.iter().enumerate() {
        ops.push(w8(1 + i as u32, *b as u32)); // PAR0-5
    }
    for i in 0..8 {
        ops.push(w8(0x08 + i, 0xff)); // MAR0-7
    }
    ops.extend([
        w8(0x07, 0x47), // CURR
        w8(0x00, 0x22), // CR: page 0, STA, abort
        w8(0x0d, 0x00), // TCR: normal
        w8(0x0c, 0x0c), // RCR: AB AM
    ]);
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_places_bars_and_sets_command() {
        let bars = [
            BarInfo {
                index: 0,
                kind: BarKind::Mem32,
                size: 0x2_0000,
            },
            BarInfo {
                index: 1,
                kind: BarKind::Io,
                size: 0x40,
            },
        ];
        let ops = Setup::IntxDisabled.ops(DeviceKind::E1000, &bars, [0; 6]);
        assert_eq!(
            ops[0],
            Op::ConfigWrite {
                offset: 0x10,
                width: Width::Dword,
                value: MMIO_BASE as u32
            }
        );
        assert_eq!(
            ops[1],
            Op::ConfigWrite {
                offset: 0x14,
                width: Width::Dword,
                value: IO_BASE as u32 + 0x100
            }
        );
        assert_eq!(
            ops[2],
            Op::ConfigWrite {
                offset: 0x04,
                width: Width::Word,
                value: (command::IO | command::MEMORY | command::BUS_MASTER | command::INTX_DISABLE)
                    as u32
            }
        );
        assert!(ops.len() > 10, "driver init follows");
        assert!(Setup::Bare.ops(DeviceKind::E1000, &bars, [0; 6]).is_empty());
        assert_eq!(
            Setup::PciOnly.ops(DeviceKind::E1000, &bars, [0; 6]).len(),
            3
        );
        // An ISA device has no config space to program.
        let isa = Setup::Driver.ops(DeviceKind::Ne2kIsa, &bars, [0; 6]);
        assert!(!isa.iter().any(|o| matches!(o, Op::ConfigWrite { .. })));
    }
}
