//! Device-level fuzzing: one op-sequence engine for fuzzers, property tests and corpus
//! replay.
//!
//! An [`Op`] is one action of the guest (config and BAR accesses, writing RAM, placing
//! descriptors), the network (a received frame, the link) or the VMM (time, reset). Ops
//! derive [`arbitrary::Arbitrary`], so a fuzzer's bytes become an op sequence.
//! [`run_ops`] builds a device of a [`DeviceKind`] through
//! [`vm_nic_devices::models::create`] — guest RAM in a `GuestMemoryMmap` with a dirty
//! bitmap, a [`RecordingBackend`](vm_nic_backends::memory::RecordingBackend), an
//! [`IrqRecorder`](vm_nic_devices::IrqRecorder) and a
//! [`ManualClock`](vm_nic_devices::ManualClock) — runs the ops and returns an
//! [`Outcome`]: frames out, INTx edges, DMA writes, receive results, work done.
//!
//! ## Oracles
//! After every op the [`Harness`] checks, and stops at the first [`Violation`]:
//! - **work budget**: the op's [`work_done`](vm_nic_devices::NicDevice::work_done) delta
//!   is within [`Limits::work_per_op`] plus [`Limits::work_per_rx_frame`] per frame
//!   offered (unbounded ring walks, CVE-2015-6815 / CVE-2016-8910 / CVE-2016-1981 class);
//!   a transmit loop that never ends is stopped after [`HARD_FRAMES_PER_OP`] frames;
//! - **INTx**: the line equals PCI status Interrupt Status AND NOT command Interrupt
//!   Disable; Interrupt Status equals `cause & mask != 0`, with the causes and mask read
//!   from side-effect-free registers (RTL8139) or the saved state (e1000 with its
//!   throttle hold, NE2000), see [`CauseMask`] and [`Limits::cause_mask`]; the line is
//!   never driven twice to the same level;
//! - **frame length**: no frame longer than [`Limits::max_tx_frame`] reaches the backend;
//! - **posted frames only**: frames leave only during a BAR write (the guest's doorbell);
//! - **DMA**: guest RAM changes only while bus mastering is on, and never for a device
//!   that is not a bus master;
//! - **timers**: after running its timers a device has no deadline in the past;
//! - **bounded queues**: received frames wait in the backend's bounded
//!   [`FrameQueue`](vm_nic_backends::FrameQueue), at most one is held for a device that
//!   answered [`RxOutcome::NoBuffer`](vm_nic_devices::RxOutcome::NoBuffer).
//!
//! ## Fuzzing your own driver/device combination
//! ```no_run
//! use vm_nic::fuzzing::{DeviceKind, Harness, Op, Setup, Width};
//!
//! let mut h = Harness::new(DeviceKind::E1000).expect("e1000 in this build");
//! let prologue = h.setup_ops(Setup::Driver);
//! h.run(&prologue).unwrap();
//! // Your driver's sequence, as ops: here, ring the transmit doorbell.
//! h.step(&Op::BarWrite { bar: 0, offset: 0x3818, width: Width::Dword, value: 1 })
//!     .unwrap();
//! println!("{} frames out", h.outcome().frames_sent);
//! ```
//! See `docs/fuzzing.md` for cargo-fuzz usage and measured throughput.

pub mod cause;
mod guard;
pub mod harness;
pub mod hub;
pub mod input;
pub mod kind;
pub mod layout;
pub mod op;
pub mod outcome;
pub mod ram;
pub mod setup;
pub mod targets;
pub mod wire;

pub use cause::{CauseMask, CauseMaskRegs, ThrottleHold};
pub use guard::HARD_FRAMES_PER_OP;
pub use harness::{run_ops, run_ops_with_setup, Harness, RunConfig};
pub use input::{fuzz_device, FuzzInput, MAX_OPS};
pub use kind::{DescriptorLayout, DeviceKind, Limits};
pub use op::{Descriptor, GuestAddr, Op, RingSel, RxDest, Width};
pub use outcome::{DmaWrite, IntxEdge, Outcome, Read, RxEvent, TxFrame, Violation};
pub use ram::{FuzzMemory, Ram};
pub use setup::{BarInfo, Setup};
