//! Transmit: legacy descriptors and their checksum fields, context + data descriptors,
//! TSO (IPv4/IPv6 TCP, UDP), VLAN insertion, padding, write-back, GSO pass-through,
//! statistics.

mod e1000_support;

use e1000_support::*;

const EOP: u32 = 0x01;
const IFCS: u32 = 0x02;
const RS: u32 = 0x08;
const DEXT: u32 = 0x20;
const TSE: u32 = 0x04;
const VLE: u32 = 0x40;

/// A context descriptor; `tso` is (PAYLEN, TUCMD, HDRLEN, MSS).
fn ctx_desc(r: &Rig, i: u64, ip: (u8, u8, u16), tu: (u8, u8, u16), tso: (u32, u32, u8, u16)) {
    let (paylen, tucmd, hdrlen, mss) = tso;
    let mut d = [0u8; 16];
    d[0] = ip.0;
    d[1] = ip.1;
    d[2..4].copy_from_slice(&ip.2.to_le_bytes());
    d[4] = tu.0;
    d[5] = tu.1;
    d[6..8].copy_from_slice(&tu.2.to_le_bytes());
    let lower = paylen | (tucmd | DEXT) << 24;
    d[8..12].copy_from_slice(&lower.to_le_bytes());
    d[13] = hdrlen;
    d[14..16].copy_from_slice(&mss.to_le_bytes());
    r.write_mem(TX_RING + i * 16, &d);
}

fn data_desc(r: &Rig, i: u64, buf: u64, data: &[u8], dcmd: u32, popts: u8) {
    r.write_mem(buf, data);
    r.tx_desc(
        i,
        buf,
        data.len() as u32 | 1 << 20 | (dcmd | DEXT) << 24,
        (popts as u32) << 8,
    );
}

fn rig() -> Rig {
    let mut r = Rig::up();
    r.setup_tx(32);
    r
}

#[test]
fn legacy_frame_split_over_descriptors() {
    let mut r = rig();
    let f = eth(
        [0x02, 1, 2, 3, 4, 5],
        0x0800,
        &(0..200).map(|i| i as u8).collect::<Vec<_>>(),
    );
    r.tx_legacy(0, &f[..10], IFCS as u8);
    r.tx_legacy(1, &f[10..100], IFCS as u8);
    r.tx_legacy(2, &f[100..], (EOP | IFCS | RS) as u8);
    r.w(TDT, 3);
    assert_eq!(r.net.take_sent(), vec![f]);
    assert_eq!(r.r(TDH), 3);
    assert_eq!(r.read_mem(TX_RING + 12, 1)[0], 0, "no DD without RS");
    assert_eq!(r.read_mem(TX_RING + 2 * 16 + 12, 1)[0] & 1, 1, "DD with RS");
}

#[test]
fn legacy_checksum_fields() {
    let mut r = rig();
    let mut f = ipv4_frame([0x02, 1, 2, 3, 4, 5], 17, &[9; 40]);
    let good = f.clone();
    // Leave the UDP checksum to the device: seed with the pseudo-header sum.
    let ps = pseudo_sum(&f[14..34], 17, f.len() - 34);
    let folded = !csum(&[], ps);
    f[40..42].copy_from_slice(&folded.to_be_bytes());
    // CSS = 34 (UDP header), CSO = 40 (UDP checksum field), IC set.
    r.write_mem(TX_BUF, &f);
    r.tx_desc(
        0,
        TX_BUF,
        f.len() as u32 | 40 << 16 | (EOP | IFCS | RS | 0x04) << 24,
        34 << 8,
    );
    r.w(TDT, 1);
    let sent = r.net.take_sent();
    assert_eq!(sent[0], good);
}

#[test]
fn context_and_data_checksum_offload() {
    let mut r = rig();
    let good = ipv4_frame([0x02, 1, 2, 3, 4, 5], 6, &[0x5a; 300]);
    let mut f = good.clone();
    f[24..26].fill(0); // IP checksum
    let ps = pseudo_sum(&f[14..34], 6, f.len() - 34);
    f[50..52].copy_from_slice(&(!csum(&[], ps)).to_be_bytes());
    ctx_desc(&r, 0, (14, 24, 33), (34, 50, 0), (0, 0x03, 0, 0));
    data_desc(&r, 1, TX_BUF, &f[..100], IFCS, 3);
    data_desc(&r, 2, TX_BUF + 0x1000, &f[100..], EOP | IFCS | RS, 0);
    r.w(TDT, 3);
    assert_eq!(r.net.take_sent(), vec![good]);
}

