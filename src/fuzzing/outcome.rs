//! What a run did, and which oracle it broke.

use std::fmt;

use vm_nic_devices::RxOutcome;

use crate::fuzzing::cause::ThrottleHold;

/// A frame the device handed to its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxFrame {
    /// Index of the op during which it was sent.
    pub op: usize,
    /// The frame.
    pub data: Vec<u8>,
}

/// A change of the interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntxEdge {
    /// Index of the op during which it happened.
    pub op: usize,
    /// The new level.
    pub level: bool,
}

/// Bytes of guest RAM the device changed (found by comparing the pages vm-memory's dirty
/// bitmap marked with what the guest last wrote there; a DMA write of the bytes already
/// there is invisible).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaWrite {
    /// Index of the op during which it happened.
    pub op: usize,
    /// Guest physical address of the first changed byte.
    pub addr: u64,
    /// The new bytes.
    pub data: Vec<u8>,
}

/// A frame offered to the device's `receive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxEvent {
    /// Index of the op after which it was offered.
    pub op: usize,
    /// Frame length.
    pub len: usize,
    /// What the device did with it.
    pub outcome: RxOutcome,
}

/// A register read and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Index of the op.
    pub op: usize,
    /// The value read.
    pub value: u32,
}

/// A broken oracle: the run stops at the first one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An op made the device do more work than [`crate::fuzzing::Limits`] allows: an
    /// unbounded or super-linear loop (the CVE-2015-6815 / CVE-2016-8910 class).
    WorkBudget {
        /// Op index.
        op: usize,
        /// Work units the op took.
        work: u64,
        /// The budget.
        budget: u64,
    },
    /// The interrupt line disagrees with the PCI status Interrupt Status bit and the
    /// command register's Interrupt Disable bit.
    IntxLine {
        /// Op index.
        op: usize,
        /// Level on the line.
        line: bool,
        /// PCI status bit 3.
        status: bool,
        /// PCI command bit 10.
        disabled: bool,
    },
    /// The PCI Interrupt Status bit disagrees with `cause & mask` (the rule of
    /// [`crate::fuzzing::CauseMask`]).
    CauseMask {
        /// Op index.
        op: usize,
        /// The cause register.
        cause: u32,
        /// The mask register.
        mask: u32,
        /// An armed e1000 interrupt-throttling (ITR) timer.
        hold: Option<ThrottleHold>,
        /// The clock, in nanoseconds.
        now: u64,
        /// PCI status bit 3.
        status: bool,
    },
    /// The interrupt line was driven twice to the same level.
    IrqRepeat {
        /// Op index.
        op: usize,
    },
    /// A frame longer than the device can transmit left it.
    FrameTooLong {
        /// Op index.
        op: usize,
        /// Its length.
        len: usize,
        /// The device's limit.
        max: usize,
    },
    /// A frame left the device during an op that was not a BAR write (nothing the guest
    /// posted).
    UnpostedFrame {
        /// Op index.
        op: usize,
        /// Its length.
        len: usize,
    },
    /// Guest RAM changed while the device was not allowed to write it (bus mastering
    /// off, or a device that is not a bus master at all).
    ForbiddenDma {
        /// Op index.
        op: usize,
        /// First changed address.
        addr: u64,
        /// Number of changed bytes in that run.
        len: usize,
    },
    /// After running its timers, the device still has a deadline in the past: it would
    /// make the event loop spin.
    TimerStorm {
        /// Op index.
        op: usize,
        /// The stale deadline.
        deadline: u64,
        /// The clock.
        now: u64,
    },
}

impl Violation {
    /// Index of the op that broke the oracle.
    pub fn op(&self) -> usize {
        match *self {
            Violation::WorkBudget { op, .. }
            | Violation::IntxLine { op, .. }
            | Violation::CauseMask { op, .. }
            | Violation::IrqRepeat { op }
            | Violation::FrameTooLong { op, .. }
            | Violation::UnpostedFrame { op, .. }
            | Violation::ForbiddenDma { op, .. }
            | Violation::TimerStorm { op, .. } => op,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::WorkBudget { op, work, budget } => write!(
                f,
                "op {op}: took {work} work units, budget {budget} (unbounded loop?)"
            ),
            Violation::IntxLine {
                op,
                line,
                status,
                disabled,
            } => write!(
                f,
                "op {op}: INTx line {line} but PCI status.IS {status}, command.ID {disabled}"
            ),
            Violation::CauseMask {
                op,
                cause,
                mask,
                hold,
                now,
                status,
            } => {
                write!(
                    f,
                    "op {op}: PCI status.IS {status} but cause {cause:#x} & mask {mask:#x}"
                )?;
                match hold {
                    Some(h) => write!(
                        f,
                        ", ITR hold until {} ns after an assertion at {:?} ns, clock {now} ns",
                        h.deadline, h.last_assert
                    ),
                    None => Ok(()),
                }
            }
            Violation::IrqRepeat { op } => {
                write!(f, "op {op}: interrupt line driven twice to the same level")
            }
            Violation::FrameTooLong { op, len, max } => {
                write!(f, "op {op}: transmitted a {len}-byte frame, limit {max}")
            }
            Violation::UnpostedFrame { op, len } => write!(
                f,
                "op {op}: a {len}-byte frame left the device outside a BAR write"
            ),
            Violation::ForbiddenDma { op, addr, len } => write!(
                f,
                "op {op}: wrote {len} bytes of guest RAM at {addr:#x} without bus mastering"
            ),
            Violation::TimerStorm { op, deadline, now } => write!(
                f,
                "op {op}: deadline {deadline} still due at {now} after running timers"
            ),
        }
    }
}

/// Everything a run observed.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Ops executed (the run stops after the op that broke an oracle).
    pub ops_run: usize,
    /// Frames transmitted, the first [`crate::fuzzing::RunConfig::keep_frames`] of them.
    pub frames: Vec<TxFrame>,
    /// Number of frames transmitted in all.
    pub frames_sent: u64,
    /// Interrupt line changes.
    pub intx: Vec<IntxEdge>,
    /// Guest RAM the device wrote.
    pub dma_writes: Vec<DmaWrite>,
    /// Frames offered to the device and what it did with them.
    pub rx: Vec<RxEvent>,
    /// Values of config and BAR reads.
    pub reads: Vec<Read>,
    /// Work units per op (including receives after it).
    pub work: Vec<u64>,
    /// The first broken oracle, if any.
    pub violation: Option<Violation>,
}

impl Outcome {
    /// Total work units.
    pub fn total_work(&self) -> u64 {
        self.work.iter().sum()
    }

    /// Frames sent during op `op`.
    pub fn frames_of(&self, op: usize) -> impl Iterator<Item = &TxFrame> {
        self.frames.iter().filter(move |f| f.op == op)
    }

    /// Panics with the violation, if any: the fuzz targets' and replay tests' oracle.
    pub fn assert_ok(&self) {
        if let Some(v) = &self.violation {
            panic!("vm-nic oracle violated: {v}");
        }
    }
}
