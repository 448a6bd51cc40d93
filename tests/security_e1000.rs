//! Security regression suite for the e1000 family: each QEMU e1000 CVE in
//! shared/reference/PEERS.md as the guest sequence that triggered it, run through the
//! fuzzing harness on all three variants. Besides the assertions of each test, every
//! step is checked by the harness's oracles (work budget per op, INTx consistency,
//! frame length, frames only on a doorbell, DMA only while bus mastering).

mod security_support;

use security_support::*;
use vm_nic::fuzzing::layout::{MMIO_BASE, RING_ENTRIES, RX_RING, TX_BUFFERS, TX_RING};
use vm_nic::fuzzing::{Descriptor, DeviceKind, GuestAddr, Harness, Op, RingSel};
use vm_nic_devices::RxOutcome;

const E1000S: [DeviceKind; 3] = [
    DeviceKind::E1000,
    DeviceKind::E1000_82544GC,
    DeviceKind::E1000_82545EM,
];

// Registers (Intel 8254x SDM table 13-2) and bits.
const RCTL: u32 = 0x0100;
const RDH: u32 = 0x2810;
const RDT: u32 = 0x2818;
const RDLEN: u32 = 0x2808;
const TDLEN: u32 = 0x3808;
const TDH: u32 = 0x3810;
const TDT: u32 = 0x3818;
const RCTL_BASE: u32 = 1 << 1 | 1 << 3 | 1 << 4 | 1 << 15; // EN UPE MPE BAM, 2 KiB
const RCTL_LPE: u32 = 1 << 5;
const RCTL_LBM_MAC: u32 = 1 << 6;

// Descriptor command bits (SDM 3.3.3, 3.3.6, 3.3.7).
const EOP: u8 = 0x01;
const RS: u8 = 0x08;
const DEXT: u8 = 0x20;
const TSE: u8 = 0x04;
const TUCMD_TCP: u8 = 0x01;
const TUCMD_IP: u8 = 0x02;

fn legacy(addr: u64, len: u16, cmd: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..10].copy_from_slice(&len.to_le_bytes());
    d[11] = cmd;
    d
}

/// A TCP/IP context descriptor: checksum offsets for Ethernet + IPv4 + TCP, `paylen`,
/// header length and MSS as given.
fn context(paylen: u32, tucmd: u8, hdrlen: u8, mss: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0] = 14; // IPCSS
    d[1] = 24; // IPCSO
    d[2..4].copy_from_slice(&33u16.to_le_bytes()); // IPCSE
    d[4] = 34; // TUCSS
    d[5] = 50; // TUCSO
    d[8..12].copy_from_slice(&(paylen & 0xf_ffff).to_le_bytes()); // PAYLEN, DTYP 0
    d[11] = tucmd | DEXT;
    d[13] = hdrlen;
    d[14..16].copy_from_slice(&mss.to_le_bytes());
    d
}

fn data(addr: u64, dtalen: u32, dcmd: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&((dtalen & 0xf_ffff) | 1 << 20).to_le_bytes()); // DTYP 1
    d[11] = dcmd | DEXT;
    d
}

/// Places `descs` at the tail of the prologue's 64-entry TX ring and rings the doorbell.
fn transmit(h: &mut Harness, descs: &[[u8; 16]]) {
    let tdt = read(h, TDT, 4) as u64;
    for (i, d) in descs.iter().enumerate() {
        let slot = (tdt + i as u64) % RING_ENTRIES;
        poke(h, TX_RING + slot * 16, d);
    }
    write(
        h,
        TDT,
        4,
        ((tdt + descs.len() as u64) % RING_ENTRIES) as u32,
    );
}

/// A 54-byte Ethernet/IPv4/TCP header followed by `payload` bytes of 0x42.
fn tcp_frame(payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 54 + payload];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[46] = 0x50;
    f[54..].fill(0x42);
    f
}

/// CVE-2012-6075: QEMU wrote a frame longer than the receive buffer when SBP and LPE
/// were clear. A long frame without LPE must be discarded; with LPE it may only land
/// in the buffers the guest posted.
#[test]
fn cve_2012_6075_oversized_receive_stays_in_posted_buffers() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        let from = next_op(&h);
        receive(&mut h, 100, 0x10);
        let ev = *h.outcome().rx.last().expect("frame offered");
        assert_eq!(ev.outcome, RxOutcome::Accepted, "{kind}: control frame");
        receive(&mut h, 3000, 0x11);
        let ev = *h.outcome().rx.last().expect("frame offered");
        assert_ne!(
            ev.outcome,
            RxOutcome::Accepted,
            "{kind}: > 1522 bytes with LPE clear"
        );
        write(&mut h, RCTL, 4, RCTL_BASE | RCTL_LPE);
        receive(&mut h, 16384 + 100, 0x22);
        receive(&mut h, 65535, 0x33);
        assert_dma_within(&h, from, &posted_rx(RX_RING, 16));
    }
}

/// CVE-2015-6815: a TSO context with header length 0 and MSS 0 made QEMU loop forever.
#[test]
fn cve_2015_6815_tso_with_zero_header_and_mss_terminates() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        poke(&mut h, TX_BUFFERS, &tcp_frame(946));
        transmit(&mut h, &[legacy(TX_BUFFERS, 100, EOP | RS)]);
        assert_eq!(h.outcome().frames_sent, 1, "{kind}: control frame");
        transmit(
            &mut h,
            &[
                context(1000, TSE | TUCMD_IP | TUCMD_TCP, 0, 0),
                data(TX_BUFFERS, 1000, TSE | EOP | RS),
            ],
        );
        assert_eq!(
            read(&mut h, TDH, 4),
            read(&mut h, TDT, 4),
            "{kind}: ring consumed"
        );
        assert!(
            h.outcome().frames_sent <= 3,
            "{kind}: {} frames",
            h.outcome().frames_sent
        );
    }
}

