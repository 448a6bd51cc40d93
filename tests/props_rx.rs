//! Property: a frame from the network, read back by the guest driver's sequence, is
//! byte-identical (followed at most by the 4-byte FCS the hardware stores). e1000:
//! descriptors from the ring head, across buffers of 256 bytes or 2 KiB; RTL8139 normal
//! mode: the ring-buffer packet header and data; RTL8139C+: the first receive
//! descriptor; NE2000: the packet header and data by remote DMA read from card memory.

mod props_support;

use props_support::*;
use proptest::prelude::*;
use vm_memory::{Bytes, GuestAddress};
use vm_nic::fuzzing::layout::{RING_ENTRIES, RX_BUFFERS, RX_RING, RX_RING_BUFFER};
use vm_nic::fuzzing::{DeviceKind, Harness, Op, RxDest};
use vm_nic_devices::RxOutcome;

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect();
    f[0..6].copy_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    f
}

fn deliver(h: &mut Harness, f: &[u8]) -> Result<(), TestCaseError> {
    step(
        h,
        &Op::Receive {
            dest: RxDest::AsIs,
            len: 0,
            fill: 0,
            head: f.to_vec(),
        },
    );
    let ev = h.outcome().rx.last().copied();
    prop_assert_eq!(ev.map(|e| e.outcome), Some(RxOutcome::Accepted));
    Ok(())
}

fn ram(h: &mut Harness, addr: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    h.ram()
        .memory()
        .read_slice(&mut b, GuestAddress(addr))
        .unwrap();
    b
}

/// The stored bytes are the frame, then nothing or the 4-byte FCS.
fn check_stored(stored: &[u8], f: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        stored.len() == f.len() || stored.len() == f.len() + 4,
        "stored {} bytes for a {}-byte frame",
        stored.len(),
        f.len()
    );
    prop_assert_eq!(&stored[..f.len()], f);
    Ok(())
}

fn e1000_case(kind: DeviceKind, f: &[u8], small: bool) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(kind) else {
        return Ok(());
    };
    let (bsize, rctl_size) = if small { (256, 3 << 16) } else { (2048, 0) };
    write(
        &mut h,
        0x100,
        4,
        1 << 1 | 1 << 3 | 1 << 4 | 1 << 15 | rctl_size,
    ); // RCTL
    deliver(&mut h, f)?;
    let mut stored = Vec::new();
    for i in 0..RING_ENTRIES {
        let d = ram(&mut h, RX_RING + i * 16, 16);
        let len = u16::from_le_bytes([d[8], d[9]]) as usize;
        prop_assert!(d[12] & 1 != 0, "descriptor {} not done", i);
        prop_assert!(len <= bsize);
        let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
        stored.extend(ram(&mut h, addr, len));
        if d[12] & 2 != 0 {
            break; // EOP
        }
    }
    check_stored(&stored, f)
}

fn rtl8139_c_case(f: &[u8]) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139) else {
        return Ok(());
    };
    deliver(&mut h, f)?;
    let hdr = ram(&mut h, RX_RING_BUFFER, 4);
    prop_assert!(hdr[0] & 1 != 0, "ROK");
    let len = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
    let stored = ram(&mut h, RX_RING_BUFFER + 4, len);
    check_stored(&stored, f)
}

fn rtl8139_cplus_case(f: &[u8]) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return Ok(());
    };
    deliver(&mut h, f)?;
    let d = ram(&mut h, RX_RING, 16);
    let opts1 = u32::from_le_bytes(d[0..4].try_into().unwrap());
    prop_assert_eq!(opts1 & 1 << 31, 0, "descriptor still owned by the NIC");
    prop_assert_eq!(opts1 & (3 << 28), 3 << 28, "FS and LS");
    let len = (opts1 & 0x1fff) as usize;
    let stored = ram(&mut h, RX_BUFFERS, len);
    check_stored(&stored, f)
}

fn ne2k_case(kind: DeviceKind, f: &[u8]) -> Result<(), TestCaseError> {
    let Some(mut h) = driver_ready(kind) else {
        return Ok(());
    };
    write(&mut h, 0x0e, 1, 0x48); // DCR: byte transfers
    deliver(&mut h, f)?;
    // The prologue set CURR to page 0x47: the packet starts there.
    let remote_read = |h: &mut Harness, at: u32, n: usize| {
        write(h, 0x08, 1, at & 0xff);
        write(h, 0x09, 1, at >> 8);
        write(h, 0x0a, 1, n as u32 & 0xff);
        write(h, 0x0b, 1, n as u32 >> 8);
        write(h, 0x00, 1, 0x0a); // CR: remote read, STA
        (0..n).map(|_| read(h, 0x10, 1) as u8).collect::<Vec<u8>>()
    };
    let hdr = remote_read(&mut h, 0x4700, 4);
    prop_assert!(hdr[0] & 1 != 0, "PRX in the receive status");
    let count = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
    prop_assert!(
        count >= 4 + f.len(),
        "count {} for {} bytes",
        count,
        f.len()
    );
    let stored = remote_read(&mut h, 0x4704, count - 4);
    check_stored(&stored, f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn e1000_received_frame_reads_back_identically(
        variant in 0usize..3,
        small in any::<bool>(),
        len in 60usize..=1514,
        seed in any::<u8>(),
    ) {
        let kind = [DeviceKind::E1000, DeviceKind::E1000_82544GC, DeviceKind::E1000_82545EM][variant];
        e1000_case(kind, &frame(len, seed), small)?;
    }

    #[test]
    fn rtl8139_received_frame_reads_back_identically(
        cplus in any::<bool>(),
        len in 60usize..=1514,
        seed in any::<u8>(),
    ) {
        if cplus {
            rtl8139_cplus_case(&frame(len, seed))?;
        } else {
            rtl8139_c_case(&frame(len, seed))?;
        }
    }

    #[test]
    fn ne2000_received_frame_reads_back_identically(
        isa in any::<bool>(),
        len in 60usize..=1514,
        seed in any::<u8>(),
    ) {
        let kind = if isa { DeviceKind::Ne2kIsa } else { DeviceKind::Ne2kPci };
        ne2k_case(kind, &frame(len, seed))?;
    }
}
