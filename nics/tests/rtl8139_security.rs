//! Regression tests for the QEMU rtl8139 CVEs, MSS 0, and a property test: random
//! register/descriptor/frame sequences never panic, keep INTx == (ISR & IMR != 0) and
//! finish every operation within a fixed work budget.

mod rtl8139_support;

use proptest::prelude::*;
use rtl8139_support::*;
use vm_nic_devices::RxOutcome;

const RBSTART: u64 = 0x10000;

fn tx_desc(r: &Rig, i: u64, opts1: u32, addr: u64) {
    put_desc(r, TX_RING, i, opts1, 0, addr);
}

/// CVE-2015-5165: C+ checksum offload and TSO trusted the guest's IHL and IP total
/// length and sent host heap memory. Here no byte the guest did not post may leave.
#[test]
fn cve_2015_5165_offload_trusts_no_guest_length() {
    let cases: [(u8, u16); 4] = [(0x4F, 40), (0x45, 0xFFFF), (0x41, 40), (0x45, 10)];
    for (vihl, total) in cases {
        let mut r = Rig::cplus();
        cplus_on(&mut r, 0x0063, 0x0F);
        let mut f = tcp_frame(6);
        f[14] = vihl;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        r.put(0x4_0000, &f);
        // Checksum offload: the frame goes out exactly as posted.
        tx_desc(
            &r,
            0,
            OWN | FS | LS | (1 << 18) | (1 << 16) | f.len() as u32,
            0x4_0000,
        );
        // Large send of the same frame: refused, error reported.
        tx_desc(
            &r,
            1,
            OWN | FS | LS | (1 << 27) | (100 << 16) | f.len() as u32,
            0x4_0000,
        );
        tx_desc(&r, 2, 1 << 30, 0);
        r.w8(0xD9, 0x40);
        let sent = r.net.take_sent();
        assert_eq!(sent, vec![f.clone()], "IHL/len {vihl:#x}/{total}");
        assert_ne!(
            r.get32(TX_RING + 16) & (1 << 23),
            0,
            "TSO refused with TxErr"
        );
        assert_ne!(r.r16(0x3E) & 0x08, 0, "TER");
    }
    // A TCP data offset beyond the IP payload is refused too.
    let mut r = Rig::cplus();
    cplus_on(&mut r, 0x0063, 0x0F);
    let mut f = tcp_frame(4);
    f[46] = 0xF0;
    r.put(0x4_0000, &f);
    tx_desc(
        &r,
        0,
        OWN | FS | LS | (1 << 27) | (100 << 16) | f.len() as u32,
        0x4_0000,
    );
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.sent_count(), 0);
}

/// CVE-2016-8910: the C+ transmit ring walk had no bound. A ring of owned descriptors
/// without EOR spanning all of RAM is visited at most 64 descriptors per poll.
#[test]
fn cve_2016_8910_tx_ring_walk_is_bounded() {
    let mut r = Rig::cplus();
    cplus_on(&mut r, 0x0063, 0x0F);
    r.put(0x8_0000, &frame([0xFF; 6], 60));
    for i in 0..4096 {
        tx_desc(&r, i, OWN | FS | LS | 60, 0x8_0000);
    }
    let before = r.dev.work_done();
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.take_sent().len(), 64, "one ring's worth per poll");
    assert!(
        r.dev.work_done() - before <= 2 * 64,
        "{}",
        r.dev.work_done() - before
    );
    // Owned descriptors with no LS at all: nothing is sent and the walk still stops.
    let mut r = Rig::cplus();
    cplus_on(&mut r, 0x0063, 0x0F);
    for i in 0..4096 {
        tx_desc(&r, i, OWN | 60, 0x8_0000);
    }
    let before = r.dev.work_done();
    r.w8(0xD9, 0xC0);
    assert_eq!(r.net.sent_count(), 0);
    assert!(r.dev.work_done() - before <= 2 * 64);
}

/// CVE-2018-17958: the receive size was truncated. Frames whose length cannot be
/// represented are dropped without touching guest memory outside the ring.
#[test]
fn cve_2018_17958_huge_frames_do_not_truncate() {
    let mut r = Rig::c();
    r.w32(0x30, RBSTART as u32);
    r.w8(0x37, 0x0C);
    r.w32(0x44, 0x8A); // 8K ring, WRAP
    let canary = vec![0xA5u8; 0x10000];
    r.put(RBSTART, &canary);
    r.put(RBSTART + 0x10000, &canary);
    for len in [65_532usize, 65_536, 69_632] {
        assert_eq!(r.dev.receive(&frame(MAC, len)), RxOutcome::Dropped, "{len}");
    }
    assert_eq!(r.get(RBSTART, 0x10000), canary);
    assert_eq!(r.get(RBSTART + 0x10000, 0x10000), canary);
    assert_eq!(r.r16(0x3A), 0);
    assert_eq!(r.r32(0x4C), 3, "counted as missed");
    // C+: a frame longer than the 13-bit length field is dropped, not wrapped.
    let mut p = Rig::cplus();
    cplus_on(&mut p, 0x0063, 0x0F);
    for i in 0..64u64 {
        put_desc(&p, RX_RING, i, OWN | 0x1FFF, 0, 0x2_0000 + i * 0x2000);
    }
    assert_eq!(p.dev.receive(&frame(MAC, 8190)), RxOutcome::Dropped);
    assert_eq!(p.get32(RX_RING) & OWN, OWN, "no descriptor consumed");
    assert_eq!(p.dev.receive(&frame(MAC, 8000)), RxOutcome::Accepted);
}

