//! The data path allocates nothing per frame: TX (C mode, C+ with VLAN and TSO) and RX
//! (C mode ring, C+ descriptors) reuse device-owned buffers. Counted with a per-thread
//! allocation counter around steady-state traffic.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_devices::{MacAddr, ManualClock, NicConfig, NicDevice, NoIrq, RxOutcome};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
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

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

fn device(rev: &str) -> (Box<dyn NicDevice<GuestMemoryMmap>>, GuestMemoryMmap) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let cfg = NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(NullBackend::new()),
        irq: Box::new(NoIrq),
        clock: Arc::new(ManualClock::new()),
        memory: mem.clone(),
    };
    let props = vec![("revision".to_string(), rev.to_string())];
    let mut dev = vm_nic_devices::models::create("rtl8139", &props, cfg).unwrap();
    dev.config_write(4, 2, 7);
    (dev, mem)
}

fn tcp_frame(payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 54 + payload];
    f[..6].copy_from_slice(&MAC);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    f[23] = 6;
    f[46] = 0x50;
    f
}

#[test]
fn normal_mode_traffic_does_not_allocate() {
    let (mut dev, mem) = device("0x10");
    dev.bar_write(0, 0x30, 4, 0x10000);
    dev.bar_write(0, 0x37, 1, 0x0C);
    dev.bar_write(0, 0x44, 4, (1 << 12) | 0x8A);
    dev.bar_write(0, 0x20, 4, 0x4_0000);
    let f = tcp_frame(1400);
    mem.write_slice(&f, GuestAddress(0x4_0000)).unwrap();
    let before = allocs();
    let mut capr = 0u16;
    for _ in 0..200 {
        for d in 0..4u64 {
            dev.bar_write(0, 0x20 + 4 * d, 4, 0x4_0000);
            dev.bar_write(0, 0x10 + 4 * d, 4, f.len() as u32);
        }
        assert_eq!(dev.receive(&f), RxOutcome::Accepted);
        capr = capr.wrapping_add(((f.len() + 8 + 3) & !3) as u16);
        dev.bar_write(0, 0x38, 2, capr.wrapping_sub(16) as u32);
    }
    assert_eq!(allocs() - before, 0);
    assert_eq!(dev.backend().counters().sent_frames, 800);
}

#[test]
fn cplus_traffic_with_vlan_and_tso_does_not_allocate() {
    let (mut dev, mem) = device("0x20");
    dev.bar_write(0, 0xE0, 2, 0x63);
    dev.bar_write(0, 0x20, 4, 0x1000);
    dev.bar_write(0, 0xE4, 4, 0x2000);
    dev.bar_write(0, 0x37, 1, 0x0C);
    dev.bar_write(0, 0x44, 4, 0x0A);
    let f = tcp_frame(6000);
    mem.write_slice(&f, GuestAddress(0x4_0000)).unwrap();
    let put = |at: u64, o1: u32, o2: u32, a: u64| {
        let mut d = [0u8; 16];
        d[0..4].copy_from_slice(&o1.to_le_bytes());
        d[4..8].copy_from_slice(&o2.to_le_bytes());
        d[8..16].copy_from_slice(&a.to_le_bytes());
        mem.write_slice(&d, GuestAddress(at)).unwrap();
    };
    let before = allocs();
    for _ in 0..100 {
        let tso = (1 << 31) | (7 << 28) | (1 << 27) | (1400 << 16) | f.len() as u32;
        put(0x1000, tso, (1 << 17) | 0x0100, 0x4_0000);
        dev.bar_write(0, 0xD9, 1, 0x40);
        for i in 0..4u64 {
            let eor = if i == 3 { 1 << 30 } else { 0 };
            put(
                0x2000 + 16 * i,
                (1 << 31) | eor | 2048,
                0,
                0x8_0000 + i * 0x800,
            );
        }
        assert_eq!(dev.receive(&f[..1514]), RxOutcome::Accepted);
    }
    assert_eq!(allocs() - before, 0);
    assert_eq!(
        dev.backend().counters().sent_frames,
        100 * 5,
        "5 TSO segments per frame"
    );
}
