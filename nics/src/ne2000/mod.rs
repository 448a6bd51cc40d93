//! NE2000: the National DP8390D network interface controller on an NE2000 board, as the
//! Realtek RTL8029AS PCI function (`ne2k_pci`, 10EC:8029) or an ISA card (`ne2k_isa`).
//!
//! ## What is modelled
//! - The 32-byte I/O window: DP8390 registers at 0x00-0x0F in four pages selected by
//!   CR.PS (page 3 holds the RTL8029AS configuration registers on PCI), the remote DMA
//!   data port at 0x10-0x17 and the reset port at 0x18-0x1F.
//! - 16 KiB of packet RAM at card addresses 0x4000-0x7FFF (pages 0x40-0x7F) for both
//!   variants, and the 32-byte read-only station address PROM at 0x0000 ([`memory`]).
//! - Remote DMA (read, write, Send Packet) with 8- or 16-bit transfers by DCR.WTS and
//!   32-bit port accesses (`remote_dma.rs`); the receive ring with its 4-byte headers and
//!   the address filters (`receive.rs`); transmit and the TCR loopback modes (`transmit.rs`).
//! - Interrupts: ISR write-1-to-clear, IMR, and a level line `(ISR & IMR) != 0`.
//!
//! The NE2000 does no bus-master DMA (its packet memory is on the card), so guest memory
//! is stored and never touched. The full register table, with reset values and the
//! differences from QEMU, is in `docs/devices/ne2000.md`.
//!
//! ## Choices where the hardware leaves room
//! - Loopback is selected by TCR.LB alone; DCR.LS is stored and read back. Linux keeps
//!   DCR.LS = 1 and relies on TCR.LB = 01 to keep frames off the wire (as Bochs does).
//! - Frames from the network shorter than 60 bytes are padded with zeros, as the sending
//!   MAC would have on a real wire; runts (RCR.AR) therefore arise from this NIC's own
//!   loopback only. Stored packets carry the 4-byte FCS, like the DP8390.
//! - The receiver keeps one page free between CURR and BNRY, so CURR == BNRY never means
//!   "full" and both BNRY conventions (Linux's "one behind" and Send Packet's "next to
//!   read") work.
//! - A ring that is misconfigured (PSTART >= PSTOP, or CURR outside it) takes no frames:
//!   they are dropped and counted as missed, never written outside the ring. A BNRY
//!   outside the ring is read as PSTOP - 1 (Linux legitimately writes PSTART - 1).

pub mod memory;
pub mod registers;
pub mod state;

mod crc;
mod pages;
mod receive;
mod remote_dma;
mod rtl8029;
mod transmit;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use log::debug;
use vm_memory::GuestMemory;
use vm_nic_backends::{MacAddr, NetBackend};

use crate::clock::Clock;
use crate::device::{IsaResources, NicConfig, NicDevice, RxOutcome};
use crate::irq::Intx;
use crate::models::{parse_int_prop, ModelError};
use crate::pci::{BarSpec, PciConfig, PciIds};
use crate::state::{NicState, RestoreError};

pub use state::{Ne2000State, RemoteDma, StateError};

use memory::{prom_image, PROM_SIZE};
use registers::{port, Isr};

/// PCI vendor ID of Realtek.
pub const PCI_VENDOR_REALTEK: u16 = 0x10ec;
/// PCI device ID of the RTL8029.
pub const PCI_DEVICE_RTL8029: u16 = 0x8029;
/// Default ISA I/O base.
pub const ISA_DEFAULT_IOBASE: u16 = 0x300;
/// Default ISA IRQ.
pub const ISA_DEFAULT_IRQ: u8 = 9;

/// Which bus the card sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ne2000Bus {
    /// RTL8029AS PCI function: INTA, one 32-byte I/O BAR, page 3 and the ID bytes.
    Pci,
    /// ISA NE2000 (plain DP8390D) at `iobase` on `irq`.
    Isa {
        /// First I/O port.
        iobase: u16,
        /// IRQ line.
        irq: u8,
    },
}

/// An NE2000 model. See the [module documentation](self).
pub struct Ne2000<M> {
    bus: Ne2000Bus,
    st: Ne2000State,
    pci: Option<PciConfig>,
    intx: Intx,
    backend: Box<dyn NetBackend>,
    mac: MacAddr,
    prom: [u8; PROM_SIZE],
    memory: M,
    clock: Arc<dyn Clock>,
    work: u64,
    /// Reused buffer for the frame being transmitted.
    tx_buf: Vec<u8>,
    /// Reused buffer for the packet being written to the ring (header, frame, FCS).
    rx_buf: Vec<u8>,
}

impl<M> std::fmt::Debug for Ne2000<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ne2000")
            .field("bus", &self.bus)
            .field("mac", &self.mac)
            .field("isr", &self.st.isr)
            .field("imr", &self.st.imr)
            .finish()
    }
}

