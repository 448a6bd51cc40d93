//! Guest-driver rigs for the model benchmarks and the allocation tests: each rig owns
//! one model on a [`NullBackend`] with its rings in `vm-memory` guest RAM and drives it
//! with the register sequence the Linux driver uses (doorbell writes, interrupt cause
//! reads and acknowledgements, ring refills). Shared by `benches/models.rs` and
//! `tests/alloc_models.rs` through `#[path]`.
//!
//! What a batch is: the frames the driver hands over (TX) or the model stores (RX)
//! between two interrupt-cause reads. On e1000 and C+ that is one doorbell (TDT/TPPoll
//! write) for the whole batch; RTL8139 C mode has four TX slots, one TSD write per
//! frame; NE2000 moves every byte by port I/O.
//!
//! Driver work that is not needed for the model to proceed (rewriting e1000 descriptors
//! the model does not check, parsing RX headers whose contents the rig already knows)
//! is left out, so the figures are the model's cost plus the minimal register traffic.

#![allow(dead_code)]

pub mod e1000;
pub mod ne2000;
pub mod rtl8139;

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_devices::{MacAddr, ManualClock, NetBackend, NicConfig, NoIrq};

/// The station address every rig uses.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// Guest RAM size: rings, one TX buffer region and the RX buffers.
pub const RAM: usize = 64 << 20;

/// Direction of a rig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Driver to network.
    Tx,
    /// Network to driver.
    Rx,
}

/// One benchmarkable driver loop.
pub trait Rig {
    /// Runs one batch of frames; returns the frames completed (always the batch size on
    /// a correctly driven model).
    fn run_batch(&mut self) -> usize;
    /// Frames the backend has seen sent plus frames the model accepted, for checks.
    fn frames_done(&self) -> u64;
}

/// A fresh guest memory of [`RAM`] bytes at address 0.
pub fn guest_ram() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).expect("guest RAM")
}

/// The construction bundle with a null backend, no interrupt line and a manual clock.
pub fn config(mem: &GuestMemoryMmap, clock: &ManualClock) -> NicConfig<GuestMemoryMmap> {
    config_with(mem, clock, Box::new(NullBackend::new()))
}

/// [`config`] with another backend.
pub fn config_with(
    mem: &GuestMemoryMmap,
    clock: &ManualClock,
    backend: Box<dyn NetBackend>,
) -> NicConfig<GuestMemoryMmap> {
    NicConfig {
        mac: MacAddr(MAC),
        backend,
        irq: Box::new(NoIrq),
        clock: Arc::new(clock.clone()),
        memory: mem.clone(),
    }
}

fn csum_add(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        sum += (*b as u32) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A `len`-byte Ethernet/IPv4/TCP frame (no FCS, `len` >= 54) from a peer to `dst`,
/// with valid IP and TCP checksums and a patterned payload.
pub fn tcp_frame(dst: [u8; 6], len: usize) -> Vec<u8> {
    assert!(len >= 54, "a TCP frame needs 54 bytes of headers");
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14).min(0xffff) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 2, 2]);
    f[30..34].copy_from_slice(&[10, 0, 2, 15]);
    let ip_sum = csum_fold(csum_add(&f[14..34], 0));
    f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
    f[34..36].copy_from_slice(&8080u16.to_be_bytes());
    f[36..38].copy_from_slice(&40000u16.to_be_bytes());
    f[38..42].copy_from_slice(&1u32.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x10;
    f[48..50].copy_from_slice(&0xffffu16.to_be_bytes());
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let tcp_len = len - 34;
    let mut pseudo = csum_add(&f[26..34], 0);
    pseudo += 6 + tcp_len as u32;
    let tcp_sum = csum_fold(csum_add(&f[34..], pseudo));
    f[50..52].copy_from_slice(&tcp_sum.to_be_bytes());
    f
}