/// Large send with MSS 0 (the e1000 CVE-2015-6815 shape): refused at once.
#[test]
fn mss_zero_is_refused_without_looping() {
    let mut r = Rig::cplus();
    cplus_on(&mut r, 0x0063, 0x0F);
    let f = tcp_frame(3000);
    r.put(0x4_0000, &f);
    tx_desc(&r, 0, OWN | FS | LS | (1 << 27) | f.len() as u32, 0x4_0000);
    let before = r.dev.work_done();
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.sent_count(), 0);
    assert_eq!(r.get32(TX_RING) & (OWN | (1 << 23)), 1 << 23);
    assert!(r.dev.work_done() - before < 200);
}

#[derive(Clone, Debug)]
enum Op {
    Write(u8, u8, u32),
    Read(u8, u8),
    Command(u16),
    Mem(u32, Vec<u8>),
    Desc(u8, u8, u32, u32, u32),
    Rx(u16, u8),
    Advance(u32),
    Link(bool),
    Reset,
    Setup(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let width = prop_oneof![Just(1u8), Just(2), Just(4)];
    prop_oneof![
        6 => (any::<u8>(), width.clone(), any::<u32>()).prop_map(|(o, s, v)| Op::Write(o, s, v)),
        4 => (prop_oneof![Just(0xD9u8), Just(0x37), Just(0x3E), Just(0x38), Just(0x10), Just(0x14)],
              any::<u32>()).prop_map(|(o, v)| Op::Write(o, 1, v)),
        2 => (any::<u8>(), width).prop_map(|(o, s)| Op::Read(o, s)),
        1 => any::<u16>().prop_map(Op::Command),
        2 => (0u32..(RAM as u32), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(a, d)| Op::Mem(a, d)),
        6 => (0u8..3, 0u8..64, any::<u32>(), any::<u32>(), 0u32..(RAM as u32))
            .prop_map(|(q, i, o1, o2, a)| Op::Desc(q, i, o1 | OWN, o2, a)),
        4 => (0u16..9000, 0u8..4).prop_map(|(l, d)| Op::Rx(l, d)),
        2 => any::<u32>().prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Link),
        1 => Just(Op::Reset),
        2 => any::<bool>().prop_map(Op::Setup),
    ]
}

/// Work one operation may take: two full C+ rings of maximum-size frames.
const WORK_BUDGET: u64 = 2 * 64 * (1 + 65_536 / 64) + 1024;

fn run(rev: &str, ops: &[Op]) {
    let mut r = Rig::with_props(&[("revision", rev)]);
    for op in ops {
        let before = r.dev.work_done();
        match op {
            Op::Write(o, s, v) => r.dev.bar_write(0, *o as u64, *s, *v),
            Op::Read(o, s) => {
                r.dev.bar_read(1, *o as u64, *s);
            }
            Op::Command(c) => r.dev.config_write(0x04, 2, *c as u32),
            Op::Mem(a, d) => {
                let end = (*a as u64 + d.len() as u64).min(RAM);
                r.put(*a as u64, &d[..(end - *a as u64) as usize]);
            }
            Op::Desc(q, i, o1, o2, a) => {
                let ring = [TX_RING, HI_RING, RX_RING][*q as usize];
                put_desc(&r, ring, *i as u64, *o1, *o2, *a as u64);
            }
            Op::Rx(len, d) => {
                let dst = [MAC, [0xFF; 6], [0x01, 0, 0x5e, 0, 0, 1], [2, 0, 0, 0, 0, 7]];
                let f = frame(dst[*d as usize], (*len as usize).max(14));
                if r.dev.can_receive() || len % 2 == 0 {
                    r.dev.receive(&f);
                }
            }
            Op::Advance(ns) => {
                r.clock.advance(*ns as u64 * 64);
                if r.dev.next_deadline().is_some_and(|d| d <= r.clock_now()) {
                    r.dev.run_timers();
                }
            }
            Op::Link(up) => r.dev.set_link(*up),
            Op::Reset => r.dev.reset(),
            Op::Setup(cplus) => {
                r.w32(0x30, RBSTART as u32);
                r.w32(0x44, 0x8F);
                if *cplus {
                    cplus_on(&mut r, 0x0063, 0x0F);
                } else {
                    r.w8(0x37, 0x0C);
                    r.w16(0x3C, 0xFFFF);
                }
            }
        }
        let spent = r.dev.work_done() - before;
        assert!(spent <= WORK_BUDGET, "{op:?} took {spent} units of work");
        let isr = r.r16(0x3E);
        let imr = r.r16(0x3C);
        let disabled = r.dev.config_read(0x04, 2) & 0x400 != 0;
        assert_eq!(r.irq.level(), isr & imr != 0 && !disabled, "after {op:?}");
        for f in r.net.take_sent() {
            assert!(f.len() <= vm_nic_backends::MAX_FRAME_LEN);
        }
    }
}

trait ClockNow {
    fn clock_now(&self) -> u64;
}

impl ClockNow for Rig {
    fn clock_now(&self) -> u64 {
        use vm_nic_devices::Clock;
        self.clock.now_ns()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants_rtl8139c(ops in proptest::collection::vec(op(), 1..80)) {
        run("0x10", &ops);
    }

    #[test]
    fn random_sequences_keep_the_invariants_rtl8139cplus(ops in proptest::collection::vec(op(), 1..80)) {
        run("0x20", &ops);
    }
}
