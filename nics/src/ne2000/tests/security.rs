//! Hostile guest input: the QEMU NE2000 CVEs as register sequences, a property test over
//! random register writes, and save/restore in the middle of an operation.

use proptest::prelude::*;

use super::*;

/// Programs the ring registers directly (as a malicious driver would) and starts.
fn ring(b: &mut Bench, pstart: u8, pstop: u8, bnry: u8, curr: u8) {
    let d = &mut b.drv;
    d.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    d.outb(EN0_STARTPG, pstart);
    d.outb(EN0_STOPPG, pstop);
    d.outb(EN0_BOUNDARY, bnry);
    d.write_paged(E8390_PAGE1, EN1_CURPAG, curr);
    d.outb(EN0_RXCR, 0x1f); // accept everything, runts and errors
    d.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
}

/// Offers `f` like an event loop that honours can_receive, at most `tries` times.
fn offer(b: &mut Bench, f: &[u8], tries: usize) -> Vec<RxOutcome> {
    let mut out = Vec::new();
    for _ in 0..tries {
        if !b.dev().can_receive() {
            break;
        }
        let r = b.rx(f);
        out.push(r);
        if r != RxOutcome::NoBuffer {
            break;
        }
    }
    out
}

#[test]
fn cve_2015_5278_curr_beyond_pstop_is_bounded() {
    // QEMU looped forever when the ring index started above PSTOP.
    let mut b = running();
    ring(&mut b, 0x40, 0x50, 0x45, 0x70);
    let before = b.dev().state().mem;
    let w0 = b.dev().work_done();
    let out = offer(&mut b, &frame(MAC, 1514, 1), 5);
    assert_eq!(out, vec![RxOutcome::Dropped]);
    assert_eq!(b.dev().state().mem, before, "nothing written");
    assert!(b.dev().work_done() - w0 < 100);
    assert_eq!(b.drv.inb(EN0_COUNTER2), 1, "counted as missed");
    b.assert_irq_rule();
}

#[test]
fn cve_2015_5279_curr_beyond_memory_stays_in_memory() {
    // QEMU wrote past its buffer when CURR pointed beyond packet memory. Here the ring
    // itself spans absent memory: writes there vanish, the rest wraps into RAM.
    let mut b = running();
    ring(&mut b, 0x40, 0xff, 0x80, 0xfe);
    let f = frame(MAC, 1000, 2);
    assert_eq!(b.rx(&f), RxOutcome::Accepted);
    let st = b.dev().state();
    assert_eq!(st.mem.len(), 16 * 1024);
    assert_eq!(
        st.curr, 0x43,
        "0xfe + 4 pages wrapped at PSTOP 0xff to PSTART 0x40"
    );
    // The tail after the wrap is in RAM at page 0x40: header (4) + 508 bytes went to the
    // absent page 0xfe... 256 bytes there, then pages 0x40.. hold the rest.
    let off_in_frame = 256 - 4;
    assert_eq!(&st.mem[..256], &f[off_in_frame..off_in_frame + 256]);
    // Remote DMA reaching for absent memory reads 0xff and never faults.
    b.drv.outb(EN0_DCFG, 0x48);
    assert_eq!(b.drv.block_input(4, 0xfe00), vec![0xff; 4]);
}

/// Card addresses of the pages a ring (PSTART..PSTOP) may write.
fn ring_pages(pstart: u8, pstop: u8) -> std::ops::Range<usize> {
    (pstart as usize) << 8..(pstop as usize) << 8
}

