//! Register map of the DP8390D core and the RTL8029AS additions: port offsets inside the
//! 32-byte I/O window, per-page register offsets, and the bit layouts.
//!
//! Sources: National DP8390D "Network Interface Controller" datasheet, Register Address
//! Assignments and Register Descriptions; Realtek RTL8029AS datasheet, register table
//! (page 3, the ID bytes and the bits that read back as constants).

use bitflags::bitflags;

/// Offsets inside the 32-byte I/O window (PCI BAR 0, or ISA `iobase`).
pub mod port {
    /// Command register, present on every page.
    pub const CR: u64 = 0x00;
    /// Last DP8390 register offset (0x00..=0x0F select the paged registers).
    pub const LAST_REG: u64 = 0x0f;
    /// Remote DMA data port. The NE2000 board decodes 0x10..=0x17 as the data port.
    pub const DATA: u64 = 0x10;
    /// Last offset decoded as the data port.
    pub const DATA_END: u64 = 0x17;
    /// First offset of the reset port (0x18..=0x1F; drivers use 0x1F).
    pub const RESET: u64 = 0x18;
    /// Size of the I/O window: 32 bytes, the real chip's decode.
    pub const SIZE: u64 = 0x20;
}

/// Page 0 offsets. Reads and writes reach different registers at most offsets.
pub mod page0 {
    /// Read: current local DMA address, low byte. Write: PSTART.
    pub const CLDA0_PSTART: u8 = 0x01;
    /// Read: current local DMA address, high byte. Write: PSTOP.
    pub const CLDA1_PSTOP: u8 = 0x02;
    /// Boundary pointer (read/write).
    pub const BNRY: u8 = 0x03;
    /// Read: transmit status. Write: transmit page start.
    pub const TSR_TPSR: u8 = 0x04;
    /// Read: number of collisions. Write: transmit byte count, low byte.
    pub const NCR_TBCR0: u8 = 0x05;
    /// Read: FIFO. Write: transmit byte count, high byte.
    pub const FIFO_TBCR1: u8 = 0x06;
    /// Interrupt status (read; write 1 to clear).
    pub const ISR: u8 = 0x07;
    /// Read: current remote DMA address, low byte. Write: remote start address, low.
    pub const CRDA0_RSAR0: u8 = 0x08;
    /// Read: current remote DMA address, high byte. Write: remote start address, high.
    pub const CRDA1_RSAR1: u8 = 0x09;
    /// Read: RTL8029 ID byte 0 (PCI only). Write: remote byte count, low byte.
    pub const ID0_RBCR0: u8 = 0x0a;
    /// Read: RTL8029 ID byte 1 (PCI only). Write: remote byte count, high byte.
    pub const ID1_RBCR1: u8 = 0x0b;
    /// Read: receive status. Write: receive configuration.
    pub const RSR_RCR: u8 = 0x0c;
    /// Read: frame alignment error tally. Write: transmit configuration.
    pub const CNTR0_TCR: u8 = 0x0d;
    /// Read: CRC error tally. Write: data configuration.
    pub const CNTR1_DCR: u8 = 0x0e;
    /// Read: missed packet tally. Write: interrupt mask.
    pub const CNTR2_IMR: u8 = 0x0f;
}

/// Page 1 offsets (all read/write).
pub mod page1 {
    /// Physical address registers PAR0..PAR5 start here.
    pub const PAR0: u8 = 0x01;
    /// Current page register.
    pub const CURR: u8 = 0x07;
    /// Multicast address registers MAR0..MAR7 start here.
    pub const MAR0: u8 = 0x08;
}

