//! Security regression suite for the RTL8139 / RTL8139C+: each QEMU rtl8139 CVE in
//! shared/reference/PEERS.md (and the net-layer ones that reach this model) as the guest
//! sequence that triggered it, run through the fuzzing harness so that every step is
//! also checked by its oracles (work budget, INTx against ISR & IMR, frame length, frames
//! only on a doorbell, DMA only while bus mastering).

mod security_support;

use security_support::*;
use vm_nic::fuzzing::layout::{
    MMIO_BASE, RING_ENTRIES, RX_RING, RX_RING_BUFFER, TX_BUFFERS, TX_RING, TX_RING_HIGH,
};
use vm_nic::fuzzing::{Descriptor, DeviceKind, GuestAddr, Harness, Op, RingSel};
use vm_nic_devices::RxOutcome;

// Registers (RTL8139C+ datasheet register table).
const TSD0: u32 = 0x10;
const RBSTART: u32 = 0x30;
const CR: u32 = 0x37;
const TCR: u32 = 0x40;
const RCR: u32 = 0x44;
const TPPOLL: u32 = 0xd9;
const TPPOLL_HPQ: u32 = 1 << 7;
const TPPOLL_NPQ: u32 = 1 << 6;
const TCR_LOOPBACK: u32 = 3 << 17;
const RCR_ACCEPT_ALL: u32 = 0x0f; // AAP APM AM AB, 8 KiB + 16 ring, no WRAP

// C+ descriptor bits 16-31 (the `flags` half of `Descriptor`).
const OWN: u16 = 1 << 15;
const EOR: u16 = 1 << 14;
const FS: u16 = 1 << 13;
const LS: u16 = 1 << 12;
const LGSEN: u16 = 1 << 11;
const IPCS: u16 = 1 << 2;
const TCPCS: u16 = 1 << 0;

fn tx_desc(addr: u64, len: u16, flags: u16) -> Descriptor {
    Descriptor {
        addr: GuestAddr::InRam(addr as u32),
        len,
        flags: OWN | flags,
        extra: 0,
    }
}

/// Places C+ descriptors from slot `first` of the normal-priority ring and polls.
fn cplus_send(h: &mut Harness, first: u8, descs: Vec<Descriptor>) {
    step(
        h,
        &Op::PlaceRing {
            ring: RingSel::Tx,
            first,
            descriptors: descs,
        },
    );
    write(h, TPPOLL, 1, TPPOLL_NPQ);
}

/// An Ethernet + IPv4 + TCP frame whose IHL says 60 bytes and whose total length says
/// 65535, though the frame is `len` bytes long.
fn lying_ip_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x11u8; len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x4f; // version 4, IHL 15
    f[16..18].copy_from_slice(&0xffffu16.to_be_bytes());
    f[23] = 6;
    f
}

/// CVE-2015-5165: QEMU's C+ checksum/segmentation offload trusted the guest's IHL and
/// IP total length and sent stale host heap bytes. After a frame full of 0x5A, frames
/// with lying IP headers must carry nothing of it.
#[test]
fn cve_2015_5165_cplus_offload_with_lying_ip_header_leaks_nothing() {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return;
    };
    let secret = TX_BUFFERS;
    let lie = TX_BUFFERS + 0x1000;
    poke(&mut h, secret, &[0x5a; 1514]);
    poke(&mut h, lie, &lying_ip_frame(64));
    cplus_send(&mut h, 0, vec![tx_desc(secret, 1514, FS | LS)]);
    assert_eq!(h.outcome().frames_sent, 1, "control frame");
    let from = next_op(&h);
    cplus_send(
        &mut h,
        1,
        vec![
            tx_desc(lie, 64, FS | LS | IPCS | TCPCS),
            tx_desc(lie, 64, FS | LS | LGSEN | 100),
            tx_desc(lie, 20, FS | LS | IPCS | TCPCS | EOR),
        ],
    );
    for f in h.outcome().frames.iter().filter(|f| f.op >= from) {
        assert!(
            !f.data.windows(4).any(|w| w == [0x5a; 4]),
            "bytes of an earlier frame leaked into a {}-byte frame",
            f.data.len()
        );
    }
}

