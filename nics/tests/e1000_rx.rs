//! Receive: filters, VLAN strip, long packets, FCS, buffer sizes, multi-descriptor
//! packets, checksum offload status, out-of-descriptor handling, statistics.

mod e1000_support;

use e1000_support::*;
use vm_nic_devices::{NicDevice, RxOutcome};

const UPE: u32 = 1 << 3;
const MPE: u32 = 1 << 4;
const LPE: u32 = 1 << 5;
const VFE: u32 = 1 << 18;
const BSEX: u32 = 1 << 25;
const SECRC: u32 = 1 << 26;

fn rig(rctl: u32) -> Rig {
    let mut r = Rig::up();
    r.setup_rx(16, rctl);
    r
}

fn other_mac() -> [u8; 6] {
    [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]
}

#[test]
fn unicast_to_our_address_is_stored_with_fcs() {
    let mut r = rig(0);
    let f = eth(MAC, 0x0800, &[0x11; 100]);
    assert!(r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    let (len, st, err, _) = r.rx_status(0);
    assert_eq!(len as usize, f.len() + 4);
    assert_eq!(st & 3, 3, "DD|EOP");
    assert_eq!(err, 0);
    let data = r.rx_data(0, f.len() + 4);
    assert_eq!(&data[..f.len()], &f[..]);
    // The stored FCS is the CRC-32 of the frame.
    let mut c = u32::MAX;
    for &b in &f {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    assert_eq!(&data[f.len()..], &(!c).to_le_bytes());
    assert_eq!(r.r(RDH), 1);
}

#[test]
fn secrc_strips_the_fcs_and_runts_are_padded() {
    let mut r = rig(SECRC);
    let f = eth(MAC, 0x0800, &[1; 10]);
    r.dev.receive(&f);
    assert_eq!(r.rx_status(0).0, 60, "padded to the minimum frame");
}

#[test]
fn address_filters() {
    let mut r = rig(0);
    assert_eq!(
        r.dev.receive(&eth(other_mac(), 0x0800, &[0; 50])),
        RxOutcome::Filtered
    );
    assert_eq!(
        r.dev.receive(&eth([0xff; 6], 0x0800, &[0; 50])),
        RxOutcome::Filtered,
        "BAM off"
    );
    let mc = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    assert_eq!(
        r.dev.receive(&eth(mc, 0x0800, &[0; 50])),
        RxOutcome::Filtered
    );
    // MTA with MO = 0: hash = bits 47:36.
    let h = (mc[4] as u32 >> 4) | (mc[5] as u32) << 4;
    r.w(MTA + 4 * (h >> 5) as u64, 1 << (h & 31));
    assert_eq!(
        r.dev.receive(&eth(mc, 0x0800, &[0; 50])),
        RxOutcome::Accepted
    );
    // Another MO selects other bits: the same table bit no longer matches.
    r.w(RCTL, RCTL_EN | 3 << 12);
    assert_eq!(
        r.dev.receive(&eth(mc, 0x0800, &[0; 50])),
        RxOutcome::Filtered
    );
    // RAL/RAH[5] with AV.
    let o = other_mac();
    r.w(RAL0 + 40, u32::from_le_bytes([o[0], o[1], o[2], o[3]]));
    r.w(RAH0 + 40, u16::from_le_bytes([o[4], o[5]]) as u32);
    assert_eq!(
        r.dev.receive(&eth(o, 0x0800, &[0; 50])),
        RxOutcome::Filtered,
        "AV clear"
    );
    r.w(RAH0 + 40, 1 << 31 | u16::from_le_bytes([o[4], o[5]]) as u32);
    assert_eq!(
        r.dev.receive(&eth(o, 0x0800, &[0; 50])),
        RxOutcome::Accepted
    );
    r.w(RCTL, RCTL_EN | RCTL_BAM);
    assert_eq!(
        r.dev.receive(&eth([0xff; 6], 0x0800, &[0; 50])),
        RxOutcome::Accepted
    );
    r.w(RCTL, RCTL_EN | UPE);
    assert_eq!(
        r.dev.receive(&eth([0x02, 9, 9, 9, 9, 9], 0x0800, &[0; 50])),
        RxOutcome::Accepted
    );
    r.w(RCTL, RCTL_EN | MPE);
    assert_eq!(
        r.dev.receive(&eth([0x01, 9, 9, 9, 9, 9], 0x0800, &[0; 50])),
        RxOutcome::Accepted
    );
}

fn tagged(vid: u16, cfi: bool) -> Vec<u8> {
    let mut p = (vid | if cfi { 1 << 12 } else { 0 } | 5 << 13)
        .to_be_bytes()
        .to_vec();
    p.extend_from_slice(&[0x08, 0x00]);
    p.extend_from_slice(&[0x33; 60]);
    eth(MAC, 0x8100, &p)
}

#[test]
fn vlan_filter_and_strip() {
    let mut r = rig(VFE);
    assert_eq!(r.dev.receive(&tagged(100, false)), RxOutcome::Filtered);
    r.w(VFTA + 4 * (100 >> 5), 1 << (100 & 31));
    assert_eq!(r.dev.receive(&tagged(100, false)), RxOutcome::Accepted);
    let (len, st, _, special) = r.rx_status(0);
    assert_eq!(st & 8, 0, "not stripped without CTRL.VME");
    assert_eq!(len as usize, tagged(100, false).len() + 4);
    let _ = special;
    let c = r.r(CTRL);
    r.w(CTRL, c | 1 << 30);
    let f = tagged(100, false);
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    let (len, st, _, special) = r.rx_status(1);
    assert_eq!(st & 8, 8, "VP");
    assert_eq!(special, 100 | 5 << 13);
    assert_eq!(len as usize, f.len() - 4 + 4);
    let d = r.rx_data(1, 14);
    assert_eq!(&d[12..14], &[0x08, 0x00], "tag removed");
    // CFIEN: CFI must match RCTL.CFI (0).
    r.w(RCTL, RCTL_EN | VFE | 1 << 19);
    assert_eq!(r.dev.receive(&tagged(100, true)), RxOutcome::Filtered);
}

#[test]
fn long_frames_need_lpe_or_sbp() {
    let mut r = rig(0);
    let long = eth(MAC, 0x0800, &vec![0; 1600]);
    assert_eq!(r.dev.receive(&long), RxOutcome::Dropped);
    assert_eq!(r.r(0x40ac), 1, "ROC");
    let max = eth(MAC, 0x0800, &vec![0; 1518 - 14]);
    assert_eq!(
        r.dev.receive(&max),
        RxOutcome::Accepted,
        "1518 + 4 bytes FCS fit"
    );
    r.w(RCTL, RCTL_EN | LPE);
    assert_eq!(r.dev.receive(&long), RxOutcome::Accepted);
    let too_long = eth(MAC, 0x0800, &vec![0; 16384]);
    assert_eq!(r.dev.receive(&too_long), RxOutcome::Dropped);
}

#[test]
fn buffer_sizes_and_multi_descriptor_packets() {
    for (rctl, size) in [
        (0, 2048),
        (1 << 16, 1024),
        (2 << 16, 512),
        (3 << 16, 256),
        (BSEX | 3 << 16, 4096),
        (BSEX | 2 << 16, 8192),
        (BSEX | 1 << 16, 16384),
    ] {
        let mut r = Rig::up();
        r.setup_rx(64, rctl | LPE);
        let f = eth(MAC, 0x0800, &(0..9000).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!(r.dev.receive(&f), RxOutcome::Accepted, "{size}");
        let total = f.len() + 4;
        let n = total.div_ceil(size);
        let mut got = Vec::new();
        for i in 0..n as u64 {
            let (len, st, _, _) = r.rx_status(i);
            let last = i as usize + 1 == n;
            assert_eq!(
                st & 3,
                if last { 3 } else { 1 },
                "EOP only on the last, size {size}"
            );
            assert_eq!(
                len as usize,
                if last { total - size * (n - 1) } else { size }
            );
            got.extend_from_slice(&r.rx_data(i, len as usize));
        }
        assert_eq!(&got[..f.len()], &f[..]);
        assert_eq!(r.r(RDH), n as u32);
    }
}

#[test]
fn checksum_offload_status() {
    let mut r = rig(0);
    let tcp = ipv4_frame(MAC, 6, &[1; 100]);
    r.dev.receive(&tcp);
    let (_, st, err, _) = r.rx_status(0);
    assert_eq!(st & 0x64, 0x60, "IPCS|TCPCS, no IXSM");
    assert_eq!(err, 0);
    let udp = ipv4_frame(MAC, 17, &[1; 100]);
    r.dev.receive(&udp);
    assert_eq!(
        r.rx_status(1).1 & 0x74,
        0x60,
        "IPCS|TCPCS (bit 4 is reserved)"
    );
    let mut bad = tcp.clone();
    bad[60] ^= 0xff;
    r.dev.receive(&bad);
    assert_eq!(r.rx_status(2).2, 0x20, "TCPE");
    let mut bad_ip = tcp.clone();
    bad_ip[22] ^= 1;
    r.dev.receive(&bad_ip);
    assert_eq!(r.rx_status(3).2 & 0x40, 0x40, "IPE");
    r.w(RXCSUM, 0);
    r.dev.receive(&tcp);
    assert_eq!(r.rx_status(4).1 & 0x64, 0x04, "IXSM when offload is off");
    r.dev.receive(&eth(MAC, 0x0806, &[0; 46]));
    r.w(RXCSUM, 0x300);
    r.dev.receive(&eth(MAC, 0x0806, &[0; 46]));
    assert_eq!(r.rx_status(6).1 & 0x64, 0x04, "IXSM for non-IP");
}

#[test]
fn out_of_descriptors_keeps_the_frame_waiting() {
    let mut r = Rig::up();
    r.setup_rx(8, 0);
    let f = eth(MAC, 0x0800, &[0; 100]);
    for _ in 0..7 {
        assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    }
    assert!(!r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::NoBuffer);
    assert_eq!(r.dev.receive(&f), RxOutcome::NoBuffer);
    assert_eq!(r.r(0x40a0), 1, "RNBC counts the stall once");
    assert_eq!(r.r(0x4010), 0, "nothing missed");
    r.w(RDT, 3);
    assert!(r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::Accepted);
    assert_eq!(r.r(RDH), 0, "wrapped");
}

#[test]
fn receiver_needs_enable_link_and_bus_master() {
    let mut r = rig(0);
    let f = eth(MAC, 0x0800, &[0; 100]);
    r.dev.set_link(false);
    assert!(!r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::Filtered);
    r.dev.set_link(true);
    r.wait_link();
    r.dev.config_write(0x04, 2, 0x0003);
    assert_eq!(r.dev.receive(&f), RxOutcome::Filtered);
    r.dev.config_write(0x04, 2, 0x0007);
    r.w(RCTL, 0);
    assert!(!r.dev.can_receive());
    assert_eq!(r.dev.receive(&f), RxOutcome::Filtered);
}

#[test]
fn rx_statistics() {
    let mut r = rig(RCTL_BAM);
    r.dev.receive(&eth(MAC, 0x0800, &[0; 100]));
    r.dev.receive(&eth([0xff; 6], 0x0800, &[0; 1000]));
    assert_eq!(r.r(0x4074), 2, "GPRC");
    assert_eq!(r.r(0x40d0), 2, "TPR");
    assert_eq!(r.r(0x4088), 114 + 4 + 1014 + 4, "GORCL");
    assert_eq!(r.r(0x408c), 0, "GORCH");
    assert_eq!(r.r(0x40c0), 114 + 4 + 1014 + 4, "TORL");
    assert_eq!(r.r(0x4078), 1, "BPRC");
    assert_eq!(r.r(0x4060), 1, "PRC127");
    assert_eq!(r.r(0x406c), 1, "PRC1023");
    assert_eq!(r.r(0x4074), 0, "clear on read");
}

#[test]
fn packet_checksum_is_in_the_first_descriptor() {
    let mut r = Rig::up();
    r.setup_rx(8, 3 << 16); // 256-byte buffers
    let f = eth(MAC, 0x0800, &(0..600).map(|i| i as u8).collect::<Vec<_>>());
    r.dev.receive(&f);
    let mut wire = f.clone();
    wire.extend_from_slice(&r.rx_data(2, 1000)[f.len() - 512..f.len() - 512 + 4]);
    let want = !csum(&wire, 0);
    let first = r.read_mem(RX_RING + 10, 2);
    assert_eq!(
        u16::from_le_bytes([first[0], first[1]]),
        want,
        "sum over DA..FCS"
    );
    assert_eq!(r.read_mem(RX_RING + 16 + 10, 2), vec![0, 0]);
}
