//! Regression tests for the e1000 CVEs of other implementations, and a property test:
//! any register/descriptor/frame sequence never panics, keeps the INTx line equal to
//! the cause-and-mask rule, and does bounded work per operation.

mod e1000_support;

use std::sync::Arc;

use e1000_support::*;
use proptest::prelude::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::RecordingBackend;
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::{Variant, E1000};
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice, RxOutcome};

#[test]
fn cve_2012_6075_oversized_frames_never_overrun_buffers() {
    let mut r = Rig::up();
    // 256-byte buffers packed back to back; a too-long frame must not be stored, and a
    // long one (LPE) must be spread over descriptors without crossing buffer ends.
    for i in 0..64u64 {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&(RX_BUF + i * 256).to_le_bytes());
        r.write_mem(RX_RING + i * 16, &d);
    }
    r.write_mem(RX_BUF, &vec![0xee; 64 * 256 + 256]);
    r.w(RDBAL, RX_RING as u32);
    r.w(RDLEN, 64 * 16);
    r.w(RDH, 0);
    r.w(RDT, 63);
    r.w(RCTL, RCTL_EN | 3 << 16);
    let big = eth(MAC, 0x0800, &vec![0x11; 9000]);
    assert_eq!(r.dev.receive(&big), RxOutcome::Dropped);
    assert_eq!(r.read_mem(RX_BUF, 1)[0], 0xee, "nothing stored");
    r.w(RCTL, RCTL_EN | 3 << 16 | 1 << 5);
    let f = eth(MAC, 0x0800, &vec![0x11; 9000]);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    // 9014 bytes + FCS = 9018 over 36 buffers of 256; the last holds 58 bytes.
    assert_eq!(r.r(RDH), 36);
    assert_eq!(r.rx_status(35).0, 58);
    assert_eq!(r.read_mem(RX_BUF + 35 * 256 + 58, 1)[0], 0xee);
}

#[test]
fn cve_2012_6075_long_frame_fills_exactly_its_buffers() {
    let mut r = Rig::up();
    r.write_mem(RX_BUF, &vec![0xee; 0x4000 * 4]);
    r.setup_rx(8, 3 << 16 | 1 << 5);
    let f = eth(MAC, 0x0800, &vec![0x11; 1000]);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    for i in 0..4u64 {
        let after = r.read_mem(RX_BUF + i * 0x4000 + 256, 1)[0];
        assert_eq!(after, 0xee, "byte past buffer {i} untouched");
    }
}

#[test]
fn cve_2015_6815_tso_with_zero_mss_and_header_terminates() {
    let mut r = Rig::up();
    r.setup_tx(8);
    // Context: TSE, hdrlen 0, mss 0.
    r.tx_desc(0, 0, 1000 | (0x04 | 0x20) << 24, 0);
    r.write_mem(TX_BUF, &[0x55; 2000]);
    r.tx_desc(
        1,
        TX_BUF,
        2000 | 1 << 20 | (0x01 | 0x04 | 0x20) << 24,
        0x300,
    );
    let before = r.dev.work_done();
    r.w(TDT, 2);
    assert!(r.dev.work_done() - before < 100);
    assert_eq!(r.net.sent_count(), 0, "the malformed TSO packet is dropped");
    assert_eq!(r.r(TDH), 2);
    assert_eq!(r.r(0x40fc), 1, "TSCTFC");
}

#[test]
fn cve_2016_1981_heads_beyond_the_ring_do_not_loop() {
    let mut r = Rig::up();
    r.setup_tx(8);
    r.w(TDH, 100);
    r.w(TDT, 3);
    let before = r.dev.work_done();
    r.w(TDT, 4);
    assert_eq!(r.dev.work_done(), before);
    assert_eq!(r.net.sent_count(), 0);
    r.setup_rx(8, 0);
    r.w(RDH, 50);
    assert!(!r.dev.can_receive());
    assert_eq!(
        r.dev.receive(&eth(MAC, 0x0800, &[0; 60])),
        RxOutcome::NoBuffer
    );
    assert_eq!(r.dev.work_done(), before);
}

#[test]
fn cve_2021_20257_data_descriptor_after_legacy_is_bounded() {
    let mut r = Rig::up();
    r.setup_tx(8);
    r.tx_desc(0, 0, (0x04 | 0x20) << 24 | 1000, 14 << 24);
    // Legacy without EOP, then a TSO data descriptor claiming 1 MiB outside RAM.
    r.tx_legacy(1, &[0xab; 30], 0);
    r.tx_desc(
        2,
        RAM - 10,
        0xf_ffff | 1 << 20 | (0x01 | 0x04 | 0x20) << 24,
        0,
    );
    let before = r.dev.work_done();
    r.w(TDT, 3);
    assert!(r.dev.work_done() - before < 100);
    assert_eq!(r.r(TDH), 3);
    // The transmitter is usable afterwards.
    r.tx_legacy(3, &eth([0xff; 6], 0x0800, &[0; 50]), 0x01);
    r.w(TDT, 4);
    assert_eq!(r.net.take_sent().len(), 1);
}