#[test]
fn cve_2016_2841_crafted_ring_registers() {
    // PSTART >= PSTOP, BNRY/CURR outside the ring, PSTOP beyond memory, one-page rings.
    let cases = [
        (0x80, 0x40, 0x50, 0x50),
        (0x40, 0x40, 0x40, 0x40),
        (0x4c, 0x80, 0x20, 0x4c),
        (0x4c, 0x80, 0x7f, 0xff),
        (0x00, 0x01, 0x00, 0x00),
        (0xff, 0x00, 0xff, 0xff),
        (0x7f, 0x80, 0x7f, 0x7f),
        (0x40, 0x42, 0x41, 0x40),
        (0x7e, 0xff, 0x10, 0xfe),
    ];
    for (pstart, pstop, bnry, curr) in cases {
        let mut b = running();
        ring(&mut b, pstart, pstop, bnry, curr);
        let before = b.dev().state().mem;
        let w0 = b.dev().work_done();
        let mut outcomes = Vec::new();
        for i in 0..4 {
            outcomes.extend(offer(&mut b, &frame([0xff; 6], 600, i), 10));
        }
        assert!(outcomes.len() <= 8, "no spin: {outcomes:?}");
        assert!(b.dev().work_done() - w0 < 400, "bounded work");
        // Every changed byte of RAM lies inside the ring's pages.
        let after = b.dev().state().mem;
        let allowed = ring_pages(pstart, pstop);
        for (i, (x, y)) in before.iter().zip(&after).enumerate() {
            let addr = 0x4000 + i;
            assert!(
                x == y || allowed.contains(&addr),
                "{pstart:#x}/{pstop:#x}: wrote {addr:#x}"
            );
        }
        let st = b.dev().state();
        if pstart >= pstop || !(pstart..pstop).contains(&curr) {
            assert!(
                !outcomes.contains(&RxOutcome::Accepted),
                "misconfigured ring stored a frame"
            );
        } else {
            assert!((pstart..pstop).contains(&st.curr), "CURR stays in the ring");
        }
        // Remote DMA with the same crafted pointers stays bounded by RBCR.
        b.drv.outb(EN0_DCFG, 0x49);
        let got = b.drv.block_input(0x200, (bnry as u16) << 8);
        assert_eq!(got.len(), 0x200);
        b.assert_irq_rule();
    }
}

#[test]
fn cve_2018_10839_receive_sizes() {
    // QEMU mis-sized large frames against the ring. Every size must be refused or stored
    // within the ring.
    let mut b = running();
    let ring_bytes = (0x80 - 0x4c) * 256;
    for len in [
        0usize,
        1,
        13,
        14,
        59,
        1514,
        1519,
        4096,
        ring_bytes - 8,
        ring_bytes,
        65535,
        70000,
    ] {
        let f = frame(MAC, len, 4);
        let w0 = b.dev().work_done();
        let r = b.rx(&f);
        assert!(
            b.dev().work_done() - w0 <= 256 + 65536 / 64,
            "bounded work for {len}"
        );
        match r {
            RxOutcome::Accepted => {
                assert!(len + 8 <= ring_bytes);
                let got = b.drv.receive();
                assert_eq!(got.len(), 1);
                assert_eq!(
                    &got[0].1[..len.min(got[0].1.len())],
                    &f[..len.min(got[0].1.len())]
                );
            }
            RxOutcome::NoBuffer => {
                b.drv.rx_overrun();
            }
            RxOutcome::Dropped | RxOutcome::Filtered => {}
        }
        let st = b.dev().state();
        assert!((0x4c..0x80).contains(&st.curr), "CURR stays in the ring");
    }
    // A frame bigger than the whole ring can never fit: dropped, not left waiting.
    assert_eq!(b.rx(&frame(MAC, 20000, 5)), RxOutcome::Dropped);
}

