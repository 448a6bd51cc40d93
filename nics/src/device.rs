//! The [`NicDevice`] trait: how a VMM, the runner, the remote server, tests and fuzzers
//! drive any vm-nic model.
//!
//! ## Contract
//! - Register access is plain `read`/`write` with a width of 1, 2 or 4 bytes:
//!   [`NicDevice::config_read`]/[`NicDevice::config_write`] for PCI config space,
//!   [`NicDevice::bar_read`]/[`NicDevice::bar_write`] for an offset inside a BAR (for an
//!   ISA device, "BAR 0" is its I/O window at `iobase`). The caller decodes addresses to
//!   BAR + offset (see [`crate::PciConfig::decode`]). Any value, offset and width is
//!   accepted: unknown registers read as the hardware would and writes to them are ignored.
//! - Transmit happens inside `bar_write` (the doorbell), synchronously, to the device's
//!   backend; frames are never buffered inside the model beyond one frame being assembled.
//! - Receive: the event loop asks [`NicDevice::can_receive`], takes one frame from the
//!   backend and calls [`NicDevice::receive`]. [`RxOutcome::NoBuffer`] means "keep that
//!   frame and offer it again after the guest has refilled its ring": the frame is not lost.
//! - Time: the model reads the injected [`crate::Clock`]; the loop calls
//!   [`NicDevice::run_timers`] once the clock has reached [`NicDevice::next_deadline`].
//! - Interrupts go out through the [`crate::IrqLine`] given at construction, on level
//!   changes only.
//! - DMA uses the guest memory given at construction or by [`NicDevice::set_memory`],
//!   only while the PCI command register's Bus Master bit is set, and only inside the
//!   rings and buffers the guest posted. A DMA error (address outside guest RAM) is logged
//!   and handled as the hardware handles a master abort, never a panic.

use std::sync::Arc;

use vm_memory::GuestMemory;
use vm_nic_backends::{MacAddr, NetBackend};

use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::pci::PciConfig;
use crate::state::{NicState, RestoreError};

/// What became of a frame offered to [`NicDevice::receive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written to the guest.
    Accepted,
    /// Not addressed to this NIC under its current filters (or the receiver is off):
    /// discarded, as the hardware would.
    Filtered,
    /// The guest has no room for it now: keep the frame and offer it again later.
    NoBuffer,
    /// Discarded for a reason the device counts (oversized, runt, DMA fault).
    Dropped,
}

/// ISA resources of a device that is not on PCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaResources {
    /// First I/O port.
    pub iobase: u16,
    /// Number of ports decoded from `iobase`.
    pub ports: u16,
    /// IRQ number.
    pub irq: u8,
}

/// Everything a model needs from its surroundings.
pub struct NicConfig<M> {
    /// The station address the model reports (EEPROM/PROM contents).
    pub mac: MacAddr,
    /// Where transmitted frames go and received frames come from.
    pub backend: Box<dyn NetBackend>,
    /// The INTx/ISA interrupt line.
    pub irq: Box<dyn IrqLine>,
    /// The clock all timers run on.
    pub clock: Arc<dyn Clock>,
    /// Guest memory for DMA.
    pub memory: M,
}

impl<M> std::fmt::Debug for NicConfig<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NicConfig")
            .field("mac", &self.mac)
            .field("backend", &self.backend.kind())
            .finish()
    }
}

/// A NIC model. See the [module documentation](self) for the contract.
///
/// ```
/// use std::sync::Arc;
/// use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
/// use vm_nic_backends::{memory::RecordingBackend, MacAddr};
/// use vm_nic_devices::{models, IrqRecorder, ManualClock, NicConfig, NicDevice};
///
/// let ram: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// let (backend, wire) = RecordingBackend::new();
/// let mut nic = models::create("rtl8139", &[], NicConfig {
///     mac: MacAddr::QEMU_DEFAULT,
///     backend: Box::new(backend),
///     irq: Box::new(IrqRecorder::new()),
///     clock: Arc::new(ManualClock::new()),
///     memory: ram.clone(),
/// })
/// .unwrap();
/// nic.config_write(0x04, 2, 0x5); // command: I/O decoding, bus master
/// // The VMM has decoded the guest's port accesses to BAR 0 + offset.
/// let frame = [0xffu8; 60];
/// ram.write_slice(&frame, GuestAddress(0x1000)).unwrap();
/// nic.bar_write(0, 0x37, 1, 0x0c); // CR: receiver and transmitter on
/// nic.bar_write(0, 0x20, 4, 0x1000); // TSAD0: buffer address
/// nic.bar_write(0, 0x10, 4, 60); // TSD0: size with OWN clear: transmit now
/// assert_eq!(wire.take_sent(), vec![frame.to_vec()]);
/// ```
pub trait NicDevice<M: GuestMemory>: Send {
    /// QEMU's model name: `"e1000"`, `"rtl8139"`, `"ne2k_pci"`, ...
    fn model(&self) -> &'static str;

    /// The station address the device was created with.
    fn mac(&self) -> MacAddr;

    /// The PCI function, or `None` for an ISA device.
    fn pci(&self) -> Option<&PciConfig>;

    /// ISA resources, for an ISA device.
    fn isa(&self) -> Option<IsaResources> {
        None
    }

    /// Reads `size` bytes of config space at `offset`. ISA devices read all-ones.
    fn config_read(&mut self, offset: u16, size: u8) -> u32;

    /// Writes `size` bytes of config space at `offset`.
    fn config_write(&mut self, offset: u16, size: u8, value: u32);

    /// Reads `size` bytes at `offset` inside BAR `bar`.
    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32;

    /// Writes `size` bytes at `offset` inside BAR `bar`; may transmit.
    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32);

    /// Replaces the guest memory used for DMA (e.g. after a memory hot-plug).
    fn set_memory(&mut self, mem: M);

    /// True when the device could accept a frame now (receiver on, ring has room).
    fn can_receive(&self) -> bool;

    /// Offers one frame from the network.
    fn receive(&mut self, frame: &[u8]) -> RxOutcome;

    /// Tells the device whether its link partner is there (raises link-change
    /// interrupts as the hardware does).
    fn set_link(&mut self, up: bool);

    /// The earliest injected-clock time at which a timer is due, if any.
    fn next_deadline(&self) -> Option<u64>;

    /// Fires every timer due at the clock's current time.
    fn run_timers(&mut self);

    /// Hardware reset (PCI reset / power-on), keeping the MAC and EEPROM contents.
    fn reset(&mut self);

    /// The backend this device transmits to and receives from.
    fn backend(&self) -> &dyn NetBackend;

    /// Mutable access to the backend (the event loop pulls received frames through it).
    fn backend_mut(&mut self) -> &mut dyn NetBackend;

    /// The device's whole state, for save/restore or migration; `None` for a device
    /// that cannot be saved (the default, for devices defined outside this crate).
    fn save_state(&self) -> Option<NicState> {
        None
    }

    /// Replaces the device's state with `state` (from [`NicDevice::save_state`] of a device
    /// of the same model), keeping its backend, interrupt line, clock and guest memory;
    /// the interrupt line is driven to the level the state implies. On error the device
    /// is unchanged.
    fn restore_state(&mut self, state: &NicState) -> Result<(), RestoreError> {
        Err(RestoreError::new(
            self.model(),
            format!("this device cannot restore a {} state", state.family()),
        ))
    }

    /// Units of work done since creation: descriptors or ring entries visited plus bytes
    /// moved / 64. Fuzzers bound this per operation to catch unbounded loops.
    fn work_done(&self) -> u64 {
        0
    }
}