#[test]
fn cve_2020_28916_null_rx_buffer_address_is_skipped() {
    let mut r = Rig::up();
    r.setup_rx(8, 0);
    for i in 0..8u64 {
        r.write_mem(RX_RING + i * 16, &[0; 16]);
    }
    r.write_mem(0, &[0x77; 64]);
    let before = r.dev.work_done();
    assert_eq!(
        r.dev.receive(&eth(MAC, 0x0800, &[0; 100])),
        RxOutcome::Accepted
    );
    assert!(r.dev.work_done() - before < 10);
    assert_eq!(
        r.read_mem(0, 64),
        vec![0x77; 64],
        "nothing written at address 0"
    );
    assert_eq!(
        r.rx_status(0).1 & 3,
        3,
        "the descriptor is consumed and written back"
    );
    assert_eq!(r.r(RDH), 1);
}

#[test]
fn cve_2021_3416_loopback_into_the_tx_ring_does_not_recurse() {
    let mut r = Rig::up();
    r.setup_tx(8);
    // RX ring and buffers overlap the TX ring: received data rewrites TX descriptors.
    for i in 0..8u64 {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&TX_RING.to_le_bytes());
        r.write_mem(RX_RING + i * 16, &d);
    }
    r.w(RDBAL, RX_RING as u32);
    r.w(RDLEN, 8 * 16);
    r.w(RDH, 0);
    r.w(RDT, 7);
    r.w(RCTL, RCTL_EN | RCTL_BAM | 1 << 6);
    // A frame whose bytes, stored over the TX ring, look like valid EOP descriptors.
    let mut f = Vec::new();
    for _ in 0..8 {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&TX_BUF.to_le_bytes());
        d[8..12].copy_from_slice(&(128u32 | 0x0b << 24).to_le_bytes());
        f.extend_from_slice(&d);
    }
    f[..6].copy_from_slice(&[0xff; 6]);
    r.write_mem(TX_BUF, &f);
    for i in 0..7 {
        r.tx_desc(i, TX_BUF, 128 | 0x0b << 24, 0);
    }
    let before = r.dev.work_done();
    r.w(TDT, 7);
    assert_eq!(r.r(TDH), 7, "each descriptor visited once");
    assert!(r.dev.work_done() - before <= 7 + 7 * 4 + 7 * 4);
    assert_eq!(r.net.sent_count(), 0);
}

// ---------------------------------------------------------------------------------

/// Offsets a fuzzer should hit often: the ring, control and interrupt registers.
const HOT: &[u32] = &[
    0x0000, 0x0010, 0x0014, 0x0020, 0x00c0, 0x00c4, 0x00c8, 0x00d0, 0x00d8, 0x0100, 0x0400, 0x2800,
    0x2808, 0x2810, 0x2818, 0x2820, 0x282c, 0x3800, 0x3808, 0x3810, 0x3818, 0x3820, 0x3828, 0x382c,
    0x5000, 0x5400, 0x5404, 0x5600,
];

#[derive(Clone, Debug)]
enum Op {
    Write(u32, u32),
    Read(u32),
    Io(bool, u32),
    Mem(u16, Vec<u8>),
    Rx(Vec<u8>),
    Tick(u32),
    Link(bool),
    Config(u8, u16),
    Reset,
    /// A TX ring at 0x1000 of `descs` (buffer, lower, upper), enabled and kicked.
    Xmit(Vec<(u16, u32, u32)>),
    /// An RX ring at 0x2000 of buffers, enabled with `rctl`.
    RxRing(Vec<u16>, u32),
}

