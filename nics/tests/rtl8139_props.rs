//! Property tests of the C+ data path: any fragment layout transmits the same frame,
//! large sends reassemble to the original payload with valid checksums, and a received
//! frame spread over any descriptor sizes reads back byte-identical.

mod rtl8139_support;

use proptest::prelude::*;
use rtl8139_support::*;
use vm_nic_devices::rtl8139::offload;
use vm_nic_devices::RxOutcome;

const BUF: u64 = 0x4_0000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_fragment_layout_transmits_the_same_frame(
        len in 14usize..9000,
        cuts in proptest::collection::vec(any::<u16>(), 0..8),
    ) {
        let mut r = Rig::cplus();
        cplus_on(&mut r, 0x0003, 0x0A);
        let f = frame([0xFF; 6], len);
        let mut points: Vec<usize> = cuts.iter().map(|c| *c as usize % len).collect();
        points.push(0);
        points.push(len);
        points.sort_unstable();
        points.dedup();
        let pieces: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        // Place each fragment in its own spot, scattered.
        for (i, (a, b)) in pieces.iter().enumerate() {
            let at = BUF + i as u64 * 0x4000;
            r.put(at, &f[*a..*b]);
            let mut opts1 = OWN | (b - a) as u32;
            if i == 0 { opts1 |= FS; }
            if i + 1 == pieces.len() { opts1 |= LS; }
            put_desc(&r, TX_RING, i as u64, opts1, 0, at);
        }
        r.w8(0xD9, 0x40);
        prop_assert_eq!(r.net.take_sent(), vec![f]);
    }

    #[test]
    fn large_send_reassembles(payload in 1usize..20_000, mss in 1u32..1461) {
        let mut r = Rig::cplus();
        cplus_on(&mut r, 0x0003, 0x0A);
        let mut f = tcp_frame(payload);
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        r.put(BUF, &f);
        put_desc(&r, TX_RING, 0, OWN | FS | LS | (1 << 27) | (mss << 16) | f.len() as u32, 0, BUF);
        r.w8(0xD9, 0x40);
        let segs = r.net.take_sent();
        prop_assert_eq!(segs.len(), payload.div_ceil(mss as usize));
        let mut data = Vec::new();
        for s in &segs {
            let ip = offload::parse_ipv4(s).unwrap();
            prop_assert!(offload::ip_checksum_ok(s, &ip) && offload::l4_checksum_ok(s, &ip));
            prop_assert!(s.len() - 54 <= mss as usize);
            data.extend_from_slice(&s[54..]);
        }
        prop_assert_eq!(&data[..], &f[54..]);
    }

    #[test]
    fn received_frames_read_back_over_any_descriptor_sizes(
        len in 60usize..3000,
        sizes in proptest::collection::vec(1u32..2048, 1..64),
    ) {
        let mut r = Rig::cplus();
        cplus_on(&mut r, 0x0003, 0x0A);
        for (i, s) in sizes.iter().enumerate() {
            let eor = if i + 1 == sizes.len() { EOR } else { 0 };
            put_desc(&r, RX_RING, i as u64, OWN | eor | s, 0, 0x8_0000 + i as u64 * 0x800);
        }
        let f = frame(MAC, len);
        let room: u32 = sizes.iter().sum();
        let outcome = r.dev.receive(&f);
        if (room as usize) < len + 4 {
            // Every descriptor of the ring is owned and they are still too small.
            prop_assert_eq!(outcome, RxOutcome::Dropped);
            return Ok(());
        }
        prop_assert_eq!(outcome, RxOutcome::Accepted);
        let mut got = Vec::new();
        for (i, _) in sizes.iter().enumerate() {
            let st = r.get32(RX_RING + 16 * i as u64);
            if st & OWN != 0 { break; }
            let n = if st & LS != 0 { (st & 0x1FFF) as usize - got.len() } else { (st & 0x1FFF) as usize };
            got.extend(r.get(0x8_0000 + i as u64 * 0x800, n));
            if st & LS != 0 { break; }
        }
        prop_assert_eq!(&got[..len], &f[..]);
    }
}