/// CVE-2016-8910: QEMU walked a C+ transmit ring of owned descriptors without bound.
/// 4096 owned descriptors with neither LS nor EOR, on both queues, must end the poll.
#[test]
fn cve_2016_8910_cplus_ring_of_owned_descriptors_terminates() {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return;
    };
    let mut pattern = Vec::new();
    pattern.extend_from_slice(&64u16.to_le_bytes());
    pattern.extend_from_slice(&(OWN | FS).to_le_bytes());
    pattern.extend_from_slice(&0u32.to_le_bytes());
    pattern.extend_from_slice(&TX_BUFFERS.to_le_bytes());
    for ring in [TX_RING, TX_RING_HIGH] {
        step(
            &mut h,
            &Op::FillMemory {
                addr: ring as u32,
                len: 0x1000,
                pattern: pattern.clone(),
            },
        );
    }
    write(&mut h, TPPOLL, 1, TPPOLL_NPQ | TPPOLL_HPQ);
    write(&mut h, TPPOLL, 1, TPPOLL_NPQ);
    assert_eq!(h.outcome().frames_sent, 0, "no descriptor ends a frame");
}

/// CVE-2018-17958: QEMU truncated the received size and wrote past the ring buffer.
/// In normal mode without WRAP, frames of every size must stay inside the 8 KiB + 16
/// ring; in C+ mode inside the posted buffers.
#[test]
fn cve_2018_17958_receive_of_any_size_stays_in_the_ring() {
    for kind in [DeviceKind::Rtl8139, DeviceKind::Rtl8139CPlus] {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        write(&mut h, RCR, 4, RCR_ACCEPT_ALL);
        let from = next_op(&h);
        receive(&mut h, 100, 0x10);
        let ev = *h.outcome().rx.last().expect("frame offered");
        assert_eq!(ev.outcome, RxOutcome::Accepted, "{kind}: control frame");
        for len in [1514u16, 1519, 4000, 8192, 8193, 9000, 16384, 65535] {
            receive(&mut h, len, (len & 0xff) as u8);
        }
        let allowed = if kind == DeviceKind::Rtl8139 {
            vec![(RX_RING_BUFFER, 8192 + 16)]
        } else {
            posted_rx(RX_RING, 16)
        };
        assert_dma_within(&h, from, &allowed);
    }
}

/// CVE-2021-3416: loopback with receive DMA aimed at the device's own transmit ring made
/// QEMU recurse without bound. Loopback frames landing on the C+ transmit ring, and a
/// receive ring at the device's own MMIO BAR (CVE-2023-3019's shape), must stay bounded
/// and leave the registers alone.
#[test]
fn cve_2021_3416_loopback_into_own_ring_and_mmio_is_bounded() {
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139CPlus) else {
        return;
    };
    write(&mut h, TCR, 4, TCR_LOOPBACK);
    let rx = Op::PlaceRing {
        ring: RingSel::Rx,
        first: 0,
        descriptors: (0..RING_ENTRIES)
            .map(|i| Descriptor {
                addr: GuestAddr::InRam(TX_RING as u32),
                len: 2048,
                flags: OWN | if i == RING_ENTRIES - 1 { EOR } else { 0 },
                extra: 0,
            })
            .collect(),
    };
    step(&mut h, &rx);
    let mut frame = Vec::new();
    for _ in 0..RING_ENTRIES {
        frame.extend_from_slice(&1024u16.to_le_bytes());
        frame.extend_from_slice(&(OWN | FS | LS).to_le_bytes());
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(&TX_BUFFERS.to_le_bytes());
    }
    poke(&mut h, TX_BUFFERS, &frame);
    cplus_send(&mut h, 0, vec![tx_desc(TX_BUFFERS, 1024, FS | LS)]);
    for _ in 0..4 {
        write(&mut h, TPPOLL, 1, TPPOLL_NPQ);
    }
    assert!(h.outcome().frames_sent <= 5 * RING_ENTRIES);

    // Normal mode: a receive ring and a transmit buffer at the device's own registers.
    let Some(mut h) = driver_ready(DeviceKind::Rtl8139) else {
        return;
    };
    let mmio = MMIO_BASE + 0x10_0000; // BAR1, the MMIO view of the registers
    write(&mut h, RBSTART, 4, mmio as u32);
    write(&mut h, TCR, 4, TCR_LOOPBACK);
    write(&mut h, 0x20, 4, (mmio + CR as u64) as u32); // TSAD0 at the CR register
    write(&mut h, TSD0, 4, 60);
    receive(&mut h, 60, 0x77);
    assert_eq!(
        read(&mut h, RBSTART, 4),
        mmio as u32,
        "registers untouched by DMA"
    );
}