#[test]
fn remote_dma_count_of_64k_is_bounded() {
    let mut b = running();
    b.drv.outb(EN0_DCFG, 0x48);
    b.drv.outb(EN0_RCNTLO, 0xff);
    b.drv.outb(EN0_RCNTHI, 0xff);
    b.drv.outb(EN0_RSARLO, 0xff);
    b.drv.outb(EN0_RSARHI, 0xff);
    b.drv.outb(0, E8390_RWRITE | E8390_START);
    for i in 0..0x1_0000u32 {
        b.drv.outb(NE_DATAPORT, i as u8);
    }
    assert_eq!(b.drv.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    // The address wrapped around 64 KiB and through PSTOP->PSTART: RAM got writes only
    // inside 0x4000..0x8000 and nothing panicked.
    assert_eq!(b.dev().state().mem.len(), 16 * 1024);
}

#[test]
fn state_round_trips_in_the_middle_of_a_remote_read() {
    let mut b = running();
    let f1 = frame(MAC, 500, 1);
    let f2 = frame([0xff; 6], 90, 2);
    b.rx(&f1);
    b.rx(&f2);
    b.drv.outb(EN0_IMR, ENISR_RX | ENISR_RDC);
    // Start reading the first packet, stop after 8 bytes.
    b.drv.outb(EN0_RCNTLO, (508 & 0xff) as u8);
    b.drv.outb(EN0_RCNTHI, (508 >> 8) as u8);
    b.drv.outb(EN0_RSARLO, 0);
    b.drv.outb(EN0_RSARHI, 0x4c);
    b.drv.outb(0, E8390_RREAD | E8390_START);
    let head = [b.drv.inl(NE_DATAPORT), b.drv.inl(NE_DATAPORT)];
    let saved = b.dev().state();

    let (cfg, irq2, _net2) = config();
    let mut restored = Driver::new(Ne2000::from_state(&saved, Ne2000Bus::Pci, cfg).unwrap());
    assert_eq!(
        restored.dev.state(),
        saved,
        "state() after from_state() is identical"
    );
    assert!(
        irq2.level(),
        "the line is driven from the restored ISR & IMR"
    );
    // Both continue identically.
    let rest_a: Vec<u32> = (0..125).map(|_| b.drv.inl(NE_DATAPORT)).collect();
    let rest_b: Vec<u32> = (0..125).map(|_| restored.inl(NE_DATAPORT)).collect();
    assert_eq!(rest_a, rest_b);
    assert_eq!(restored.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    let bytes: Vec<u8> = head
        .iter()
        .chain(rest_b.iter())
        .flat_map(|w| w.to_le_bytes())
        .collect();
    assert_eq!(&bytes[4..504], &f1[..]);
    // The restored device keeps receiving: the second packet is still in its ring.
    restored.current_page = b.drv.current_page;
    let got = restored.receive();
    assert_eq!(got.len(), 2);
    assert_eq!(&got[1].1[..90], &f2[..]);
    assert_eq!(restored.dev.config_read(0, 4), 0x8029_10ec);
}

#[test]
fn from_state_rejects_inconsistent_state() {
    let b = running();
    let mut s = b.drv.dev.state();
    s.mem.truncate(100);
    let (cfg, _, _) = config();
    assert!(Ne2000::from_state(&s, Ne2000Bus::Pci, cfg).is_err());
    let s = b.drv.dev.state();
    let (cfg, _, _) = config();
    let isa_bus = Ne2000Bus::Isa {
        iobase: 0x300,
        irq: 9,
    };
    assert!(
        Ne2000::from_state(&s, isa_bus, cfg).is_err(),
        "PCI state on an ISA card"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Write { off: u8, size: u8, value: u32 },
    Read { off: u8, size: u8 },
    Frame { len: u16, dst: u8 },
    Config { value: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![Just(1u8), Just(2u8), Just(4u8)];
    prop_oneof![
        6 => (0u8..0x22, size.clone(), any::<u32>()).prop_map(|(off, size, value)| Op::Write { off, size, value }),
        3 => (0u8..0x22, size).prop_map(|(off, size)| Op::Read { off, size }),
        1 => (0u16..2000, 0u8..3).prop_map(|(len, dst)| Op::Frame { len, dst }),
        1 => any::<u16>().prop_map(|value| Op::Config { value }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_register_writes_never_panic_and_keep_the_irq_rule(
        isa_card in any::<bool>(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut b = if isa_card { isa() } else { running() };
        for op in ops {
            let w0 = b.dev().work_done();
            match op {
                Op::Write { off, size, value } => b.dev().bar_write(0, off as u64, size, value),
                Op::Read { off, size } => { b.dev().bar_read(0, off as u64, size); }
                Op::Frame { len, dst } => {
                    let to = [MAC, [0xff; 6], [0x01, 0, 0x5e, 0, 0, 1]][dst as usize];
                    if b.dev().can_receive() || len % 2 == 0 {
                        b.rx(&frame(to, len as usize, len as u8));
                    }
                }
                Op::Config { value } => b.dev().config_write(0x04, 2, value as u32),
            }
            prop_assert!(b.dev().work_done() - w0 <= 64, "work per op bounded");
            let st = b.dev().state();
            let cause = st.isr.bits() & st.imr.bits() & 0x7f != 0;
            let disabled = !isa_card && b.dev().config_read(0x04, 2) & 0x400 != 0;
            prop_assert_eq!(b.irq.level(), cause && !disabled);
            prop_assert_eq!(st.mem.len(), 16 * 1024);
        }
    }
}
