//! Zero allocations per frame in steady state, for every model's transmit and receive
//! path, counted by a per-thread counting global allocator around the same driver
//! loops the benchmarks time (`benches/rigs/`). Complements `e1000_alloc.rs` and
//! `rtl8139_alloc.rs` (82540EM 1514-byte TX+RX, RTL8139 C mode and C+ with TSO) with
//! every e1000 variant, jumbo frames, e1000 TSO, batches and the NE2000.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use vm_nic_devices::e1000::Variant;
use vm_nic_devices::NicDevice;

#[path = "../benches/rigs/mod.rs"]
mod rigs;

use rigs::e1000::{E1000Rig, Load};
use rigs::ne2000::Ne2000Rig;
use rigs::rtl8139::{Mode, Rtl8139Rig};
use rigs::{Dir, Rig};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|a| a.get())
}

/// Warms the rig up, then asserts that `batches` more batches move every frame and
/// allocate nothing.
fn assert_steady_state_allocation_free<R: Rig>(what: &str, rig: &mut R, batch: u32) {
    const BATCHES: u64 = 40;
    for _ in 0..2 {
        assert_eq!(rig.run_batch(), batch as usize, "{what}: warm-up batch");
    }
    let frames = rig.frames_done();
    let before = allocs();
    let mut done = 0;
    for _ in 0..BATCHES {
        done += rig.run_batch();
    }
    let n = allocs() - before;
    assert_eq!(n, 0, "{what}: {n} allocations in {BATCHES} batches");
    assert_eq!(
        done as u64,
        BATCHES * batch as u64,
        "{what}: frames completed"
    );
    assert!(
        rig.frames_done() >= frames + BATCHES * batch as u64,
        "{what}: the model did not move the frames"
    );
}

#[test]
fn e1000_every_variant_tx_and_rx_allocate_nothing() {
    for v in [Variant::E82540EM, Variant::E82544GC, Variant::E82545EM] {
        for dir in [Dir::Tx, Dir::Rx] {
            for len in [64, 1514, 9000] {
                for batch in [1, 32] {
                    let mut rig = E1000Rig::new(v, dir, Load::Frame(len), batch);
                    let what = format!("{v:?} {dir:?} {len} b{batch}");
                    assert_steady_state_allocation_free(&what, &mut rig, batch);
                }
            }
        }
    }
}

#[test]
fn e1000_rx_descriptors_carry_length_and_checksum_status() {
    // The benchmark's RX path really stores frames: length with FCS, DD|EOP, and the
    // IP and TCP checksums verified good (IPCS|TCPCS, no errors).
    for (len, bufs) in [(1514usize, 1usize), (9000, 3)] {
        let mut rig = E1000Rig::new(Variant::E82540EM, Dir::Rx, Load::Frame(len), 1);
        assert_eq!(rig.run_batch(), 1);
        let (last_len, status, errors) = rig.last_rx_status();
        let bufsize = if bufs == 1 { 2048 } else { 4096 };
        assert_eq!(last_len as usize, len + 4 - (bufs - 1) * bufsize);
        assert_eq!(status, 0x01 | 0x02 | 0x20 | 0x40, "DD|EOP|TCPCS|IPCS");
        assert_eq!(errors, 0);
    }
}

#[test]
fn e1000_tso_allocates_nothing_and_cuts_46_segments() {
    let mut rig = E1000Rig::new(Variant::E82540EM, Dir::Tx, Load::Tso(65536), 1);
    assert_steady_state_allocation_free("e1000 TSO", &mut rig, 1);
    // 65482 bytes of payload at MSS 1448: 45 full segments and one of 322 bytes.
    let sent = rig.device().backend().counters().sent_frames;
    assert_eq!(sent, 42 * 46);
}

#[test]
fn rtl8139_both_modes_allocate_nothing() {
    let cases: &[(Mode, Dir, usize, u32)] = &[
        (Mode::Normal, Dir::Tx, 64, 4),
        (Mode::Normal, Dir::Tx, 1514, 1),
        (Mode::Normal, Dir::Rx, 64, 32),
        (Mode::Normal, Dir::Rx, 1514, 16),
        (Mode::CPlus, Dir::Tx, 64, 32),
        (Mode::CPlus, Dir::Tx, 1514, 1),
        (Mode::CPlus, Dir::Rx, 64, 32),
        (Mode::CPlus, Dir::Rx, 1514, 1),
    ];
    for &(mode, dir, len, batch) in cases {
        let mut rig = Rtl8139Rig::new(mode, dir, len, batch);
        let what = format!("rtl8139 {mode:?} {dir:?} {len} b{batch}");
        assert_steady_state_allocation_free(&what, &mut rig, batch);
    }
}

#[test]
fn rtl8139_cplus_tso_allocates_nothing() {
    let mut rig = Rtl8139Rig::new(Mode::CPlusTso, Dir::Tx, 65536, 1);
    assert_steady_state_allocation_free("C+ TSO", &mut rig, 1);
    assert_eq!(rig.device().backend().counters().sent_frames, 42 * 46);
}

#[test]
fn ne2000_tx_and_rx_allocate_nothing() {
    for (dir, len, batch) in [
        (Dir::Tx, 64, 1),
        (Dir::Tx, 1514, 1),
        (Dir::Rx, 64, 32),
        (Dir::Rx, 1514, 8),
    ] {
        let mut rig = Ne2000Rig::new(dir, len, batch);
        let what = format!("ne2000 {dir:?} {len} b{batch}");
        assert_steady_state_allocation_free(&what, &mut rig, batch);
        if dir == Dir::Rx {
            assert_eq!(
                rig.received_ok(),
                42 * batch as u64,
                "{what}: frames read back"
            );
        }
    }
}
