//! C+ mode: descriptor rings, TPPoll queues, offloads, VLAN, tally counters.

mod rtl8139_support;

use rtl8139_support::*;
use vm_nic_devices::rtl8139::offload;
use vm_nic_devices::RxOutcome;

const STATS: u64 = 0x1C00;
const RX_BUFS: u64 = 0x2_0000;
const TX_BUFS: u64 = 0x4_0000;

/// Linux 8139cp's cp_init_hw: reset, unlock, CpCmd, ring addresses, RE|TE, RCR, TCR, IMR.
fn start(r: &mut Rig, cpcmd: u16) {
    r.w8(0x37, 0x10);
    r.w8(0x50, 0xC0);
    r.w16(0xE0, cpcmd);
    r.w32(0x28, HI_RING as u32);
    r.w32(0x2C, 0);
    r.w32(0xE4, RX_RING as u32);
    r.w32(0xE8, 0);
    r.w32(0x20, TX_RING as u32);
    r.w32(0x24, 0);
    r.w8(0x37, 0x0C);
    r.w8(0xEC, 0x06);
    r.w32(0x44, (5 << 13) | (4 << 8) | 0x0A);
    r.w32(0x40, 0x0300_0600);
    r.w16(0x5C, 0);
    r.w8(0x50, 0);
    r.w16(0x3C, 0x80FF);
}

const CPCMD_LINUX: u16 = 0x0020 | 0x0040 | 0x0008 | 0x0003;

fn rx_desc(r: &Rig, i: u64, size: u32, last: bool) {
    let opts1 = OWN | size | if last { EOR } else { 0 };
    put_desc(r, RX_RING, i, opts1, 0, RX_BUFS + i * 0x800);
}

fn fill_rx(r: &Rig, n: u64, size: u32) {
    for i in 0..n {
        rx_desc(r, i, size, i + 1 == n);
    }
}

#[test]
fn transmit_single_and_fragmented_frames() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let f = frame([0xFF; 6], 300);
    r.put(TX_BUFS, &f);
    put_desc(&r, TX_RING, 0, OWN | FS | LS | 300, 0, TX_BUFS);
    // Three fragments, the last at the end of a 4-entry ring (EOR).
    let g = frame([0xFF; 6], 500);
    r.put(TX_BUFS + 0x1000, &g[..100]);
    r.put(TX_BUFS + 0x2000, &g[100..350]);
    r.put(TX_BUFS + 0x3000, &g[350..]);
    put_desc(&r, TX_RING, 1, OWN | FS | 100, 0, TX_BUFS + 0x1000);
    put_desc(&r, TX_RING, 2, OWN | 250, 0, TX_BUFS + 0x2000);
    put_desc(&r, TX_RING, 3, OWN | LS | EOR | 150, 0, TX_BUFS + 0x3000);
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.take_sent(), vec![f.clone(), g]);
    for i in 0..4 {
        assert_eq!(
            r.get32(TX_RING + 16 * i) & OWN,
            0,
            "descriptor {i} handed back"
        );
    }
    assert_eq!(r.get32(TX_RING + 48) & EOR, EOR);
    assert_ne!(r.r16(0x3E) & 0x04, 0, "TxOK");
    r.assert_intx_rule();
    // After EOR the chip continues at entry 0.
    put_desc(&r, TX_RING, 0, OWN | FS | LS | 300, 0, TX_BUFS);
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.take_sent(), vec![f]);
    assert_eq!(r.r8(0xD9), 0, "TPPoll bits self-clear");
}

#[test]
fn incomplete_frames_wait_for_their_last_fragment() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let g = frame([0xFF; 6], 200);
    r.put(TX_BUFS, &g);
    put_desc(&r, TX_RING, 0, OWN | FS | 100, 0, TX_BUFS);
    put_desc(&r, TX_RING, 1, LS | 100, 0, TX_BUFS + 100);
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.sent_count(), 0);
    assert_eq!(r.get32(TX_RING) & OWN, OWN, "nothing consumed");
    put_desc(&r, TX_RING, 1, OWN | LS | 100, 0, TX_BUFS + 100);
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.take_sent(), vec![g]);
}

#[test]
fn empty_ring_reports_tx_descriptor_unavailable() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    r.w8(0xD9, 0x40);
    assert_ne!(r.r16(0x3E) & 0x80, 0);
}

#[test]
fn high_priority_queue_goes_first() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let lo = frame([0xFF; 6], 100);
    let hi = frame([0xFF; 6], 120);
    r.put(TX_BUFS, &lo);
    r.put(TX_BUFS + 0x1000, &hi);
    put_desc(&r, TX_RING, 0, OWN | FS | LS | EOR | 100, 0, TX_BUFS);
    put_desc(
        &r,
        HI_RING,
        0,
        OWN | FS | LS | EOR | 120,
        0,
        TX_BUFS + 0x1000,
    );
    r.w8(0xD9, 0xC0);
    assert_eq!(r.net.take_sent(), vec![hi, lo]);
}