/// Page 2 offsets: read-back of the page 0 write-only registers (diagnostics).
pub mod page2 {
    /// Read: PSTART. Write: CLDA0.
    pub const PSTART_CLDA0: u8 = 0x01;
    /// Read: PSTOP. Write: CLDA1.
    pub const PSTOP_CLDA1: u8 = 0x02;
    /// Remote next packet pointer (read/write).
    pub const RNPP: u8 = 0x03;
    /// Read: TPSR. Write: reserved.
    pub const TPSR: u8 = 0x04;
    /// Local next packet pointer (read/write).
    pub const LNPP: u8 = 0x05;
    /// Local address counter, high byte (read/write).
    pub const ADDR_HI: u8 = 0x06;
    /// Local address counter, low byte (read/write).
    pub const ADDR_LO: u8 = 0x07;
    /// Read: RCR.
    pub const RCR: u8 = 0x0c;
    /// Read: TCR.
    pub const TCR: u8 = 0x0d;
    /// Read: DCR.
    pub const DCR: u8 = 0x0e;
    /// Read: IMR.
    pub const IMR: u8 = 0x0f;
}

/// Page 3 offsets: RTL8029AS configuration registers (PCI variant only).
pub mod page3 {
    /// 93C46 command register: EEM1:0 mode bits 7:6, EECS/EESK/EEDI/EEDO bits 3:0.
    pub const CR9346: u8 = 0x01;
    /// CONFIG0 (read-only): media and version bits.
    pub const CONFIG0: u8 = 0x03;
    /// CONFIG2: PL1:0 media type, boot ROM size.
    pub const CONFIG2: u8 = 0x05;
    /// CONFIG3: FUDUP full duplex (bit 6), LED mode, sleep and power-down.
    pub const CONFIG3: u8 = 0x06;
    /// HLTCLK (write-only): 'R' (0x52) runs, 'H' (0x48) halts the clock.
    pub const HLTCLK: u8 = 0x09;
    /// RTL8029AS ID byte 0 (reads 0x29).
    pub const ASID0: u8 = 0x0e;
    /// RTL8029AS ID byte 1 (reads 0x80).
    pub const ASID1: u8 = 0x0f;
}

/// Command register fields.
pub mod cr {
    /// Stop: take the NIC offline.
    pub const STP: u8 = 0x01;
    /// Start: activate the NIC.
    pub const STA: u8 = 0x02;
    /// Transmit packet.
    pub const TXP: u8 = 0x04;
    /// Remote DMA command field (RD2:0, bits 5:3).
    pub const RD_MASK: u8 = 0x38;
    /// RD = 001: remote read.
    pub const RD_READ: u8 = 0x08;
    /// RD = 010: remote write.
    pub const RD_WRITE: u8 = 0x10;
    /// RD = 011: send packet.
    pub const RD_SEND: u8 = 0x18;
    /// RD2 set: abort/complete remote DMA.
    pub const RD_ABORT: u8 = 0x20;
    /// Page select field (PS1:0, bits 7:6).
    pub const PS_MASK: u8 = 0xc0;
    /// Shift of the page select field.
    pub const PS_SHIFT: u8 = 6;
}

bitflags! {
    /// Interrupt status register (ISR) and interrupt mask register (IMR) bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Isr: u8 {
        /// Packet received without error.
        const PRX = 0x01;
        /// Packet transmitted without error.
        const PTX = 0x02;
        /// Packet received with an error.
        const RXE = 0x04;
        /// Transmit aborted (excessive collisions or FIFO underrun).
        const TXE = 0x08;
        /// Receive buffer ring exhausted.
        const OVW = 0x10;
        /// MSB of a tally counter is set.
        const CNT = 0x20;
        /// Remote DMA complete.
        const RDC = 0x40;
        /// The NIC is in the reset (stopped) state, or the ring overflowed. Status only:
        /// it generates no interrupt and writing it has no effect.
        const RST = 0x80;
    }
}

impl Isr {
    /// The bits that can raise an interrupt (everything but RST; IMR bit 7 does not exist).
    pub const INTERRUPTS: Isr = Isr::from_bits_retain(0x7f);
}

