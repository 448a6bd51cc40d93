//! Security regression suite for the user-mode network (vm-nic's libslirp) and the
//! network layer: each libslirp and QEMU net CVE of shared/reference/PEERS.md that
//! applies to vm-nic's code, as the guest frames that triggered it. The user network runs
//! with `restrict=on` and DNS pointed at 127.0.0.1:9, so nothing leaves the machine.
//!
//! Not applicable, and why (see docs/threat-model.md): CVE-2019-6778, CVE-2020-7039 and
//! CVE-2020-8608 are in libslirp's `tcp_emu` (ident/FTP/IRC payload rewriting), which
//! vm-nic's user network does not have.

use std::net::{Ipv4Addr, SocketAddr};

use vm_nic::fuzzing::hub::{check_hub, HubOp};
use vm_nic_backends::socket::framing::{Deframer, FrameTooLong};
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::{FrameQueue, Hub, NetBackend, MAX_FRAME_LEN};

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const HOST_IP: [u8; 4] = [10, 0, 2, 2];

fn user_net(tftp: Option<std::path::PathBuf>) -> UserNet {
    let mut cfg = UserConfig {
        restrict: true,
        tftp,
        ..UserConfig::default()
    };
    cfg.dns_resolvers = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 9))];
    UserNet::new(cfg).expect("user network")
}

fn csum(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        sum += (u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])) as u32;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet with a valid header checksum; `frag` is the flags/offset word.
fn ipv4(dst: [u8; 4], proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_id(dst, proto, 1, frag, payload)
}