/// TX descriptor lower dwords: legacy, context and data descriptors with random fields.
fn tx_lower() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (0u32..3000, any::<u8>()).prop_map(|(len, cmd)| len | ((cmd & !0x20) as u32) << 24),
        (0u32..70000, any::<u8>())
            .prop_map(|(len, cmd)| len | 1 << 20 | ((cmd | 0x20) as u32) << 24),
        (0u32..70000, any::<u8>()).prop_map(|(len, cmd)| len | ((cmd | 0x24) as u32) << 24),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let off = prop_oneof![
        3 => proptest::sample::select(HOT).prop_map(|o| o),
        1 => (0u32..0x8000).prop_map(|o| o * 4),
    ];
    prop_oneof![
        6 => (off.clone(), any::<u32>()).prop_map(|(o, v)| Op::Write(o, v)),
        2 => off.prop_map(Op::Read),
        1 => (any::<bool>(), any::<u32>()).prop_map(|(a, v)| Op::Io(a, v)),
        3 => (any::<u16>(), proptest::collection::vec(any::<u8>(), 1..64)).prop_map(|(a, d)| Op::Mem(a, d)),
        2 => proptest::collection::vec(any::<u8>(), 0..2000).prop_map(Op::Rx),
        2 => any::<u32>().prop_map(Op::Tick),
        1 => any::<bool>().prop_map(Op::Link),
        1 => (0u8..64, any::<u16>()).prop_map(|(o, v)| Op::Config(o * 4, v)),
        1 => Just(Op::Reset),
        3 => proptest::collection::vec(
            (any::<u16>(), tx_lower(), any::<u32>()),
            1..24
        ).prop_map(Op::Xmit),
        2 => (proptest::collection::vec(any::<u16>(), 8..16), any::<u32>()).prop_map(|(b, r)| Op::RxRing(b, r)),
    ]
}

/// Work bound per operation: every descriptor of the largest ring once, plus every
/// byte of the largest packet per descriptor, in work units.
const WORK_BOUND: u64 = 65_536 * (2 + 69_632 / 64);

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants(variant in 0usize..3, ops in proptest::collection::vec(op(), 1..60)) {
        let variant = [Variant::E82540EM, Variant::E82544GC, Variant::E82545EM][variant];
        let mem: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap();
        let irq = IrqRecorder::new();
        let clock = ManualClock::new();
        let (backend, net) = RecordingBackend::new();
        let mut dev = E1000::new(variant, NicConfig {
            mac: MacAddr(MAC),
            backend: Box::new(backend),
            irq: Box::new(irq.clone()),
            clock: Arc::new(clock.clone()),
            memory: mem.clone(),
        });
        dev.config_write(4, 2, 7);
        for op in ops {
            let before = dev.work_done();
            match op {
                Op::Write(o, v) => dev.bar_write(0, o as u64, 4, v),
                Op::Read(o) => { dev.bar_read(0, o as u64, 4); }
                Op::Io(a, v) => dev.bar_write(1, if a { 4 } else { 0 }, 4, v),
                Op::Mem(a, d) => { let _ = mem.write_slice(&d, GuestAddress(a as u64)); }
                Op::Rx(f) => { dev.receive(&f); }
                Op::Tick(ns) => { clock.advance(ns as u64 * 64); dev.run_timers(); }
                Op::Link(up) => dev.set_link(up),
                Op::Config(o, v) => dev.config_write(o as u16, 2, v as u32),
                Op::Reset => dev.reset(),
                Op::Xmit(descs) => {
                    for (i, (buf, lower, upper)) in descs.iter().enumerate() {
                        let mut d = [0u8; 16];
                        d[0..8].copy_from_slice(&(*buf as u64).to_le_bytes());
                        d[8..12].copy_from_slice(&lower.to_le_bytes());
                        d[12..16].copy_from_slice(&upper.to_le_bytes());
                        let _ = mem.write_slice(&d, GuestAddress(0x1000 + 16 * i as u64));
                    }
                    let n = descs.len().div_ceil(8) as u32 * 8;
                    for (o, v) in [(0x3800, 0x1000), (0x3804, 0), (0x3808, n * 16), (0x0400, 0x0a)] {
                        dev.bar_write(0, o, 4, v);
                    }
                    dev.bar_write(0, 0x3818, 4, descs.len() as u32 % n);
                }
                Op::RxRing(bufs, rctl) => {
                    for (i, b) in bufs.iter().enumerate() {
                        let mut d = [0u8; 16];
                        d[0..8].copy_from_slice(&(*b as u64).to_le_bytes());
                        let _ = mem.write_slice(&d, GuestAddress(0x2000 + 16 * i as u64));
                    }
                    let n = bufs.len() as u32 / 8 * 8;
                    for (o, v) in [(0x2800, 0x2000), (0x2804, 0), (0x2808, n * 16), (0x2810, 0), (0x2818, n - 1), (0x0100, rctl | 2)] {
                        dev.bar_write(0, o, 4, v);
                    }
                }
            }
            prop_assert!(dev.work_done() - before <= WORK_BOUND);
            let st = dev.state();
            let pending = st.regs[0xc0 / 4] & st.regs[0xd0 / 4] != 0;
            let disabled = dev.config_read(4, 2) & 0x400 != 0;
            if irq.level() {
                prop_assert!(pending && !disabled, "line up without an enabled cause");
            } else if st.regs[0xc4 / 4] == 0 && !disabled {
                prop_assert!(!pending, "enabled cause without the line");
            }
            for f in net.take_sent() {
                prop_assert!(f.len() <= 69_632 + 4);
            }
        }
    }
}