/// Builds a TSO request as Linux's e1000_tso does and checks the segments.
fn tso_case(ipv6: bool, tcp: bool, payload_len: usize, mss: u16) -> Vec<Vec<u8>> {
    let mut r = rig();
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
    let (ip_len, l4_len) = (if ipv6 { 40 } else { 20 }, if tcp { 20 } else { 8 });
    let hdrlen = 14 + ip_len + l4_len;
    let mut h = vec![0x02, 1, 2, 3, 4, 5, 0x02, 0, 0, 0, 0, 9];
    h.extend_from_slice(if ipv6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    let proto = if tcp { 6u8 } else { 17 };
    if ipv6 {
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
        ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h.extend_from_slice(&ip);
    } else {
        h.extend_from_slice(&[
            0x45, 0, 0, 0, 0x10, 0x00, 0x40, 0, 64, proto, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
        ]);
    }
    let mut ps: u32 = 0;
    let (src, n) = if ipv6 { (22usize, 32usize) } else { (26, 8) };
    for c in h[src..src + n].chunks(2) {
        ps += (c[0] as u32) << 8 | c[1] as u32;
    }
    ps += proto as u32;
    let folded = !csum(&[], ps);
    if tcp {
        let mut t = vec![
            0x30, 0x39, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, 0x19, 0xff, 0xff, 0, 0, 0, 0,
        ];
        t[16..18].copy_from_slice(&folded.to_be_bytes());
        h.extend_from_slice(&t);
    } else {
        let mut u = vec![0x30, 0x39, 0, 53, 0, 0, 0, 0];
        u[6..8].copy_from_slice(&folded.to_be_bytes());
        h.extend_from_slice(&u);
    }
    assert_eq!(h.len(), hdrlen);
    let ipcss = 14u8;
    let tucss = (14 + ip_len) as u8;
    let tucso = tucss + if tcp { 16 } else { 6 };
    let tucmd = TSE | if tcp { 1 } else { 0 } | if ipv6 { 0 } else { 2 } | RS;
    ctx_desc(
        &r,
        0,
        (ipcss, 24, 33),
        (tucss, tucso, 0),
        (payload_len as u32, tucmd, hdrlen as u8, mss),
    );
    data_desc(&r, 1, TX_BUF, &h, IFCS | TSE, if ipv6 { 2 } else { 3 });
    data_desc(
        &r,
        2,
        TX_BUF + 0x1000,
        &payload[..payload_len / 3],
        IFCS | TSE,
        0,
    );
    data_desc(
        &r,
        3,
        TX_BUF + 0x10000,
        &payload[payload_len / 3..],
        EOP | IFCS | TSE | RS,
        0,
    );
    r.w(TDT, 4);
    let segs = r.net.take_sent();
    let expect = payload_len.div_ceil(mss as usize);
    assert_eq!(segs.len(), expect);
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        assert!(s.len() <= hdrlen + mss as usize);
        let body = &s[hdrlen..];
        joined.extend_from_slice(body);
        let l4 = &s[14 + ip_len..];
        let mut ps: u32 = 0;
        for c in s[src..src + n].chunks(2) {
            ps += (c[0] as u32) << 8 | c[1] as u32;
        }
        ps += proto as u32 + l4.len() as u32;
        assert_eq!(csum(l4, ps), 0, "L4 checksum of segment {i}");
        if ipv6 {
            assert_eq!(
                u16::from_be_bytes([s[18], s[19]]) as usize,
                s.len() - 54,
                "payload length"
            );
        } else {
            assert_eq!(csum(&s[14..34], 0), 0, "IP checksum of segment {i}");
            assert_eq!(u16::from_be_bytes([s[16], s[17]]) as usize, s.len() - 14);
            assert_eq!(
                u16::from_be_bytes([s[18], s[19]]),
                0x1000 + i as u16,
                "IP ID"
            );
        }
        if tcp {
            let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
            assert_eq!(seq, 1000 + (i * mss as usize) as u32);
            assert_eq!(
                l4[13] & 0x09,
                if last { 0x09 } else { 0 },
                "FIN/PSH on the last only"
            );
        } else {
            assert_eq!(u16::from_be_bytes([l4[4], l4[5]]) as usize, l4.len());
        }
    }
    assert_eq!(joined, payload);
    assert_eq!(r.read_mem(TX_RING + 3 * 16 + 12, 1)[0] & 1, 1, "DD");
    segs
}