/// [`ipv4`] with an explicit identification field.
fn ipv4_id(dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&GUEST_IP);
    h.extend_from_slice(&dst);
    let c = fold(csum(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP datagram whose length field says `claimed` (checksum 0: none).
fn udp(sport: u16, dport: u16, claimed: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&claimed.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

fn drain(net: &mut UserNet) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    for _ in 0..FrameQueue::DEFAULT_MAX_FRAMES {
        match net.recv(&mut buf) {
            Ok(Some(n)) => out.push(buf[..n].to_vec()),
            _ => break,
        }
    }
    out
}

/// CVE-2019-14378, CVE-2019-15890, CVE-2020-1983, CVE-2018-11806: libslirp's IPv4
/// reassembly (`ip_reass`, `m_cat`) overflowed or used freed memory on crafted fragments.
/// vm-nic's reassembly must answer a well-formed fragmented echo exactly once with
/// exactly its data, and discard a datagram that would exceed 64 KiB, overlapping
/// fragments, and a flood of incomplete datagrams, answering none of them.
#[test]
fn cve_2019_14378_and_reassembly_family_crafted_fragments_are_discarded() {
    let mut net = user_net(None);
    let icmp = {
        let mut p = vec![8, 0, 0, 0, 0, 1, 0, 1];
        p.extend_from_slice(&[0x61; 1400]);
        let c = fold(csum(0, &p));
        p[2..4].copy_from_slice(&c.to_be_bytes());
        p
    };
    const MF: u16 = 0x2000;
    // Well formed, last fragment first: reassembled and answered once.
    net.send(&eth(
        0x0800,
        &ipv4_id(HOST_IP, 1, 1, 1000 / 8, &icmp[1000..]),
    ))
    .unwrap();
    net.send(&eth(0x0800, &ipv4_id(HOST_IP, 1, 1, MF, &icmp[..1000])))
        .unwrap();
    let replies = drain(&mut net);
    assert_eq!(replies.len(), 1, "the fragmented echo is answered once");
    assert_eq!(
        &replies[0][14 + 28..],
        &icmp[8..],
        "echo data returned as sent"
    );
    let hostile = [
        // Would end past 65535 bytes (CVE-2019-14378's oversized reassembly).
        ipv4_id(HOST_IP, 1, 2, MF, &icmp[..1000]),
        ipv4_id(HOST_IP, 1, 2, 0x1fff, &icmp[..1000]),
        // Overlapping fragments (the m_cat / use-after-free family).
        ipv4_id(HOST_IP, 1, 3, MF, &icmp[..1000]),
        ipv4_id(HOST_IP, 1, 3, 496 / 8, &icmp[496..]),
        // The same fragment twice, then its end.
        ipv4_id(HOST_IP, 1, 4, MF, &icmp[..1000]),
        ipv4_id(HOST_IP, 1, 4, MF, &icmp[..1000]),
        ipv4_id(HOST_IP, 1, 4, 1000 / 8, &icmp[1000..]),
    ];
    for f in &hostile {
        net.send(&eth(0x0800, f)).unwrap();
    }
    for id in 100..400u16 {
        net.send(&eth(0x0800, &ipv4_id(HOST_IP, 17, id, MF, &[0; 8])))
            .unwrap();
    }
    let got = drain(&mut net);
    assert!(
        got.iter().all(|f| f.len() <= 1514 && f[14 + 20] != 0),
        "an echo reply to a crafted datagram"
    );
    assert!(net.stats().fragments >= 2 + hostile.len() as u64);
}

/// CVE-2020-10756: libslirp's ICMPv6 echo reply read past the request. The reply must
/// carry exactly the request's data, for every data length including none.
#[test]
fn cve_2020_10756_icmpv6_echo_reply_carries_only_the_request() {
    let mut net = user_net(None);
    let src: [u8; 16] = [
        0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0x12, 0x34, 0x56,
    ];
    let mut dst = [0u8; 16];
    dst[0] = 0xfe;
    dst[1] = 0xc0;
    dst[15] = 2;
    for len in [0usize, 1, 7, 1000] {
        let mut icmp = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
        icmp.extend((0..len).map(|i| i as u8 ^ 0x5a));
        let mut pseudo = csum(0, &src);
        pseudo = csum(pseudo, &dst);
        pseudo += icmp.len() as u32 + 58;
        let c = fold(csum(pseudo, &icmp));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip6 = vec![0x60, 0, 0, 0];
        ip6.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        ip6.extend_from_slice(&[58, 64]);
        ip6.extend_from_slice(&src);
        ip6.extend_from_slice(&dst);
        ip6.extend_from_slice(&icmp);
        net.send(&eth(0x86dd, &ip6)).unwrap();
        // Claim more payload than the frame has: must be dropped, not over-read.
        let mut lying = ip6.clone();
        lying[4..6].copy_from_slice(&(icmp.len() as u16 + 64).to_be_bytes());
        net.send(&eth(0x86dd, &lying)).unwrap();
        let replies: Vec<Vec<u8>> = drain(&mut net)
            .into_iter()
            .filter(|f| f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[54] == 129)
            .collect();
        assert_eq!(replies.len(), 1, "one echo reply for {len} bytes");
        assert_eq!(&replies[0][62..], &icmp[8..], "reply data for {len} bytes");
    }
}

/// CVE-2021-3592, 3593, 3594, 3595: libslirp's BOOTP, UDPv6, UDP and TFTP handlers read
/// uninitialised or out-of-bounds memory on datagrams shorter than they claimed or than
/// the protocol needs. Each must be dropped (or answered with nothing of the host's).
#[test]
fn cve_2021_3592_to_3595_short_datagrams_are_refused() {
    let dir = std::env::temp_dir().join(format!("vm-nic-tftp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut net = user_net(Some(dir.clone()));
    let before = net.stats().malformed;
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (67, udp(68, 67, 8 + 300, &[1, 1, 6, 0])), // BOOTP, length says 300, has 4
        (67, udp(68, 67, 8 + 4, &[1, 1, 6, 0])),   // BOOTP truncated but honest
        (69, udp(1069, 69, 8 + 50, &[0, 1, b'x', 0])), // TFTP RRQ, length lies
        (69, udp(1069, 69, 8 + 2, &[0, 1])),       // TFTP RRQ with no file name
        (53, udp(1053, 53, 4, &[])),               // UDP length below its header
        (53, udp(1053, 53, 8 + 100, &[0x12])),     // DNS, length lies
    ];
    for (port, d) in &cases {
        let dst = if *port == 53 { [10, 0, 2, 3] } else { HOST_IP };
        net.send(&eth(0x0800, &ipv4(dst, 17, 0, d))).unwrap();
    }
    let replies = drain(&mut net);
    for r in &replies {
        assert!(
            r.len() <= 1514,
            "a {}-byte reply to a short datagram",
            r.len()
        );
    }
    assert!(
        net.stats().malformed >= before + 3,
        "the lying datagrams are malformed: {:?}",
        net.stats()
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// CVE-2018-17963: QEMU's net layer accepted packets over INT_MAX bytes and overflowed
/// sizes. vm-nic bounds a frame everywhere: the queues refuse what exceeds their byte
/// bound, the stream deframer refuses a length over MAX_FRAME_LEN, the hub floods
/// nothing oversized.
#[test]
fn cve_2018_17963_oversized_frames_are_refused_everywhere() {
    let mut q = FrameQueue::new();
    assert!(!q.push(&vec![0; FrameQueue::DEFAULT_MAX_BYTES + 1]));
    assert_eq!(q.dropped(), 1);
    let mut d = Deframer::new();
    let mut stream: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0, 0];
    d.fill(&mut stream).unwrap();
    assert_eq!(d.next_frame().unwrap_err(), FrameTooLong(u32::MAX));
    let hub = Hub::new(0);
    let mut a = hub.add_port();
    let b = hub.add_port();
    a.send(&vec![0; FrameQueue::DEFAULT_MAX_BYTES + 1]).unwrap();
    assert_eq!(b.pending(), 0);
    assert_eq!(b.counters().dropped, 1);
    check_hub(&[
        HubOp::AddPort,
        HubOp::AddPort,
        HubOp::Send {
            port: 0,
            len: u16::MAX,
            fill: 1,
        },
        HubOp::Recv(1),
    ])
    .unwrap();
}