#[test]
fn checksum_offload_fills_ip_and_tcp_udp_checksums() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let good = tcp_frame(200);
    let mut f = good.clone();
    f[24] = 0;
    f[25] = 0;
    f[50] = 0x12;
    f[51] = 0x34;
    r.put(TX_BUFS, &f);
    put_desc(
        &r,
        TX_RING,
        0,
        OWN | FS | LS | (1 << 18) | (1 << 16) | f.len() as u32,
        0,
        TX_BUFS,
    );
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.take_sent(), vec![good]);
    // UDP: turn the frame into UDP with a zero checksum field.
    let mut u = tcp_frame(100);
    u[23] = 17;
    let udp_len = (u.len() - 34) as u16;
    u[38..40].copy_from_slice(&udp_len.to_be_bytes());
    r.put(TX_BUFS, &u);
    put_desc(
        &r,
        TX_RING,
        1,
        OWN | FS | LS | (1 << 18) | (1 << 17) | u.len() as u32,
        0,
        TX_BUFS,
    );
    r.w8(0xD9, 0x40);
    let sent = r.net.take_sent();
    let ip = offload::parse_ipv4(&sent[0]).unwrap();
    assert!(offload::ip_checksum_ok(&sent[0], &ip));
    assert!(offload::l4_checksum_ok(&sent[0], &ip));
    assert_ne!(&sent[0][40..42], &[0, 0]);
}

fn tso_frame(payload: usize) -> Vec<u8> {
    let mut f = tcp_frame(payload);
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f
}

#[test]
fn large_send_segments_with_valid_checksums() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let f = tso_frame(4000);
    r.put(TX_BUFS, &f);
    let mss = 1460u32;
    put_desc(
        &r,
        TX_RING,
        0,
        OWN | FS | LS | (1 << 27) | (mss << 16) | f.len() as u32,
        0,
        TX_BUFS,
    );
    r.w8(0xD9, 0x40);
    let segs = r.net.take_sent();
    assert_eq!(segs.len(), 3);
    // MSS 1460 has bit 7 set, which sits where TxError is reported: the status written
    // back must not carry the command bits.
    assert_eq!(r.get32(TX_RING), FS | LS | f.len() as u32);
    let mut data = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let ip = offload::parse_ipv4(s).unwrap();
        assert!(offload::ip_checksum_ok(s, &ip) && offload::l4_checksum_ok(s, &ip));
        assert!(s.len() <= 1514);
        let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
        assert_eq!(seq, 1000 + (i as u32) * mss);
        let psh = s[47] & 0x08 != 0;
        assert_eq!(psh, i == 2, "PSH only on the last segment");
        data.extend_from_slice(&s[54..]);
    }
    assert_eq!(data, &f[54..]);
}

#[test]
fn large_send_goes_out_as_gso_when_the_backend_takes_vnet_headers() {
    let mut r = Rig::cplus();
    r.net.set_vnet_hdr(true);
    start(&mut r, CPCMD_LINUX);
    let f = tso_frame(3000);
    r.put(TX_BUFS, &f);
    put_desc(
        &r,
        TX_RING,
        0,
        OWN | FS | LS | (1 << 27) | (1000 << 16) | f.len() as u32,
        0,
        TX_BUFS,
    );
    r.w8(0xD9, 0x40);
    assert_eq!(r.net.sent_count(), 0);
    let gso = r.net.take_gso();
    assert_eq!(gso.len(), 1);
    let (h, frame) = &gso[0];
    assert_eq!(h.gso_type, vm_nic_backends::VirtioNetHdr::GSO_TCPV4);
    assert_eq!(
        (h.gso_size, h.hdr_len, h.csum_start, h.csum_offset),
        (1000, 54, 34, 16)
    );
    assert_eq!(frame[54..], f[54..]);
}

#[test]
fn vlan_insert_and_strip() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    let f = frame([0xFF; 6], 100);
    r.put(TX_BUFS, &f);
    // opts2: TxVlanTag | swab16(TCI 0x0123).
    put_desc(
        &r,
        TX_RING,
        0,
        OWN | FS | LS | 100,
        (1 << 17) | 0x2301,
        TX_BUFS,
    );
    r.w8(0xD9, 0x40);
    let sent = r.net.take_sent();
    assert_eq!(sent[0].len(), 104);
    assert_eq!(&sent[0][12..16], &[0x81, 0x00, 0x01, 0x23]);
    assert_eq!(&sent[0][16..], &f[12..]);
    // Receive it back with RxVlan on: the tag is removed into opts2.
    fill_rx(&r, 4, 1536);
    assert_eq!(r.dev.receive(&sent[0]), RxOutcome::Accepted);
    let opts1 = r.get32(RX_RING);
    assert_eq!(opts1 & 0x1FFF, 104, "100 bytes + CRC");
    assert_eq!(r.get32(RX_RING + 4), (1 << 16) | 0x2301);
    assert_eq!(r.get(RX_BUFS, 100), f);
}