/// CVE-2016-1981: a head index beyond the ring length never met the tail, and QEMU
/// walked memory forever. Both rings, head far outside, must stop.
#[test]
fn cve_2016_1981_head_beyond_ring_length_terminates() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        poke(&mut h, TX_BUFFERS, &tcp_frame(100));
        for i in 0..RING_ENTRIES {
            poke(&mut h, TX_RING + i * 16, &legacy(TX_BUFFERS, 154, EOP | RS));
        }
        write(&mut h, TDLEN, 4, 128); // 8 descriptors
        write(&mut h, TDH, 4, 40);
        write(&mut h, TDT, 4, 3);
        assert!(
            h.outcome().frames_sent <= 64,
            "{kind}: {}",
            h.outcome().frames_sent
        );
        write(&mut h, RDLEN, 4, 128);
        write(&mut h, RDH, 4, 40);
        write(&mut h, RDT, 4, 3);
        receive(&mut h, 60, 0x44);
        receive(&mut h, 1500, 0x45);
    }
}

/// CVE-2021-20257: a legacy descriptor chained into a TSO data descriptor made QEMU's
/// remaining-bytes computation underflow into an infinite loop.
#[test]
fn cve_2021_20257_legacy_then_tso_data_descriptor_terminates() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        poke(&mut h, TX_BUFFERS, &tcp_frame(400));
        transmit(
            &mut h,
            &[
                context(1000, TSE | TUCMD_IP | TUCMD_TCP, 54, 10),
                legacy(TX_BUFFERS, 200, 0),
                data(TX_BUFFERS, 100, TSE | EOP | RS),
                data(TX_BUFFERS, 0, TSE | EOP | RS),
            ],
        );
        assert_eq!(
            read(&mut h, TDH, 4),
            read(&mut h, TDT, 4),
            "{kind}: ring consumed"
        );
    }
}

/// CVE-2020-28916 (e1000e): receive descriptors with buffer address 0 made QEMU spin.
/// Address 0 and addresses outside RAM must both end the walk.
#[test]
fn cve_2020_28916_receive_buffers_at_zero_or_outside_ram_terminate() {
    for kind in E1000S {
        for addr in [
            GuestAddr::Raw(0),
            GuestAddr::Raw(u64::MAX - 8),
            GuestAddr::Raw(1 << 40),
        ] {
            let Some(mut h) = driver_ready(kind) else {
                continue;
            };
            let ring = Op::PlaceRing {
                ring: RingSel::Rx,
                first: 0,
                descriptors: vec![
                    Descriptor {
                        addr,
                        len: 0,
                        flags: 0,
                        extra: 0,
                    };
                    RING_ENTRIES as usize
                ],
            };
            step(&mut h, &ring);
            receive(&mut h, 1514, 0x55);
            receive(&mut h, 60, 0x56);
        }
    }
}

/// CVE-2023-3019: a DMA aimed at the device's own MMIO re-entered its register handlers
/// in QEMU. vm-nic's DMA reaches guest RAM only: buffers at the BAR's address fail as a
/// master abort and leave the registers alone.
#[test]
fn cve_2023_3019_dma_at_own_mmio_never_reaches_the_registers() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        let rctl = read(&mut h, RCTL, 4);
        let mmio = |reg: u32| GuestAddr::Raw(MMIO_BASE + reg as u64);
        let rx = Op::PlaceRing {
            ring: RingSel::Rx,
            first: 0,
            descriptors: vec![
                Descriptor {
                    addr: mmio(RCTL),
                    len: 0,
                    flags: 0,
                    extra: 0,
                };
                RING_ENTRIES as usize
            ],
        };
        step(&mut h, &rx);
        receive(&mut h, 200, 0);
        transmit(&mut h, &[legacy(MMIO_BASE + TDT as u64, 60, EOP | RS)]);
        assert_eq!(read(&mut h, RCTL, 4), rctl, "{kind}: RCTL changed by DMA");
        assert_eq!(
            h.outcome().frames_sent,
            0,
            "{kind}: sent bytes it could not read"
        );
    }
}

/// CVE-2021-3416: loopback plus receive DMA into the device's own transmit ring made
/// QEMU recurse without bound. MAC loopback with receive buffers over the transmit ring
/// must stay bounded per doorbell.
#[test]
fn cve_2021_3416_loopback_into_own_ring_is_bounded() {
    for kind in E1000S {
        let Some(mut h) = driver_ready(kind) else {
            continue;
        };
        write(&mut h, RCTL, 4, RCTL_BASE | RCTL_LBM_MAC);
        let rx = Op::PlaceRing {
            ring: RingSel::Rx,
            first: 0,
            descriptors: vec![
                Descriptor {
                    addr: GuestAddr::InRam(TX_RING as u32),
                    len: 0,
                    flags: 0,
                    extra: 0,
                };
                RING_ENTRIES as usize
            ],
        };
        step(&mut h, &rx);
        // The frame is itself a ring full of transmit descriptors.
        let mut frame = Vec::new();
        for _ in 0..RING_ENTRIES {
            frame.extend_from_slice(&legacy(TX_BUFFERS, 1024, EOP | RS));
        }
        poke(&mut h, TX_BUFFERS, &frame);
        transmit(&mut h, &[legacy(TX_BUFFERS, 1024, EOP | RS)]);
        for _ in 0..4 {
            let tdt = read(&mut h, TDT, 4);
            write(&mut h, TDT, 4, (tdt + 1) % RING_ENTRIES as u32);
        }
        assert!(h.outcome().frames_sent <= 5 * RING_ENTRIES);
    }
}