#[test]
fn tso_ipv4_tcp() {
    tso_case(false, true, 4000, 1000);
    tso_case(false, true, 64_000, 1448);
}

#[test]
fn tso_ipv6_tcp() {
    tso_case(true, true, 5000, 1440);
}

#[test]
fn tso_udp() {
    tso_case(false, false, 3000, 1000);
}

#[test]
fn vlan_insertion_needs_vme() {
    let mut r = rig();
    let f = eth([0x02, 1, 2, 3, 4, 5], 0x0800, &[1; 60]);
    r.write_mem(TX_BUF, &f);
    r.tx_desc(0, TX_BUF, f.len() as u32 | (EOP | VLE) << 24, 0x0123 << 16);
    r.w(TDT, 1);
    assert_eq!(
        r.net.take_sent(),
        vec![f.clone()],
        "no tag without CTRL.VME"
    );
    let c = r.r(CTRL);
    r.w(CTRL, c | 1 << 30);
    r.tx_desc(1, TX_BUF, f.len() as u32 | (EOP | VLE) << 24, 0x0123 << 16);
    r.w(TDT, 2);
    let sent = r.net.take_sent();
    assert_eq!(&sent[0][12..16], &[0x81, 0x00, 0x01, 0x23]);
    assert_eq!(&sent[0][16..], &f[12..]);
}

#[test]
fn short_frames_are_padded_with_psp_only() {
    let mut r = rig();
    let f = eth([0x02, 1, 2, 3, 4, 5], 0x0800, &[1; 10]);
    r.tx_legacy(0, &f, EOP as u8);
    r.w(TDT, 1);
    let s = r.net.take_sent();
    assert_eq!(s[0].len(), 60);
    assert_eq!(&s[0][..f.len()], &f[..]);
    r.w(TCTL, TCTL_EN);
    r.tx_legacy(1, &f, EOP as u8);
    r.w(TDT, 2);
    assert_eq!(r.net.take_sent()[0].len(), f.len());
}

#[test]
fn tx_disabled_does_nothing() {
    let mut r = rig();
    r.w(TCTL, 0);
    r.tx_legacy(0, &eth([0xff; 6], 0x0800, &[0; 50]), (EOP | RS) as u8);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 0);
    r.w(TCTL, TCTL_EN);
    assert_eq!(r.net.sent_count(), 1, "enabling TCTL starts the ring");
}