#[test]
fn receive_sets_status_checksum_verdicts_and_hands_back() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    fill_rx(&r, 4, 1536);
    assert!(r.dev.can_receive());
    let f = tcp_frame(300);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    let opts1 = r.get32(RX_RING);
    assert_eq!(opts1 & (OWN | FS | LS), FS | LS);
    assert_eq!(opts1 & 0x1FFF, f.len() as u32 + 4);
    assert_eq!((opts1 >> 16) & 3, 1, "TCP");
    assert_eq!(opts1 & (7 << 13), 0, "no checksum failure");
    assert_ne!(opts1 & (1 << 25), 0, "PAM");
    assert_eq!(r.get(RX_BUFS, f.len()), f);
    let mut bad = tcp_frame(300);
    bad[100] ^= 0xFF;
    assert_eq!(r.dev.receive(&bad), RxOutcome::Accepted);
    let opts1 = r.get32(RX_RING + 16);
    assert_ne!(opts1 & (1 << 13), 0, "TCPF");
    assert_ne!(r.r16(0x3E) & 1, 0, "RxOK");
    r.assert_intx_rule();
}

#[test]
fn big_frames_span_descriptors_and_missing_descriptors_make_frames_wait() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    fill_rx(&r, 3, 512);
    let f = frame(MAC, 1200);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    let d: Vec<u32> = (0..3).map(|i| r.get32(RX_RING + 16 * i)).collect();
    assert_eq!(d[0] & (OWN | FS | LS), FS);
    assert_eq!(d[1] & (OWN | FS | LS), 0);
    assert_eq!(d[2] & (OWN | FS | LS | 0x1FFF), LS | 1204);
    let mut got = r.get(RX_BUFS, 512);
    got.extend(r.get(RX_BUFS + 0x800, 512));
    got.extend(r.get(RX_BUFS + 0x1000, 176));
    assert_eq!(got, f);
    // No descriptor owned now: the next frame waits, RDU is raised.
    assert!(!r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::NoBuffer);
    assert_ne!(r.r16(0x3E) & 0x10, 0);
    fill_rx(&r, 3, 512);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
}

#[test]
fn tally_counters_dump_by_dma() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    fill_rx(&r, 4, 1536);
    r.dev.receive(&frame(MAC, 100));
    r.dev.receive(&frame([0xFF; 6], 100));
    r.put(TX_BUFS, &frame([0xFF; 6], 100));
    put_desc(&r, TX_RING, 0, OWN | FS | LS | 100, 0, TX_BUFS);
    r.w8(0xD9, 0x40);
    r.w32(0x14, 0);
    r.w32(0x10, STATS as u32 | 0x8);
    assert_eq!(r.r32(0x10) & 0x8, 0, "dump done");
    let d = r.get(STATS, 64);
    let u64_at = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    assert_eq!(u64_at(0), 1, "TxOk");
    assert_eq!(u64_at(8), 2, "RxOk");
    assert_eq!(u64_at(40), 1, "RxOkPhy");
    assert_eq!(u64_at(48), 1, "RxOkBrd");
}

#[test]
fn cplus_registers_do_not_exist_on_the_rtl8139c() {
    let mut r = Rig::c();
    r.w16(0xE0, 0x0003);
    assert_eq!(r.r16(0xE0), 0);
    r.w32(0xE4, 0x1000);
    assert_eq!(r.r32(0xE4), 0);
}

#[test]
fn a_ring_too_small_for_the_frame_drops_it_without_reusing_descriptors() {
    let mut r = Rig::cplus();
    start(&mut r, CPCMD_LINUX);
    // Two owned descriptors, EOR on the second: 200 bytes in all.
    rx_desc(&r, 0, 100, false);
    rx_desc(&r, 1, 100, true);
    assert_eq!(r.dev.receive(&frame(MAC, 300)), RxOutcome::Dropped);
    assert_eq!(r.get32(RX_RING) & OWN, OWN, "nothing consumed");
    // A frame that fits still goes in.
    assert_eq!(r.dev.receive(&frame(MAC, 150)), RxOutcome::Accepted);
    assert_eq!(r.get32(RX_RING + 16) & (OWN | LS), LS);
}
