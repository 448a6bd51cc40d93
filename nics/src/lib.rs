//! # vm-nic-devices
//!
//! The device side of vm-nic: a PCI type-0 function model ([`pci`]), the level-triggered
//! interrupt line trait ([`irq`]), the injected clock every timer runs on ([`clock`]),
//! DMA helpers over `vm-memory` ([`dma`]), the [`NicDevice`] trait, and the NIC models:
//! [`e1000`] (82540EM, 82544GC, 82545EM), [`rtl8139`] (RTL8139 and RTL8139C+) and
//! [`ne2000`] (RTL8029 PCI and ISA NE2000).
//!
//! Models own no threads, read no wall clock and do no I/O of their own: a run is a pure
//! function of the register accesses, guest memory, received frames and clock readings,
//! so it can be fuzzed and replayed.

#![deny(missing_docs)]

pub mod clock;
pub mod device;
pub mod dma;
pub mod irq;
pub mod models;
pub mod pci;
pub mod state;

pub mod e1000;
pub mod ne2000;
pub mod rtl8139;

pub use clock::{Clock, ManualClock, Timer};
pub use device::{NicConfig, NicDevice, RxOutcome};
pub use irq::{IrqLine, IrqRecorder, NoIrq};
pub use pci::{BarKind, BarSpec, PciConfig, PciIds};
pub use state::{NicState, RestoreError};
pub use vm_nic_backends::{MacAddr, NetBackend};
