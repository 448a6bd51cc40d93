//! Shared helpers for the security regression suites (`tests/security_*.rs`): build a
//! device through the fuzzing harness (so every oracle — work budget, INTx, frame length,
//! posted frames, DMA — is checked on every step of every CVE reproduction) and speak
//! to it as a guest driver would.
#![allow(dead_code)]

use vm_nic::fuzzing::layout::{RAM_SIZE, RING_ENTRIES, RX_BUFFERS, RX_BUFFER_SIZE};
use vm_nic::fuzzing::{DeviceKind, DmaWrite, Harness, Op, Setup, Width};
use vm_nic_devices::models::ModelError;

/// A device after the [`Setup::Driver`] prologue, or `None` (with a note on stderr) when
/// the model is not in this build: the test then has nothing to exercise.
pub fn driver_ready(kind: DeviceKind) -> Option<Harness> {
    let mut h = match Harness::new(kind) {
        Ok(h) => h,
        Err(ModelError::NotSupported(m)) => {
            eprintln!("{kind}: model '{m}' not in this build; nothing to test");
            return None;
        }
        Err(e) => panic!("{kind}: {e}"),
    };
    let prologue = h.setup_ops(Setup::Driver);
    h.run(&prologue)
        .unwrap_or_else(|v| panic!("{kind}: prologue: {v}"));
    Some(h)
}

/// A register write to BAR0.
pub fn w(offset: u32, width: u8, value: u32) -> Op {
    Op::BarWrite {
        bar: 0,
        offset,
        width: Width::from_bytes(width),
        value,
    }
}

/// Writes a register and asserts every oracle held.
pub fn write(h: &mut Harness, offset: u32, width: u8, value: u32) {
    step(h, &w(offset, width, value));
}

/// Reads a register (BAR0).
pub fn read(h: &mut Harness, offset: u32, width: u8) -> u32 {
    step(
        h,
        &Op::BarRead {
            bar: 0,
            offset,
            width: Width::from_bytes(width),
        },
    );
    h.outcome().reads.last().unwrap().value
}

/// Runs one op and asserts every oracle held.
pub fn step(h: &mut Harness, op: &Op) {
    if let Err(v) = h.step(op) {
        panic!("{}: {op:?}: {v}", h.kind());
    }
}

/// A frame `len` bytes long from the network, addressed to the device.
pub fn receive(h: &mut Harness, len: u16, fill: u8) {
    step(
        h,
        &Op::Receive {
            dest: vm_nic::fuzzing::RxDest::Own,
            len,
            fill,
            head: Vec::new(),
        },
    );
}

/// The guest writes `bytes` at `addr`.
pub fn poke(h: &mut Harness, addr: u64, bytes: &[u8]) {
    h.ram().guest_write(addr, bytes);
}

/// Every DMA write of op index `from` onwards.
pub fn dma_since(h: &Harness, from: usize) -> Vec<DmaWrite> {
    h.outcome()
        .dma_writes
        .iter()
        .filter(|w| w.op >= from)
        .cloned()
        .collect()
}

/// Asserts every DMA write from op `from` on lies inside one of `allowed` (start, len).
pub fn assert_dma_within(h: &Harness, from: usize, allowed: &[(u64, u64)]) {
    for wr in dma_since(h, from) {
        let end = wr.addr + wr.data.len() as u64;
        assert!(
            allowed.iter().any(|&(a, n)| wr.addr >= a && end <= a + n),
            "{}: DMA write {:#x}..{end:#x} outside what the guest posted {allowed:x?}",
            h.kind(),
            wr.addr
        );
    }
}

/// The receive buffers and ring the prologue posts.
pub fn posted_rx(ring: u64, desc_size: u64) -> Vec<(u64, u64)> {
    let mut v = vec![(ring, RING_ENTRIES * desc_size)];
    v.push((
        RX_BUFFERS,
        (RAM_SIZE - RX_BUFFERS).min(RING_ENTRIES * RX_BUFFER_SIZE),
    ));
    v
}

/// Ops run so far (the index the next op gets).
pub fn next_op(h: &Harness) -> usize {
    h.outcome().ops_run
}
