//! Normal (C) mode: TSD/TSAD transmit, the RX ring, CAPR/CBR, filters and overflow.

mod rtl8139_support;

use rtl8139_support::*;
use vm_nic_devices::RxOutcome;

const RING: u64 = 0x10000;

/// Linux 8139too's hw_start, reduced: unlock, RBSTART, RE|TE, RCR, TCR, IMR.
fn start(r: &mut Rig, rcr: u32) {
    r.w8(0x37, 0x10);
    r.w8(0x50, 0xC0);
    r.w32(0x30, RING as u32);
    r.w8(0x37, 0x0C);
    r.w32(0x44, rcr);
    r.w32(0x40, 0x0300_0600);
    r.w8(0x50, 0x00);
    for i in 0..4u32 {
        r.w32(0x20 + 4 * i as u64, 0x4_0000 + 0x800 * i);
    }
    r.w16(0x3C, 0xE07F);
}

/// RCR as 8139too sets it: 32K ring, WRAP, AB|APM.
const RCR_LINUX: u32 = (1 << 12) | (1 << 7) | (7 << 13) | (7 << 8) | 0x0A;

#[test]
fn transmit_round_robin_sets_own_tok_and_tsad() {
    for rig in [Rig::c as fn() -> Rig, Rig::cplus] {
        let mut r = rig();
        start(&mut r, RCR_LINUX);
        for i in 0..6u32 {
            let slot = (i % 4) as u64;
            let f = frame([0xFF; 6], 60 + i as usize);
            r.put(0x4_0000 + 0x800 * slot, &f);
            r.w32(0x10 + 4 * slot, (2 << 16) | f.len() as u32);
            let tsd = r.r32(0x10 + 4 * slot);
            assert_eq!(tsd & 0xE000, 0xA000, "OWN|TOK after frame {i}");
            assert_eq!(tsd & 0x1FFF, f.len() as u32);
            assert_eq!(tsd & 0x3F_0000, 2 << 16, "early TX threshold kept");
            assert_eq!(r.net.take_sent(), vec![f]);
            assert_ne!(r.r16(0x3E) & 0x04, 0, "ISR.TOK");
            r.assert_intx_rule();
            r.w16(0x3E, 0x04);
            assert!(!r.irq.level());
        }
        assert_eq!(
            r.r16(0x60) & 0xF00F,
            0xF00F,
            "TSAD: TOK and OWN for all four"
        );
    }
}

#[test]
fn descriptors_go_in_order_only() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    r.put(0x4_0800, &frame([0xFF; 6], 64));
    // Descriptor 1 first: the chip serves descriptor 0 next, so nothing leaves yet.
    r.w32(0x14, 64);
    assert_eq!(r.net.sent_count(), 0);
    assert_eq!(r.r16(0x60) & 0x2, 0, "TSAD: OWN1 clear while pending");
    r.put(0x4_0000, &frame([0xFF; 6], 70));
    r.w32(0x10, 70);
    let sent = r.net.take_sent();
    assert_eq!(
        sent.iter().map(|f| f.len()).collect::<Vec<_>>(),
        vec![70, 64]
    );
}

#[test]
fn transmit_needs_te_and_bus_master() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    r.w8(0x37, 0x08);
    r.put(0x4_0000, &frame([0xFF; 6], 60));
    r.w32(0x10, 60);
    assert_eq!(r.net.sent_count(), 0);
    r.dev.config_write(0x04, 2, 0x0003);
    r.w8(0x37, 0x0C);
    assert_eq!(r.net.sent_count(), 0, "no DMA without bus master");
    r.dev.config_write(0x04, 2, 0x0007);
    assert_eq!(r.net.sent_count(), 1, "sent once bus mastering is on");
}

#[test]
fn oversized_or_unreachable_descriptor_aborts() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    r.w32(0x10, 1793);
    assert_eq!(r.r32(0x10) & 0x4000_2000, 0x4000_2000, "TABT|OWN");
    assert_ne!(r.r16(0x3E) & 0x08, 0, "ISR.TER");
    assert_eq!(r.r16(0x60) & 0x10, 0x10, "TSAD.TABT0");
    r.w32(0x24, 0xFFFF_FF00);
    r.w32(0x14, 100);
    assert_eq!(r.r32(0x14) & 0x4000_0000, 0x4000_0000);
    assert_ne!(r.r16(0x3E) & 0x8000, 0, "master abort reported as SERR");
    assert_eq!(r.net.sent_count(), 0);
}

#[test]
fn loopback_delivers_to_our_own_ring() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    r.w32(0x40, 0x0306_0600);
    let f = frame(MAC, 100);
    r.put(0x4_0000, &f);
    r.w32(0x10, 100);
    assert_eq!(r.net.sent_count(), 0, "loopback frames do not leave");
    assert_eq!(r.get32(RING) >> 16, 104);
    assert_eq!(r.get(RING + 4, 100), f);
}

