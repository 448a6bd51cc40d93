//! # vm-nic-backends
//!
//! The network side of vm-nic: Ethernet [`MacAddr`]esses, the [`NetBackend`] trait every
//! host backend implements, the bounded [`FrameQueue`] that gives QEMU-style flow control,
//! the [`Hub`] that models QEMU's VLAN numbering, in-memory backends for tests
//! ([`memory`]), and the host backends, each behind a cargo feature.
//!
//! This crate knows nothing of devices: a NIC model holds a `Box<dyn NetBackend>` and calls
//! [`NetBackend::send`] when the guest transmits; whoever runs the event loop calls
//! [`NetBackend::recv`] and hands the frame to the device when the device can take it.

#![deny(missing_docs)]

pub mod backend;
pub mod gso;
pub mod hub;
pub mod mac;
pub mod memory;
pub mod opts;
pub mod queue;
mod sys;
pub mod vnet;

#[cfg(feature = "dump")]
pub mod dump;
#[cfg(feature = "socket")]
pub mod socket;
#[cfg(feature = "tap")]
pub mod tap;
#[cfg(feature = "user")]
pub mod user;
#[cfg(feature = "vde")]
pub mod vde;

pub use backend::{Counters, NetBackend, MAX_FRAME_LEN, MIN_FRAME_LEN};
pub use hub::{Hub, HubPort};
pub use mac::MacAddr;
pub use opts::OptError;
pub use queue::FrameQueue;
pub use vnet::VirtioNetHdr;
