//! Level-triggered interrupt lines (PCI INTx, ISA IRQ).
//!
//! A device computes its interrupt level from its own cause and mask registers and hands
//! it to an [`Intx`], which applies the PCI command register's Interrupt Disable bit, keeps
//! the PCI status Interrupt Status bit in step, and calls the VMM's [`IrqLine`] only on a
//! change of level.

use std::sync::{Arc, Mutex};

use crate::pci::PciConfig;

/// A level-triggered interrupt line provided by the VMM.
pub trait IrqLine: Send {
    /// Drives the line: `true` asserts, `false` deasserts. Called only on changes.
    fn set_level(&self, asserted: bool);
}

impl<F: Fn(bool) + Send> IrqLine for F {
    fn set_level(&self, asserted: bool) {
        self(asserted)
    }
}

/// A line connected to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&self, _asserted: bool) {}
}

#[derive(Debug, Default)]
struct RecorderState {
    level: bool,
    transitions: Vec<bool>,
}

/// An [`IrqLine`] that remembers the current level and every transition; clones share
/// state, so a test keeps one clone and gives the other to the device.
#[derive(Clone, Debug, Default)]
pub struct IrqRecorder {
    state: Arc<Mutex<RecorderState>>,
}

impl IrqRecorder {
    /// A recorder with the line deasserted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current level.
    pub fn level(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).level
    }

    /// Every level change so far, oldest first.
    pub fn transitions(&self) -> Vec<bool> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transitions
            .clone()
    }

    /// Number of times the line was asserted.
    pub fn assert_count(&self) -> usize {
        self.transitions().iter().filter(|&&l| l).count()
    }
}

impl IrqLine for IrqRecorder {
    fn set_level(&self, asserted: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.level = asserted;
        s.transitions.push(asserted);
    }
}

/// The device side of one INTx pin: tracks the level the device requests and the level
/// actually driven on the [`IrqLine`].
pub struct Intx {
    line: Box<dyn IrqLine>,
    requested: bool,
    driven: bool,
}

impl std::fmt::Debug for Intx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intx")
            .field("requested", &self.requested)
            .field("driven", &self.driven)
            .finish()
    }
}

impl Intx {
    /// Wraps the VMM's line; the line starts deasserted.
    pub fn new(line: Box<dyn IrqLine>) -> Self {
        Intx {
            line,
            requested: false,
            driven: false,
        }
    }

    /// Sets the level the device requests for a PCI function: the PCI status Interrupt
    /// Status bit follows `level`, and the line is driven with `level` unless the command
    /// register's Interrupt Disable bit is set.
    pub fn update_pci(&mut self, level: bool, pci: &mut PciConfig) {
        self.requested = level;
        pci.set_interrupt_status(level);
        self.drive(level && !pci.intx_disabled());
    }

    /// Sets the level for a device with no PCI function (ISA).
    pub fn update(&mut self, level: bool) {
        self.requested = level;
        self.drive(level);
    }

    /// The level the device last requested.
    pub fn requested(&self) -> bool {
        self.requested
    }

    /// The level currently driven on the line.
    pub fn driven(&self) -> bool {
        self.driven
    }

    fn drive(&mut self, level: bool) {
        if level != self.driven {
            self.driven = level;
            self.line.set_level(level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_reach_the_line() {
        let rec = IrqRecorder::new();
        let mut i = Intx::new(Box::new(rec.clone()));
        i.update(true);
        i.update(true);
        i.update(false);
        assert_eq!(rec.transitions(), vec![true, false]);
        assert!(!rec.level());
    }
}
