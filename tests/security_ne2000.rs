//! Security regression suite for the NE2000 (PCI and ISA) through the fuzzing harness.
//! The ring CVEs (CVE-2015-5278, CVE-2015-5279, CVE-2016-2841, CVE-2018-10839) have
//! named unit tests next to the model (`nics/src/ne2000/tests`); here they run again as
//! guest sequences under the harness's oracles (work budget per op, no guest-RAM writes
//! by a device that is not a bus master, INTx consistency), together with the net-layer
//! loopback CVE that applies to the NE2000's TCR loopback.

mod security_support;

use security_support::*;
use vm_nic::fuzzing::{DeviceKind, Harness};

const NE2K: [DeviceKind; 2] = [DeviceKind::Ne2kPci, DeviceKind::Ne2kIsa];

// DP8390D page-0 registers and command values.
const CR: u32 = 0x00;
const PSTART: u32 = 0x01;
const PSTOP: u32 = 0x02;
const BNRY: u32 = 0x03;
const TPSR: u32 = 0x04;
const TBCR0: u32 = 0x05;
const TBCR1: u32 = 0x06;
const RSAR0: u32 = 0x08;
const RSAR1: u32 = 0x09;
const RBCR0: u32 = 0x0a;
const RBCR1: u32 = 0x0b;
const TCR: u32 = 0x0d;
const DATA: u32 = 0x10;
const CR_PAGE0_START: u32 = 0x22; // STA, remote DMA aborted
const CR_PAGE1_START: u32 = 0x62;
const CR_REMOTE_WRITE: u32 = 0x12;
const CR_TRANSMIT: u32 = 0x26;
const CURR: u32 = 0x07; // page 1

fn set_ring(h: &mut Harness, pstart: u32, pstop: u32, bnry: u32, curr: u32) {
    write(h, CR, 1, CR_PAGE0_START);
    write(h, PSTART, 1, pstart);
    write(h, PSTOP, 1, pstop);
    write(h, BNRY, 1, bnry);
    write(h, CR, 1, CR_PAGE1_START);
    write(h, CURR, 1, curr);
    write(h, CR, 1, CR_PAGE0_START);
}

/// Copies `frame` into card memory at page 0x40 by remote DMA and transmits it.
fn transmit(h: &mut Harness, frame: &[u8]) {
    let len = frame.len() as u32;
    write(h, RSAR0, 1, 0);
    write(h, RSAR1, 1, 0x40);
    write(h, RBCR0, 1, len & 0xff);
    write(h, RBCR1, 1, len >> 8);
    write(h, CR, 1, CR_REMOTE_WRITE);
    for pair in frame.chunks(2) {
        let v = pair[0] as u32 | (*pair.get(1).unwrap_or(&0) as u32) << 8;
        write(h, DATA, 2, v);
    }
    write(h, TPSR, 1, 0x40);
    write(h, TBCR0, 1, len & 0xff);
    write(h, TBCR1, 1, len >> 8);
    write(h, CR, 1, CR_TRANSMIT);
}

/// CVE-2015-5278, CVE-2015-5279, CVE-2016-2841, CVE-2018-10839: QEMU's receive looped
/// forever or wrote outside its buffer with PSTART/PSTOP/BNRY/CURR crafted against each
/// other or against the memory size, and with frames of extreme sizes. Every combination
/// here must keep each receive within the work budget, touch no guest RAM, and keep the
/// interrupt line consistent.
#[test]
fn ring_cves_crafted_ring_registers_stay_bounded_under_the_oracles() {
    let rings = [
        (0x46, 0x80, 0x46, 0x47), // sane control
        (0x46, 0x80, 0x46, 0xff), // CURR beyond PSTOP and memory (5278, 5279)
        (0x80, 0x46, 0x46, 0x47), // PSTART > PSTOP (2841)
        (0x46, 0x46, 0x46, 0x46), // empty ring
        (0x00, 0xff, 0x00, 0x01), // ring over the PROM and past memory
        (0x7f, 0x80, 0x7f, 0x7f), // one page
        (0x46, 0x80, 0xfe, 0x47), // BNRY outside the ring
    ];
    for kind in NE2K {
        for (i, &(pstart, pstop, bnry, curr)) in rings.iter().enumerate() {
            let Some(mut h) = driver_ready(kind) else {
                break;
            };
            set_ring(&mut h, pstart, pstop, bnry, curr);
            for len in [60u16, 61, 255, 256, 1514, 4000, 16384, 65535] {
                receive(&mut h, len, i as u8);
            }
            if i == 0 {
                let accepted = h
                    .outcome()
                    .rx
                    .iter()
                    .filter(|r| r.outcome == vm_nic_devices::RxOutcome::Accepted)
                    .count();
                assert!(accepted > 0, "{kind}: the sane ring takes frames");
            }
        }
    }
}

/// CVE-2021-3416: loopback let a NIC's own transmission re-enter its receive path
/// without bound. In each TCR loopback mode, with the ring full and frames of every size,
/// each transmit command must end within the work budget and send at most its one frame.
#[test]
fn cve_2021_3416_loopback_transmit_is_bounded() {
    for kind in NE2K {
        for lb in [1u32, 2, 3] {
            let Some(mut h) = driver_ready(kind) else {
                break;
            };
            write(&mut h, TCR, 1, lb << 1);
            let mut frame = vec![0xffu8; 6];
            frame.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x00]);
            frame.resize(1500, 0x3c);
            for _ in 0..40 {
                transmit(&mut h, &frame); // 40 frames overfill the 14 KiB ring
            }
            transmit(&mut h, &[0u8; 1]);
            // DP8390D: modes 1 and 2 loop inside the board; mode 3 loops through the
            // medium, so the frames go out too, one per transmit command.
            let max = if lb == 3 { 41 } else { 0 };
            assert!(
                h.outcome().frames_sent <= max,
                "{kind}: loopback {lb} sent {} frames",
                h.outcome().frames_sent
            );
        }
    }
}
