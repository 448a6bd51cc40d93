//! The plain register state used for save/restore ([`super::Rtl8139::state`] and
//! [`super::Rtl8139::from_state`]).

use super::eeprom::Eeprom;
use super::tally::Tally;

/// Every register and internal pointer of the chip that is not derived from something
/// else. Field names follow the datasheet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Regs {
    /// Byte-addressed storage for the registers that only hold what the guest wrote (IDR,
    /// MAR, TSAD/TNPDS/THPDS, RBSTART, Config bytes, PHY parameters, wake-up patterns,
    /// FLASH, C+ addresses); other offsets in it are unused.
    #[cfg_attr(feature = "serde", serde(with = "serde_big_array::BigArray"))]
    pub bytes: [u8; 256],
    /// TSD0-3 (DTCCR in C+ mode occupies TSD0/TSD1).
    pub tsd: [u32; 4],
    /// Bit n set: descriptor n was handed to the chip and is not sent yet.
    pub tx_pending: u8,
    /// The descriptor the round-robin transmitter serves next.
    pub tx_next: u8,
    /// CR (RE, TE).
    pub cr: u8,
    /// CAPR.
    pub capr: u16,
    /// CBR: the ring offset the next packet is written at.
    pub cbr: u16,
    /// IMR.
    pub imr: u16,
    /// ISR.
    pub isr: u16,
    /// TCR (without the read-only version bits).
    pub tcr: u32,
    /// RCR.
    pub rcr: u32,
    /// TCTR at the moment of the save (the running counter is derived from the clock).
    pub tctr: u32,
    /// TimerInt.
    pub timer_int: u32,
    /// MPC (24 bits).
    pub mpc: u32,
    /// 9346CR mode and pin bits as written (EEDO is read from the EEPROM).
    pub cr9346: u8,
    /// HltClk: the clock was halted with `'H'`.
    pub clock_halted: bool,
    /// BMCR.
    pub bmcr: u16,
    /// CpCmd.
    pub cpcmd: u16,
    /// C+ normal-priority TX ring index.
    pub tx_npq_index: u8,
    /// C+ high-priority TX ring index.
    pub tx_hpq_index: u8,
    /// C+ RX ring index.
    pub rx_index: u8,
    /// C+ tally counters.
    pub tally: Tally,
    /// Link state the PHY reports.
    pub link_up: bool,
    /// Early receive byte count of the last frame.
    pub erbcr: u16,
    /// Early receive status.
    pub ersr: u8,
}

/// Everything needed to recreate an [`super::Rtl8139`] exactly: PCI config space,
/// registers and EEPROM. Restore with [`super::Rtl8139::from_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Rtl8139State {
    /// PCI revision: 0x10 (RTL8139C) or 0x20 (RTL8139C+).
    pub revision: u8,
    /// The station address the device was created with.
    pub mac: [u8; 6],
    /// PCI configuration space.
    #[cfg_attr(feature = "serde", serde(with = "serde_big_array::BigArray"))]
    pub pci: [u8; 256],
    /// Registers.
    pub regs: Regs,
    /// The 93C46 contents and serial state.
    pub eeprom: Eeprom,
}