fn rtl8029_pci() -> PciConfig {
    PciConfig::new(
        PciIds {
            vendor: PCI_VENDOR_REALTEK,
            device: PCI_DEVICE_RTL8029,
            revision: 0,
            class: 0x02_00_00,
            subsystem_vendor: PCI_VENDOR_REALTEK,
            subsystem: PCI_DEVICE_RTL8029,
            interrupt_pin: 1,
        },
        &[Some(BarSpec::io(port::SIZE))],
    )
}

impl<M> Ne2000<M> {
    /// A powered-on card on `bus` with the given surroundings; the PROM holds `cfg.mac`.
    pub fn new(bus: Ne2000Bus, cfg: NicConfig<M>) -> Self {
        let pci = matches!(bus, Ne2000Bus::Pci).then(rtl8029_pci);
        let mut st = Ne2000State::default();
        if let Some(p) = &pci {
            st.pci_config = p.bytes().to_vec();
        }
        Ne2000 {
            bus,
            st,
            pci,
            intx: Intx::new(cfg.irq),
            backend: cfg.backend,
            mac: cfg.mac,
            prom: prom_image(cfg.mac),
            memory: cfg.memory,
            clock: cfg.clock,
            work: 0,
            tx_buf: Vec::with_capacity(transmit::MAX_TX_LEN),
            rx_buf: Vec::with_capacity(2048),
        }
    }

    /// Rebuilds a card on `bus` from a state saved by [`Ne2000::state`]. The PROM comes
    /// from `cfg.mac`; the interrupt line is driven to the level the state implies.
    pub fn from_state(
        state: &Ne2000State,
        bus: Ne2000Bus,
        cfg: NicConfig<M>,
    ) -> Result<Self, StateError> {
        state.validate(matches!(bus, Ne2000Bus::Pci))?;
        let mut dev = Self::new(bus, cfg);
        dev.apply_state(state);
        Ok(dev)
    }

    /// Copies a validated `state` (registers, packet memory, PCI space) into the card
    /// and drives the line.
    fn apply_state(&mut self, state: &Ne2000State) {
        if let Some(p) = self.pci.as_mut() {
            let mut saved = [0u8; 256];
            saved.copy_from_slice(&state.pci_config);
            p.restore(&saved);
        }
        self.st = state.clone();
        self.update_irq();
    }

    /// A copy of the whole device state (registers, packet memory, PCI config space).
    pub fn state(&self) -> Ne2000State {
        let mut s = self.st.clone();
        if let Some(p) = &self.pci {
            s.pci_config = p.bytes().to_vec();
        }
        s
    }

    /// The bus the card sits on.
    pub fn bus(&self) -> Ne2000Bus {
        self.bus
    }

    /// The guest memory handed over at construction or by `set_memory` (never accessed:
    /// the NE2000 does no bus-master DMA).
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The injected clock (the NE2000 has no timers; kept for the common device shape).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn is_pci(&self) -> bool {
        matches!(self.bus, Ne2000Bus::Pci)
    }

    /// Drives the interrupt line from ISR & IMR.
    fn update_irq(&mut self) {
        let level = !(self.st.isr & self.st.imr & Isr::INTERRUPTS).is_empty();
        match self.pci.as_mut() {
            Some(p) => self.intx.update_pci(level, p),
            None => self.intx.update(level),
        }
    }

    /// Power-on reset of the chip (PCI reset, VMM reset): registers and RAM cleared.
    fn power_on(&mut self) {
        let pci_config = std::mem::take(&mut self.st.pci_config);
        let link_up = self.st.link_up;
        self.st = Ne2000State {
            pci_config,
            link_up,
            ..Ne2000State::default()
        };
    }

    /// One byte-wide access to the I/O window (non-data-port offsets).
    fn io_read_byte(&mut self, offset: u64) -> u8 {
        match offset {
            0..=port::LAST_REG => self.reg_read(offset as u8),
            port::DATA..=port::DATA_END => self.data_read(1) as u8,
            port::RESET..=0x1f => {
                debug!("ne2000: reset port read: board reset");
                self.st.apply_reset();
                0
            }
            _ => registers::OPEN_BUS,
        }
    }

    fn io_write_byte(&mut self, offset: u64, value: u8) {
        match offset {
            0..=port::LAST_REG => self.reg_write(offset as u8, value),
            port::DATA..=port::DATA_END => self.data_write(1, value as u32),
            port::RESET..=0x1f => {
                debug!("ne2000: reset port write {value:#04x}: end of reset pulse, no effect")
            }
            _ => debug!("ne2000: write {value:#04x} to offset {offset:#x} outside the 32-byte window ignored"),
        }
    }

    /// A read of `size` bytes at `offset` in the I/O window.
    pub fn io_read(&mut self, offset: u64, size: u8) -> u32 {
        let size = size.clamp(1, 4);
        let v = if (port::DATA..=port::DATA_END).contains(&offset) {
            self.data_read(size)
        } else {
            (0..size as u64).fold(0u32, |v, i| {
                v | (self.io_read_byte(offset.saturating_add(i)) as u32) << (8 * i)
            })
        };
        self.update_irq();
        v
    }

