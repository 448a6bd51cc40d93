//! Property: any frame, split over any descriptor layout the model allows, transmits
//! byte-identically. e1000: legacy descriptors, pieces in scattered buffers; RTL8139C+:
//! FS..LS descriptor chains; NE2000: the frame written into card memory by remote DMA in
//! pieces of any size, by byte or word port writes. Cases run through the fuzzing
//! harness, so its oracles hold throughout.

mod props_support;

use props_support::*;
use proptest::prelude::*;
use vm_nic::fuzzing::layout::{RING_ENTRIES, TX_BUFFERS, TX_RING};
use vm_nic::fuzzing::{Descriptor, DeviceKind, GuestAddr, Op, RingSel};

/// A frame of `len` bytes from `seed`, addressed to someone else.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
    f
}

/// Cuts `len` into pieces at the given fractions (each piece at least one byte).
fn split(len: usize, cuts: &[u16]) -> Vec<std::ops::Range<usize>> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c as usize * len / 65536).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[0]..w[1]).collect()
}

fn e1000_case(kind: DeviceKind, f: &[u8], cuts: &[u16]) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(kind) else {
        return Ok(());
    };
    let pieces = split(f.len(), cuts);
    for (i, r) in pieces.iter().enumerate() {
        // Pieces go into buffers 2 KiB apart, in reverse order, so nothing is contiguous.
        let buf = TX_BUFFERS + (pieces.len() - i) as u64 * 0x800;
        poke(&mut h, buf, &f[r.clone()]);
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&(r.len() as u16).to_le_bytes());
        d[11] = 0x08 | if i == pieces.len() - 1 { 0x01 } else { 0 }; // RS, EOP
        poke(&mut h, TX_RING + i as u64 * 16, &d);
    }
    write(&mut h, 0x3818, 4, pieces.len() as u32 % RING_ENTRIES as u32); // TDT
    prop_assert_eq!(
        h.outcome().frames.len(),
        1,
        "{}: {} pieces",
        kind,
        pieces.len()
    );
    prop_assert_eq!(&h.outcome().frames[0].data[..], f);
    Ok(())
}

fn cplus_case(f: &[u8], cuts: &[u16]) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return Ok(());
    };
    let pieces = split(f.len(), cuts);
    let mut descriptors = Vec::new();
    for (i, r) in pieces.iter().enumerate() {
        let buf = TX_BUFFERS + (pieces.len() - i) as u64 * 0x800;
        poke(&mut h, buf, &f[r.clone()]);
        let mut flags = 0x8000; // OWN
        if i == 0 {
            flags |= 0x2000; // FS
        }
        if i == pieces.len() - 1 {
            flags |= 0x1000; // LS
        }
        descriptors.push(Descriptor {
            addr: GuestAddr::InRam(buf as u32),
            len: r.len() as u16,
            flags,
            extra: 0,
        });
    }
    step(
        &mut h,
        &Op::PlaceRing {
            ring: RingSel::Tx,
            first: 0,
            descriptors,
        },
    );
    write(&mut h, 0xd9, 1, 0x40); // TPPoll NPQ
    prop_assert_eq!(h.outcome().frames.len(), 1, "{} pieces", pieces.len());
    prop_assert_eq!(&h.outcome().frames[0].data[..], f);
    Ok(())
}

fn ne2k_case(kind: DeviceKind, f: &[u8], cuts: &[u16], word: bool) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(kind) else {
        return Ok(());
    };
    write(&mut h, 0x0e, 1, if word { 0x49 } else { 0x48 }); // DCR.WTS
    let mut pieces = split(f.len(), cuts);
    if word {
        // Word transfers move two bytes: keep each piece's start even.
        pieces = split(f.len() / 2, cuts)
            .into_iter()
            .map(|r| 2 * r.start..(2 * r.end).min(f.len()))
            .collect();
        if let Some(last) = pieces.last_mut() {
            last.end = f.len();
        }
    }
    for r in &pieces {
        let at = 0x4000 + r.start as u32;
        write(&mut h, 0x08, 1, at & 0xff); // RSAR0
        write(&mut h, 0x09, 1, at >> 8); // RSAR1
        write(&mut h, 0x0a, 1, r.len() as u32 & 0xff); // RBCR0
        write(&mut h, 0x0b, 1, r.len() as u32 >> 8); // RBCR1
        write(&mut h, 0x00, 1, 0x12); // CR: remote write, STA
        if word {
            for p in f[r.clone()].chunks(2) {
                write(
                    &mut h,
                    0x10,
                    2,
                    p[0] as u32 | (*p.get(1).unwrap_or(&0) as u32) << 8,
                );
            }
        } else {
            for &b in &f[r.clone()] {
                write(&mut h, 0x10, 1, b as u32);
            }
        }
    }
    write(&mut h, 0x04, 1, 0x40); // TPSR
    write(&mut h, 0x05, 1, f.len() as u32 & 0xff); // TBCR0
    write(&mut h, 0x06, 1, f.len() as u32 >> 8); // TBCR1
    write(&mut h, 0x00, 1, 0x26); // CR: TXP, STA, abort remote DMA
    prop_assert_eq!(
        h.outcome().frames.len(),
        1,
        "{}: {} pieces",
        kind,
        pieces.len()
    );
    prop_assert_eq!(&h.outcome().frames[0].data[..], f);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn e1000_frame_split_over_any_descriptors_transmits_identically(
        variant in 0usize..3,
        len in 60usize..=1514,
        seed in any::<u8>(),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        let kind = [DeviceKind::E1000, DeviceKind::E1000_82544GC, DeviceKind::E1000_82545EM][variant];
        e1000_case(kind, &frame(len, seed), &cuts)?;
    }

    #[test]
    fn rtl8139_cplus_frame_split_over_any_descriptors_transmits_identically(
        len in 60usize..=1514,
        seed in any::<u8>(),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        cplus_case(&frame(len, seed), &cuts)?;
    }

    #[test]
    fn ne2000_frame_written_in_any_pieces_transmits_identically(
        isa in any::<bool>(),
        word in any::<bool>(),
        len in 60usize..=1514,
        seed in any::<u8>(),
        cuts in prop::collection::vec(any::<u16>(), 0..8),
    ) {
        let kind = if isa { DeviceKind::Ne2kIsa } else { DeviceKind::Ne2kPci };
        ne2k_case(kind, &frame(len, seed), &cuts, word)?;
    }
}
