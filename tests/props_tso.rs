//! Property: a TCP/IPv4 payload handed to the device for segmentation (e1000 TSO through
//! a context and data descriptors; RTL8139C+ large send with LGSEN) leaves as segments
//! of at most MSS payload bytes, each with a valid IPv4 header checksum, IP total length
//! and TCP checksum, whose sequence numbers follow the payload, and whose payloads
//! reassemble to the original.

mod props_support;

use props_support::*;
use proptest::prelude::*;
use vm_nic::fuzzing::layout::{TX_BUFFERS, TX_RING};
use vm_nic::fuzzing::{Descriptor, DeviceKind, GuestAddr, Harness, Op, RingSel};

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Checks the frames sent from op `from` on reassemble `payload` in MSS-sized segments.
fn check_segments(
    h: &Harness,
    from: usize,
    payload: &[u8],
    mss: usize,
    seq0: u32,
) -> Result<(), TestCaseError> {
    let segs: Vec<&[u8]> = h
        .outcome()
        .frames
        .iter()
        .filter(|f| f.op >= from)
        .map(|f| &f.data[..])
        .collect();
    prop_assert_eq!(segs.len(), payload.len().div_ceil(mss), "segment count");
    let mut joined = Vec::new();
    for s in segs {
        let (seq, data) = check_segment(s).map_err(TestCaseError::fail)?;
        prop_assert_eq!(
            seq,
            seq0.wrapping_add(joined.len() as u32),
            "sequence number"
        );
        prop_assert!(data.len() <= mss, "segment of {} > MSS {}", data.len(), mss);
        joined.extend_from_slice(&data);
    }
    prop_assert_eq!(&joined[..], payload);
    Ok(())
}

fn e1000_tso(kind: DeviceKind, p: &[u8], mss: u16, seq0: u32) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(kind) else {
        return Ok(());
    };
    let mut frame = tcp_header(0, seq0);
    // SDM 3.5: the driver seeds the TCP checksum with the pseudo-header sum without the
    // length (as Linux's e1000 does); the hardware adds each segment's length.
    let mut seed = csum(0, &frame[26..34]) + 6;
    while seed > 0xffff {
        seed = (seed & 0xffff) + (seed >> 16);
    }
    frame[50..52].copy_from_slice(&(seed as u16).to_be_bytes());
    frame.extend_from_slice(p);
    poke(&mut h, TX_BUFFERS, &frame);
    // Context descriptor: IPCSS 14, IPCSO 24, IPCSE 33, TUCSS 34, TUCSO 50, TUCSE 0
    // (to the end), PAYLEN, TUCMD = DEXT | TSE | IP | TCP, HDRLEN 54, MSS.
    let mut ctx = [0u8; 16];
    ctx[0] = 14;
    ctx[1] = 24;
    ctx[2..4].copy_from_slice(&33u16.to_le_bytes());
    ctx[4] = 34;
    ctx[5] = 50;
    ctx[8..12].copy_from_slice(&(p.len() as u32).to_le_bytes());
    ctx[11] = 0x20 | 0x04 | 0x02 | 0x01;
    ctx[13] = 54;
    ctx[14..16].copy_from_slice(&mss.to_le_bytes());
    // Data descriptor: the whole frame, DTYP 1, DCMD = DEXT | TSE | RS | EOP,
    // POPTS = IXSM | TXSM.
    let mut data = [0u8; 16];
    data[0..8].copy_from_slice(&TX_BUFFERS.to_le_bytes());
    data[8..12].copy_from_slice(&(frame.len() as u32 | 1 << 20).to_le_bytes());
    data[11] = 0x20 | 0x04 | 0x08 | 0x01;
    data[13] = 0x03;
    poke(&mut h, TX_RING, &ctx);
    poke(&mut h, TX_RING + 16, &data);
    let from = next_op(&h);
    write(&mut h, 0x3818, 4, 2); // TDT
    check_segments(&h, from, p, mss as usize, seq0)
}

fn cplus_large_send(p: &[u8], mss: u16, seq0: u32) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return Ok(());
    };
    let mut frame = tcp_header(p.len(), seq0);
    frame.extend_from_slice(p);
    poke(&mut h, TX_BUFFERS, &frame);
    // OWN | FS | LS | LGSEN, MSS in bits 16-26.
    let d = Descriptor {
        addr: GuestAddr::InRam(TX_BUFFERS as u32),
        len: frame.len() as u16,
        flags: 0x8000 | 0x2000 | 0x1000 | 0x0800 | (mss & 0x7ff),
        extra: 0,
    };
    step(
        &mut h,
        &Op::PlaceRing {
            ring: RingSel::Tx,
            first: 0,
            descriptors: vec![d],
        },
    );
    let from = next_op(&h);
    write(&mut h, 0xd9, 1, 0x40); // TPPoll NPQ
    check_segments(&h, from, p, mss as usize, seq0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn e1000_tso_segments_reassemble_with_valid_checksums(
        variant in 0usize..3,
        len in 1usize..=9000,
        mss in 64u16..=1460,
        seq0 in any::<u32>(),
        seed in any::<u8>(),
    ) {
        let kind = [DeviceKind::E1000, DeviceKind::E1000_82544GC, DeviceKind::E1000_82545EM][variant];
        e1000_tso(kind, &payload(len, seed), mss, seq0)?;
    }

    #[test]
    fn rtl8139_cplus_large_send_segments_reassemble_with_valid_checksums(
        len in 1usize..=9000,
        mss in 64u16..=1460,
        seq0 in any::<u32>(),
        seed in any::<u8>(),
    ) {
        cplus_large_send(&payload(len, seed), mss, seq0)?;
    }
}