    /// A write of `size` bytes of `value` at `offset` in the I/O window; may transmit.
    pub fn io_write(&mut self, offset: u64, size: u8, value: u32) {
        let size = size.clamp(1, 4);
        if (port::DATA..=port::DATA_END).contains(&offset) {
            self.data_write(size, value);
        } else {
            for i in 0..size as u64 {
                self.io_write_byte(offset.saturating_add(i), (value >> (8 * i)) as u8);
            }
        }
        self.update_irq();
    }
}

fn all_ones(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

impl<M: GuestMemory + Send> NicDevice<M> for Ne2000<M> {
    fn model(&self) -> &'static str {
        if self.is_pci() {
            "ne2k_pci"
        } else {
            "ne2k_isa"
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn pci(&self) -> Option<&PciConfig> {
        self.pci.as_ref()
    }

    fn isa(&self) -> Option<IsaResources> {
        match self.bus {
            Ne2000Bus::Isa { iobase, irq } => Some(IsaResources {
                iobase,
                ports: port::SIZE as u16,
                irq,
            }),
            Ne2000Bus::Pci => None,
        }
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        match &self.pci {
            Some(p) => p.read(offset, size),
            None => all_ones(size),
        }
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        if let Some(p) = self.pci.as_mut() {
            p.write(offset, size, value);
            // The Interrupt Disable bit may have changed.
            self.update_irq();
        }
    }

    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32 {
        if bar != 0 {
            debug!("ne2000: read of BAR{bar}, which does not exist");
            return all_ones(size);
        }
        self.io_read(offset, size)
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32) {
        if bar != 0 {
            debug!("ne2000: write to BAR{bar}, which does not exist, ignored");
            return;
        }
        self.io_write(offset, size, value)
    }

    fn set_memory(&mut self, mem: M) {
        self.memory = mem;
    }

    fn can_receive(&self) -> bool {
        self.rx_ready()
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        let out = self.receive_from_network(frame);
        self.update_irq();
        out
    }

    fn set_link(&mut self, up: bool) {
        // The DP8390 has no link-change interrupt; a lost link shows as carrier sense lost
        // on the next transmission.
        self.st.link_up = up;
    }

    fn next_deadline(&self) -> Option<u64> {
        None
    }

    fn run_timers(&mut self) {}

    fn reset(&mut self) {
        if let Some(p) = self.pci.as_mut() {
            p.reset();
            self.st.pci_config = p.bytes().to_vec();
        }
        self.power_on();
        self.update_irq();
    }

    fn backend(&self) -> &dyn NetBackend {
        self.backend.as_ref()
    }

    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        self.backend.as_mut()
    }

    fn work_done(&self) -> u64 {
        self.work
    }

    fn save_state(&self) -> Option<NicState> {
        Some(NicState::Ne2000(self.state()))
    }

    /// Keeps the card's bus and PROM (its MAC address); everything else comes from the
    /// state, which must be of a card on the same kind of bus.
    fn restore_state(&mut self, state: &NicState) -> Result<(), RestoreError> {
        let model = self.model();
        let NicState::Ne2000(s) = state else {
            return Err(RestoreError::wrong_family(model, state));
        };
        s.validate(self.is_pci())
            .map_err(|e| RestoreError::new(model, e.0))?;
        self.apply_state(s);
        Ok(())
    }
}

/// Creates `ne2k_pci` or `ne2k_isa` from its `-device` properties. `ne2k_pci` takes
/// none; `ne2k_isa` takes `iobase` (default 0x300) and `irq` (default 9, at most 15).
pub fn create<M>(
    name: &str,
    props: &[(String, String)],
    cfg: NicConfig<M>,
) -> Result<Box<dyn NicDevice<M>>, ModelError>
where
    M: GuestMemory + Send + 'static,
{
    let bus = match name {
        "ne2k_pci" => {
            if let Some((key, _)) = props.first() {
                return Err(ModelError::UnknownProperty {
                    model: name.to_string(),
                    key: key.clone(),
                    valid: Vec::new(),
                });
            }
            Ne2000Bus::Pci
        }
        "ne2k_isa" => {
            let mut iobase = ISA_DEFAULT_IOBASE;
            let mut irq = ISA_DEFAULT_IRQ;
            for (key, value) in props {
                match key.as_str() {
                    "iobase" => {
                        let max = 0x1_0000 - port::SIZE;
                        iobase = parse_int_prop(name, key, value, max)? as u16;
                    }
                    "irq" => irq = parse_int_prop(name, key, value, 15)? as u8,
                    _ => {
                        return Err(ModelError::UnknownProperty {
                            model: name.to_string(),
                            key: key.clone(),
                            valid: vec!["iobase", "irq"],
                        })
                    }
                }
            }
            Ne2000Bus::Isa { iobase, irq }
        }
        other => return Err(crate::models::unsupported(other)),
    };
    Ok(Box::new(Ne2000::new(bus, cfg)))
}
