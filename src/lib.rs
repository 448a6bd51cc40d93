//! # vm-nic
//!
//! Register-accurate emulated network cards — Intel e1000 (82540EM, 82544GC, 82545EM),
//! Realtek RTL8139/RTL8139C+, NE2000 (RTL8029 PCI and ISA) — behind one
//! [`NetBackend`](backends::NetBackend) trait, with QEMU-compatible host backends and a hub
//! that models QEMU's VLAN numbering.
//!
//! This crate re-exports the device side ([`devices`]) and the network side
//! ([`backends`]), parses QEMU's networking options into live objects ([`options`]), and
//! runs them in a single-threaded event loop ([`runner`]).

#![deny(missing_docs)]

pub use vm_nic_backends as backends;
pub use vm_nic_devices as devices;

pub mod fuzzing;
pub mod network;
pub mod options;
pub mod remote;
pub mod runner;
pub mod switch;
pub mod testkit;
