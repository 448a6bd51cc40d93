//! The plain save/restore state of an NE2000: every register, the packet memory and the
//! PCI config space, in the style of vm-superio's `SerialState`.
//!
//! [`Ne2000State`] is also the live register file of the model, so a saved state is
//! exactly what the device runs on: [`super::Ne2000::state`] copies it out and
//! [`super::Ne2000::from_state`] validates and adopts it.

use super::memory::RAM_SIZE;
use super::registers::{Dcr, Isr, Rcr, Rsr, Tcr, Tsr};

/// What the remote DMA channel is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RemoteDma {
    /// No transfer in progress: data port accesses are ignored.
    #[default]
    Idle,
    /// Remote read: data port reads return packet memory.
    Read,
    /// Remote write: data port writes fill packet memory.
    Write,
    /// Send Packet: a remote read of one ring packet that advances BNRY when done.
    SendPacket,
}

/// Every piece of NE2000 state. All fields are plain data; see the DP8390D register
/// descriptions for their meaning. Values are the registers as the chip holds them (not
/// as read back: constant read-back bits are added on read).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ne2000State {
    /// CR.PS: the register page selected (0..=3).
    pub page: u8,
    /// CR.RD2:0 as last written (bits 5:3 of CR).
    pub remote_cmd: u8,
    /// True after a Start command, false after Stop or reset (CR.STA vs CR.STP).
    pub started: bool,
    /// Interrupt status register.
    pub isr: Isr,
    /// Interrupt mask register (bit 7 never set).
    pub imr: Isr,
    /// Data configuration register.
    pub dcr: Dcr,
    /// Transmit configuration register.
    pub tcr: Tcr,
    /// Receive configuration register.
    pub rcr: Rcr,
    /// Transmit status register.
    pub tsr: Tsr,
    /// Receive status register.
    pub rsr: Rsr,
    /// Number of collisions of the last transmission (always 0 on a virtual wire).
    pub ncr: u8,
    /// Page start: first page of the receive ring.
    pub pstart: u8,
    /// Page stop: first page after the receive ring.
    pub pstop: u8,
    /// Boundary pointer.
    pub bnry: u8,
    /// Current page: where the next received packet goes.
    pub curr: u8,
    /// Transmit page start.
    pub tpsr: u8,
    /// Transmit byte count.
    pub tbcr: u16,
    /// Remote start address.
    pub rsar: u16,
    /// Remote byte count as programmed.
    pub rbcr: u16,
    /// Current remote DMA address (CRDA).
    pub crda: u16,
    /// Bytes left in the current remote DMA transfer.
    pub remote_left: u16,
    /// The remote DMA transfer in progress.
    pub dma: RemoteDma,
    /// Remote next packet pointer (Send Packet's next BNRY).
    pub rnpp: u8,
    /// Local next packet pointer (the page after the last received packet).
    pub lnpp: u8,
    /// Current local DMA address (CLDA; also page 2's address counter).
    pub clda: u16,
    /// Physical address registers PAR0-5.
    pub par: [u8; 6],
    /// Multicast address registers MAR0-7.
    pub mar: [u8; 8],
    /// Tally counters CNTR0 (frame alignment), CNTR1 (CRC), CNTR2 (missed packets).
    pub cntr: [u8; 3],
    /// The last 8 bytes of the last loopback packet, read through the FIFO register.
    pub fifo: [u8; 8],
    /// Next FIFO byte to read (0..8).
    pub fifo_pos: u8,
    /// A ring overflow was reported; the receiver takes nothing until the host removes a
    /// packet (BNRY write) or restarts the NIC.
    pub overflow: bool,
    /// RTL8029AS 9346CR (page 3).
    pub cr9346: u8,
    /// RTL8029AS CONFIG2 (page 3).
    pub config2: u8,
    /// RTL8029AS CONFIG3 (page 3).
    pub config3: u8,
    /// Link state last given by `set_link`.
    pub link_up: bool,
    /// The 16 KiB of packet RAM at card addresses 0x4000..0x8000.
    pub mem: Vec<u8>,
    /// PCI config space (256 bytes) for `ne2k_pci`; empty for `ne2k_isa`.
    pub pci_config: Vec<u8>,
}

impl Default for Ne2000State {
    /// The power-on state: zeroed registers with the DP8390D reset values applied, empty
    /// packet memory, link up, no PCI config (the device fills it in).
    fn default() -> Self {
        let mut s = Ne2000State {
            page: 0,
            remote_cmd: 0,
            started: false,
            isr: Isr::empty(),
            imr: Isr::empty(),
            dcr: Dcr::empty(),
            tcr: Tcr::empty(),
            rcr: Rcr::empty(),
            tsr: Tsr::empty(),
            rsr: Rsr::empty(),
            ncr: 0,
            pstart: 0,
            pstop: 0,
            bnry: 0,
            curr: 0,
            tpsr: 0,
            tbcr: 0,
            rsar: 0,
            rbcr: 0,
            crda: 0,
            remote_left: 0,
            dma: RemoteDma::Idle,
            rnpp: 0,
            lnpp: 0,
            clda: 0,
            par: [0; 6],
            mar: [0; 8],
            cntr: [0; 3],
            fifo: [0; 8],
            fifo_pos: 0,
            overflow: false,
            cr9346: 0,
            config2: 0,
            config3: 0,
            link_up: true,
            mem: vec![0; RAM_SIZE],
            pci_config: Vec::new(),
        };
        s.apply_reset();
        s
    }
}

/// Why a saved state was refused by [`super::Ne2000::from_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid NE2000 state: {}", self.0)
    }
}

impl std::error::Error for StateError {}

impl Ne2000State {
    /// The DP8390D reset (reset pin or the board's reset port): CR.TXP and CR.STA
    /// cleared, CR.RD2 and CR.STP set, ISR.RST set, IMR cleared, DCR.LAS set, TCR.LB1:0
    /// cleared. Every other register keeps its value, as the datasheet specifies. The
    /// remote DMA channel is idled and a pending overflow forgotten.
    pub fn apply_reset(&mut self) {
        self.started = false;
        self.remote_cmd = super::registers::cr::RD_ABORT;
        self.isr = Isr::RST;
        self.imr = Isr::empty();
        self.dcr |= Dcr::LAS;
        self.tcr.remove(Tcr::LB0 | Tcr::LB1);
        self.dma = RemoteDma::Idle;
        self.overflow = false;
    }

    /// Checks the invariants a model relies on; `pci` says whether a PCI config space
    /// must be present.
    pub fn validate(&self, pci: bool) -> Result<(), StateError> {
        if self.mem.len() != RAM_SIZE {
            return Err(StateError(format!(
                "packet memory is {} bytes, expected {RAM_SIZE}",
                self.mem.len()
            )));
        }
        let want = if pci { 256 } else { 0 };
        if self.pci_config.len() != want {
            return Err(StateError(format!(
                "PCI config space is {} bytes, expected {want}",
                self.pci_config.len()
            )));
        }
        if self.page > 3 || self.fifo_pos > 7 || self.imr.contains(super::registers::Isr::RST) {
            return Err(StateError(format!(
                "page {}, fifo position {} or IMR {:#04x} out of range",
                self.page,
                self.fifo_pos,
                self.imr.bits()
            )));
        }
        Ok(())
    }
}