#[test]
fn receive_writes_header_data_crc_and_advances() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    assert!(r.dev.can_receive());
    let f = frame(MAC, 99);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    let hdr = r.get32(RING);
    assert_eq!(hdr & 0xFFFF, 0x4001, "ROK|PAM");
    assert_eq!(hdr >> 16, 103, "length includes the CRC");
    assert_eq!(r.get(RING + 4, 99), f);
    let crc = r.get(RING + 4 + 99, 4);
    let mut fcs = vm_nic_devices::rtl8139::filter::Fcs::new();
    fcs.update(&f);
    assert_eq!(crc, fcs.bytes());
    assert_eq!(r.r16(0x3A), 108, "CBR: 4 + 103 aligned to 4");
    assert_eq!(r.r8(0x37) & 1, 0, "BUFE clear");
    assert_ne!(r.r16(0x3E) & 1, 0, "ROK");
    r.assert_intx_rule();
    // Broadcast, padded runt.
    assert_eq!(r.dev.receive(&frame([0xFF; 6], 42)), RxOutcome::Accepted);
    let hdr = r.get32(RING + 108);
    assert_eq!(hdr, (64 << 16) | 0x2001, "BAR, padded to 60 + CRC");
    // The driver consumes both: CAPR = read pointer - 16.
    r.w16(0x38, (108 + 68 - 16) as u16);
    assert_eq!(r.r8(0x37) & 1, 1, "BUFE");
}

#[test]
fn filters() {
    let mut r = Rig::c();
    start(&mut r, (1 << 12) | (1 << 7) | 0x02);
    assert_eq!(
        r.dev.receive(&frame([0xFF; 6], 60)),
        RxOutcome::Filtered,
        "no AB"
    );
    assert_eq!(
        r.dev.receive(&frame([2, 0, 0, 0, 0, 1], 60)),
        RxOutcome::Filtered
    );
    let mc = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    r.w32(0x44, (1 << 12) | (1 << 7) | 0x04);
    assert_eq!(
        r.dev.receive(&frame(mc, 60)),
        RxOutcome::Filtered,
        "hash bit clear"
    );
    r.w32(0x08, 0x8000_0000); // MAR bit 0x1f (MAR3 bit 7)
    assert_eq!(r.dev.receive(&frame(mc, 60)), RxOutcome::Accepted);
    assert_eq!(r.get32(RING) & 0x8000, 0x8000, "MAR status");
    r.w32(0x44, (1 << 12) | (1 << 7) | 0x01);
    assert_eq!(
        r.dev.receive(&frame([2, 0, 0, 0, 0, 1], 60)),
        RxOutcome::Accepted,
        "AAP"
    );
    r.w8(0x37, 0x04);
    assert_eq!(
        r.dev.receive(&frame(MAC, 60)),
        RxOutcome::Filtered,
        "RE off"
    );
    assert!(!r.dev.can_receive());
}

#[test]
fn wrap_bit_controls_where_a_packet_crossing_the_end_goes() {
    for wrap in [true, false] {
        let mut r = Rig::c();
        // 8K ring, AB|APM.
        start(&mut r, if wrap { 0x8A } else { 0x0A });
        // Walk the write pointer to 8192 - 104 by receiving and consuming frames.
        let mut consumed = 0u32;
        while r.r16(0x3A) < 8192 - 200 {
            assert_eq!(r.dev.receive(&frame(MAC, 96)), RxOutcome::Accepted);
            consumed = r.r16(0x3A) as u32;
            r.w16(0x38, (consumed as u16).wrapping_sub(16));
        }
        let start_off = consumed as u64;
        let f = frame(MAC, 400);
        assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
        let left = (8192 - start_off - 4) as usize;
        assert_eq!(r.get(RING + start_off + 4, left), f[..left].to_vec());
        if wrap {
            assert_eq!(
                r.get(RING + 8192, 400 - left),
                f[left..].to_vec(),
                "past the end"
            );
        } else {
            assert_eq!(
                r.get(RING, 400 - left),
                f[left..].to_vec(),
                "wrapped to start"
            );
        }
        let expect = (start_off as usize + 4 + 404).div_ceil(4) * 4 % 8192;
        assert_eq!(r.r16(0x3A) as usize, expect);
    }
}

#[test]
fn full_ring_makes_frames_wait_with_rxovw() {
    let mut r = Rig::c();
    start(&mut r, 0x8A); // 8K ring
    let f = frame(MAC, 1000);
    let mut accepted = 0;
    while r.dev.receive(&f) == RxOutcome::Accepted {
        accepted += 1;
        assert!(accepted < 16);
    }
    assert_eq!(accepted, 8, "8 * 1008 bytes fit strictly below 8192");
    assert_eq!(r.dev.receive(&f), RxOutcome::NoBuffer);
    assert!(!r.dev.can_receive());
    assert_ne!(r.r16(0x3E) & 0x10, 0, "RXOVW");
    assert_eq!(r.r32(0x4C), 0, "a waiting frame is not missed");
    // The driver frees one packet: room again.
    r.w16(0x38, 1008 - 16);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
}

#[test]
fn too_long_frames_are_counted_as_missed() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    assert_eq!(r.dev.receive(&frame(MAC, 5000)), RxOutcome::Dropped);
    assert_eq!(r.r32(0x4C), 1, "MPC");
    r.w32(0x4C, 0x1234);
    assert_eq!(r.r32(0x4C), 0, "any write clears MPC");
}

#[test]
fn rx_restart_resets_the_ring_pointers() {
    let mut r = Rig::c();
    start(&mut r, RCR_LINUX);
    r.dev.receive(&frame(MAC, 100));
    assert_ne!(r.r16(0x3A), 0);
    // 8139too's rx_err recovery: RE off, RE on, cur_rx = 0.
    r.w8(0x37, 0x04);
    r.w8(0x37, 0x0C);
    assert_eq!(r.r16(0x3A), 0);
    assert_eq!(r.r16(0x38), 0xFFF0);
}