bitflags! {
    /// Data configuration register (DCR).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Dcr: u8 {
        /// Word transfer select: remote DMA moves 16-bit words.
        const WTS = 0x01;
        /// Byte order select: 1 = big-endian words (68000 style).
        const BOS = 0x02;
        /// Long address select (dual 16-bit DMA); stored only.
        const LAS = 0x04;
        /// Loopback select: 1 = normal operation. Stored and read back; loopback itself
        /// is selected by TCR.LB (see the module documentation).
        const LS = 0x08;
        /// Auto-initialize remote: required for the Send Packet command.
        const ARM = 0x10;
        /// FIFO threshold select, bit 0; stored only.
        const FT0 = 0x20;
        /// FIFO threshold select, bit 1; stored only.
        const FT1 = 0x40;
    }
}

bitflags! {
    /// Transmit configuration register (TCR).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Tcr: u8 {
        /// Inhibit CRC: the buffer already ends with the frame check sequence.
        const CRC = 0x01;
        /// Loopback control, bit 0.
        const LB0 = 0x02;
        /// Loopback control, bit 1.
        const LB1 = 0x04;
        /// Auto transmit disable (remote station control); stored only.
        const ATD = 0x08;
        /// Collision offset enable; stored only.
        const OFST = 0x10;
    }
}

impl Tcr {
    /// The loopback mode, TCR bits 2:1: 0 normal, 1 internal (NIC), 2 external to the
    /// encoder/decoder, 3 external through the cable.
    pub fn loopback(self) -> u8 {
        (self.bits() >> 1) & 3
    }
}

bitflags! {
    /// Receive configuration register (RCR).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Rcr: u8 {
        /// Save errored packets.
        const SEP = 0x01;
        /// Accept runt packets (shorter than 64 bytes on the wire).
        const AR = 0x02;
        /// Accept broadcast.
        const AB = 0x04;
        /// Accept multicast that passes the MAR hash.
        const AM = 0x08;
        /// Promiscuous physical: accept every unicast destination.
        const PRO = 0x10;
        /// Monitor mode: check packets but do not buffer them.
        const MON = 0x20;
    }
}

bitflags! {
    /// Receive status register (RSR), also the status byte of each ring header.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Rsr: u8 {
        /// Packet received intact.
        const PRX = 0x01;
        /// CRC error.
        const CRC = 0x02;
        /// Frame alignment error.
        const FAE = 0x04;
        /// FIFO overrun.
        const FO = 0x08;
        /// Missed packet: no buffer, or monitor mode.
        const MPA = 0x10;
        /// Destination was multicast or broadcast.
        const PHY = 0x20;
        /// Receiver disabled (monitor mode).
        const DIS = 0x40;
        /// Deferring.
        const DFR = 0x80;
    }
}

bitflags! {
    /// Transmit status register (TSR).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Tsr: u8 {
        /// Packet transmitted without error.
        const PTX = 0x01;
        /// Bit 1: reserved on the DP8390D; the RTL8029AS reads it as 1.
        const RTL_ONE = 0x02;
        /// Transmit collided.
        const COL = 0x04;
        /// Transmit aborted.
        const ABT = 0x08;
        /// Carrier sense lost.
        const CRS = 0x10;
        /// FIFO underrun.
        const FU = 0x20;
        /// CD heartbeat failure.
        const CDH = 0x40;
        /// Out-of-window collision.
        const OWC = 0x80;
    }
}

/// RCR bits 7:6, which the RTL8029AS returns as 1 when RCR is read back on page 2
/// (RTL8029AS register description of RCR: "Always 1").
pub const RTL_RCR_READ_ONES: u8 = 0xc0;

/// RTL8029 ID bytes at page 0 offsets 0x0A/0x0B ("P", "C").
pub const RTL8029_ID: [u8; 2] = [0x50, 0x43];

/// RTL8029AS ID bytes at page 3 offsets 0x0E/0x0F.
pub const RTL8029AS_ID: [u8; 2] = [0x29, 0x80];

/// Value read from registers that do not exist on the modelled chip (undriven bus).
pub const OPEN_BUS: u8 = 0xff;