#[test]
fn gso_passthrough_when_backend_has_vnet_hdr() {
    let mut r = rig();
    r.net.set_vnet_hdr(true);
    let mut f = ipv4_frame([0x02, 1, 2, 3, 4, 5], 6, &[3; 3000]);
    f[16..18].fill(0);
    f[24..26].fill(0);
    let ps = pseudo_sum(&f[14..34], 6, 0);
    f[50..52].copy_from_slice(&(!csum(&[], ps)).to_be_bytes());
    ctx_desc(&r, 0, (14, 24, 33), (34, 50, 0), (3000, TSE | 3, 54, 1448));
    data_desc(&r, 1, TX_BUF, &f, EOP | TSE | RS, 3);
    r.w(TDT, 2);
    assert_eq!(r.net.sent_count(), 0);
    let gso = r.net.take_gso();
    assert_eq!(gso.len(), 1);
    let (h, frame) = &gso[0];
    assert_eq!(h.gso_type, 1, "TCPv4");
    assert_eq!(
        (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
        (54, 1448, 34, 16)
    );
    assert_eq!(frame.len(), f.len());
    assert_eq!(
        u16::from_be_bytes([frame[16], frame[17]]) as usize,
        f.len() - 14,
        "IP length fixed"
    );
    assert_eq!(csum(&frame[14..34], 0), 0, "IP checksum inserted");
    // Checksum-only offload goes out as a NEEDS_CSUM frame.
    let g = ipv4_frame([0x02, 1, 2, 3, 4, 5], 17, &[1; 20]);
    ctx_desc(&r, 2, (14, 24, 33), (34, 40, 0), (0, 0, 0, 0));
    data_desc(&r, 3, TX_BUF, &g, EOP, 2);
    r.w(TDT, 4);
    let gso = r.net.take_gso();
    assert_eq!(
        (
            gso[0].0.gso_type,
            gso[0].0.flags,
            gso[0].0.csum_start,
            gso[0].0.csum_offset
        ),
        (0, 1, 34, 6)
    );
}

#[test]
fn tx_statistics() {
    let mut r = rig();
    let f = eth([0xff; 6], 0x0800, &[0; 100]);
    r.tx_legacy(0, &f, EOP as u8);
    r.tx_legacy(
        1,
        &eth([0x01, 0, 0x5e, 0, 0, 1], 0x0800, &[0; 100]),
        EOP as u8,
    );
    r.w(TDT, 2);
    assert_eq!(r.r(0x4080), 2, "GPTC");
    assert_eq!(r.r(0x4080), 0, "clear on read");
    assert_eq!(r.r(0x40d4), 2, "TPT");
    assert_eq!(r.r(0x4090), 2 * (f.len() as u32 + 4), "GOTCL");
    assert_eq!(r.r(0x4094), 0, "GOTCH");
    assert_eq!(r.r(0x40f4), 1, "BPTC");
    assert_eq!(r.r(0x40f0), 1, "MPTC");
    assert_eq!(r.r(0x40dc), 2, "PTC127");
}

#[test]
fn context_descriptor_mid_packet_applies_to_the_next_packet() {
    // Found by the property test: a TSO packet whose context changes to a smaller
    // header + MSS in the middle used to underflow the segment room.
    let mut r = rig();
    let f = ipv4_frame([0x02, 1, 2, 3, 4, 5], 6, &[7; 3000]);
    ctx_desc(&r, 0, (14, 24, 33), (34, 50, 0), (3000, TSE | 3, 54, 1000));
    data_desc(&r, 1, TX_BUF, &f[..800], TSE, 3);
    ctx_desc(&r, 2, (14, 24, 33), (34, 50, 0), (10, TSE | 3, 20, 10));
    data_desc(&r, 3, TX_BUF + 0x1000, &f[800..], EOP | TSE, 3);
    r.w(TDT, 4);
    let segs = r.net.take_sent();
    assert_eq!(segs.len(), 3, "segmented with the packet's own context");
    assert!(segs.iter().all(|s| s.len() <= 54 + 1000));
}

#[test]
fn packets_longer_than_the_tx_fifo_are_dropped() {
    let mut r = rig();
    let f = eth([0x02, 1, 2, 3, 4, 5], 0x0800, &vec![0x42; 20_000]);
    r.write_mem(TX_BUF, &f);
    r.tx_desc(0, TX_BUF, f.len() as u32 | (EOP | RS) << 24, 0);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 0, "PBA.TXA is 16 KiB at reset");
    assert_eq!(
        r.read_mem(TX_RING + 12, 1)[0] & 1,
        1,
        "the descriptor still completes"
    );
    r.w(0x1000, 32); // RXA 32 KiB, so TXA 32 KiB
    r.tx_desc(1, TX_BUF, f.len() as u32 | (EOP | RS) << 24, 0);
    r.w(TDT, 2);
    assert_eq!(r.net.take_sent(), vec![f]);
}

#[test]
fn vlan_fields_count_only_in_the_eop_descriptor_without_tso() {
    let mut r = rig();
    let c = r.r(CTRL);
    r.w(CTRL, c | 1 << 30);
    let f = eth([0x02, 1, 2, 3, 4, 5], 0x0800, &[1; 60]);
    r.write_mem(TX_BUF, &f);
    r.tx_desc(0, TX_BUF, 20 | VLE << 24, 0x0123 << 16);
    r.tx_desc(1, TX_BUF + 20, (f.len() as u32 - 20) | EOP << 24, 0);
    r.w(TDT, 2);
    assert_eq!(r.net.take_sent(), vec![f], "VLE outside EOP is ignored");
}

#[test]
fn tso_payload_not_matching_paylen_counts_a_context_failure() {
    let mut r = rig();
    let f = ipv4_frame([0x02, 1, 2, 3, 4, 5], 6, &[7; 2000]);
    ctx_desc(&r, 0, (14, 24, 33), (34, 50, 0), (3000, TSE | 3, 54, 1000));
    data_desc(&r, 1, TX_BUF, &f, EOP | TSE, 3);
    r.w(TDT, 2);
    assert_eq!(r.net.take_sent().len(), 2, "what was assembled is sent");
    assert_eq!(r.r(0x40fc), 1, "TSCTFC");
    assert_eq!(r.r(0x40f8), 1, "TSCTC");
}
