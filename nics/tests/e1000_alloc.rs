//! The transmit and receive hot paths allocate nothing per frame (counted with a
//! counting global allocator; the null backend and interrupt line allocate nothing).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::{Variant, E1000};
use vm_nic_devices::{ManualClock, NicConfig, NicDevice, NoIrq, RxOutcome};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Only the test's own thread is counted: the test harness allocates on its threads.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_frame() {
    let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mem: GuestMemoryMmap =
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
    let clock = ManualClock::new();
    let mut d = E1000::new(
        Variant::E82540EM,
        NicConfig {
            mac: MacAddr(mac),
            backend: Box::new(NullBackend::new()),
            irq: Box::new(NoIrq),
            clock: Arc::new(clock.clone()),
            memory: mem.clone(),
        },
    );
    d.config_write(4, 2, 7);
    clock.advance(1_000_000_000);
    d.run_timers();
    // TX ring of 256 at 0x1000, one 1514-byte frame per descriptor, IC + VLAN-free.
    let mut frame = vec![0u8; 1514];
    frame[..6].copy_from_slice(&[0xff; 6]);
    for i in 0..256u64 {
        mem.write_slice(&frame, GuestAddress(0x10_0000 + i * 2048))
            .unwrap();
        let mut desc = [0u8; 16];
        desc[0..8].copy_from_slice(&(0x10_0000 + i * 2048).to_le_bytes());
        desc[8..12].copy_from_slice(&(1514u32 | 0x0b << 24).to_le_bytes());
        mem.write_slice(&desc, GuestAddress(0x1000 + i * 16))
            .unwrap();
    }
    for i in 0..256u64 {
        let mut desc = [0u8; 16];
        desc[0..8].copy_from_slice(&(0x20_0000 + i * 2048).to_le_bytes());
        mem.write_slice(&desc, GuestAddress(0x8000 + i * 16))
            .unwrap();
    }
    let w = |d: &mut E1000<GuestMemoryMmap>, o: u64, v: u32| d.bar_write(0, o, 4, v);
    w(&mut d, 0x3800, 0x1000);
    w(&mut d, 0x3808, 256 * 16);
    w(&mut d, 0x0400, 0x0a);
    w(&mut d, 0x2800, 0x8000);
    w(&mut d, 0x2808, 256 * 16);
    w(&mut d, 0x2818, 255);
    w(&mut d, 0x0100, 0x8002);
    w(&mut d, 0x00d0, 0x9f);
    // Warm up once, then count.
    w(&mut d, 0x3818, 1);
    assert_eq!(d.receive(&frame), RxOutcome::Accepted);
    let before = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    w(&mut d, 0x3818, 255);
    for _ in 0..200 {
        assert_eq!(d.receive(&frame), RxOutcome::Accepted);
    }
    let _ = d.bar_read(0, 0xc0, 4);
    COUNTING.with(|c| c.set(false));
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(d.backend().counters().sent_frames, 255);
    assert_eq!(after - before, 0, "allocations on the TX/RX hot paths");
}
