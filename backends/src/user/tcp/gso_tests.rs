//! Host→guest data as GSO frames: a crafted established flow sends the same bytes with
//! and without a peer that takes GSO frames, and the software segmentation of the GSO
//! frames must be exactly the frames sent without.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use smoltcp::wire::EthernetAddress;

use super::super::config::UserConfig;
use super::super::guestfwd::HostStream;
use super::super::out::Output;
use super::super::poller::Poller;
use super::super::Ctx;
use super::flow::{Flow, FlowKey, State};
use super::recovery::Cc;
use super::TcpNat;
use crate::gso;
use crate::queue::FrameQueue;
use crate::vnet::VirtioNetHdr;

const GUEST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

/// What one flow sent the guest: each frame with its virtio-net header.
type Sent = Vec<(VirtioNetHdr, Vec<u8>)>;

struct Case {
    v6: bool,
    data: usize,
    window: u32,
    mss: usize,
    host_eof: bool,
    max_segs: usize,
    /// The congestion window the flow starts with: `Cc::new(cwnd_mss)`'s (10 of those
    /// segments, at most 14,600 bytes unless that is below 2 of them).
    cwnd_mss: usize,
}

/// Runs `send_guest` once on a fresh established flow and returns what it queued.
fn send(case: &Case, gso_peer: bool) -> Sent {
    let cfg = UserConfig::default();
    let poller = Poller::new().unwrap();
    let mut out = Output::new(FrameQueue::with_bounds(4096, 16 << 20), cfg.host);
    out.gso = gso_peer;
    let (guest, remote) = if case.v6 {
        let g: Ipv6Addr = "fec0::5054:ff:fe12:3456".parse().unwrap();
        out.learn6(g, GUEST_MAC, true);
        (IpAddr::V6(g), IpAddr::V6("2001:db8::80".parse().unwrap()))
    } else {
        let g = Ipv4Addr::new(10, 0, 2, 15);
        out.learn(g, GUEST_MAC);
        (IpAddr::V4(g), IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)))
    };
    let key = FlowKey {
        guest: SocketAddr::new(guest, 40000),
        remote: SocketAddr::new(remote, 80),
    };
    let (a, _b) = UnixStream::pair().unwrap();
    let mut f = Flow::new(key, HostStream::Unix(a), key.remote, State::Established);
    let iss = 0xffff_0000; // the sequence space wraps inside the data
    f.iss = iss;
    f.snd_una = iss.wrapping_add(1);
    f.snd_nxt = f.snd_una;
    f.snd_max = f.snd_una;
    f.rcv_nxt = 77;
    f.adv_edge = 77;
    f.our_ws = 4;
    f.snd_wnd = case.window;
    f.mss = case.mss;
    f.cc = Cc::new(case.cwnd_mss);
    f.host_eof = case.host_eof;
    f.to_guest = (0..case.data).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut nat = TcpNat::default();
    let id = nat.insert(f);
    let mut cx = Ctx {
        cfg: &cfg,
        forwards: &[],
        out: &mut out,
        poller: &poller,
        now: Instant::now(),
        flows: 1,
    };
    nat.send_guest(&mut cx, id, case.max_segs);
    let mut sent = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while let Some((h, n)) = out.queue.pop_gso_into(&mut buf) {
        sent.push((h, buf[..n].to_vec()));
    }
    sent
}

/// The ordinary frames `sent` stands for.
fn cut(sent: &Sent) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (h, f) in sent {
        v.extend(gso::segment_to_vec(h, f).unwrap());
    }
    v
}

fn check(case: &Case) -> Sent {
    let plain = send(case, false);
    assert!(plain.iter().all(|(h, f)| h.is_plain() && f.len() <= 1514));
    let with_gso = send(case, true);
    assert_eq!(
        cut(&with_gso),
        cut(&plain),
        "GSO frames cut = frames sent without"
    );
    for (h, f) in with_gso.iter().filter(|(h, _)| !h.is_plain()) {
        assert_eq!(usize::from(h.gso_size), case.mss, "cut at the guest's MSS");
        let want = if case.v6 {
            VirtioNetHdr::GSO_TCPV6
        } else {
            VirtioNetHdr::GSO_TCPV4
        };
        assert_eq!(h.gso_type, want);
        assert_eq!(h.flags, VirtioNetHdr::F_NEEDS_CSUM);
        assert!(f.len() <= 14 + 65535);
    }
    with_gso
}

/// IPv4, 100,000 bytes waiting, a 70,000-byte guest window, MSS 1000, no FIN; a
/// congestion window far above the guest's.
fn base() -> Case {
    Case {
        v6: false,
        data: 100_000,
        window: 70_000,
        mss: 1000,
        host_eof: false,
        max_segs: usize::MAX,
        cwnd_mss: 1 << 20,
    }
}

#[test]
fn ipv4_window_bounded_data_goes_out_in_two_gso_frames() {
    let sent = check(&base());
    // 65 segments' worth fit 64 KiB, then the 5 the window still allows.
    let payloads: Vec<usize> = sent.iter().map(|(_, f)| f.len() - 54).collect();
    assert_eq!(payloads, vec![65_000, 5_000]);
    assert_eq!(cut(&sent).len(), 70);
}

#[test]
fn a_congestion_window_cut_ends_on_a_whole_segment() {
    // cwnd 5,360 bytes: five 1000-byte segments one by one, then no runt; the GSO frame
    // carries the same five.
    let case = Case {
        cwnd_mss: 536,
        ..base()
    };
    let sent = check(&case);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.len(), 54 + 5000);
    // The initial window of RFC 6928 at MSS 1460: ten whole segments in one frame.
    let case = Case {
        mss: 1460,
        cwnd_mss: 1460,
        ..base()
    };
    let sent = check(&case);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.len(), 54 + 14_600);
}

#[test]
fn ipv6_data_with_fin_ends_in_one_gso_frame() {
    let case = Case {
        v6: true,
        data: 3_500,
        window: 1 << 20,
        mss: 1220,
        host_eof: true,
        ..base()
    };
    let sent = check(&case);
    assert_eq!(sent.len(), 1);
    let segs = cut(&sent);
    assert_eq!(segs.len(), 3);
    let flags: Vec<u8> = segs.iter().map(|s| s[54 + 13]).collect();
    assert_eq!(
        flags,
        vec![0x10, 0x10, 0x11],
        "FIN on the last segment only"
    );
}

#[test]
fn one_segment_or_one_mss_is_an_ordinary_frame() {
    for (data, max_segs) in [(900, usize::MAX), (50_000, 1)] {
        let case = Case {
            data,
            window: 1 << 20,
            mss: 1460,
            max_segs,
            ..base()
        };
        let sent = check(&case);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].0.is_plain());
    }
}

#[test]
fn unknown_guest_mac_falls_back_to_ordinary_frames() {
    let cfg = UserConfig::default();
    let mut out = Output::new(FrameQueue::new(), cfg.host);
    out.gso = true;
    let repr = smoltcp::wire::TcpRepr {
        src_port: 80,
        dst_port: 40000,
        control: smoltcp::wire::TcpControl::Psh,
        seq_number: smoltcp::wire::TcpSeqNumber(5),
        ack_number: Some(smoltcp::wire::TcpSeqNumber(9)),
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[1; 2500],
    };
    let (src, dst) = (Ipv4Addr::new(10, 0, 2, 2), Ipv4Addr::new(10, 0, 2, 15));
    out.tcp_gso(src.into(), dst.into(), &repr, 1000);
    // Only ARP requests are queued (one per held frame, as for any frame); the three
    // segments wait for the answer.
    assert_eq!(out.queue.len(), 3);
    assert!(out.queue.front().is_some_and(|f| f[12..14] == [0x08, 0x06]));
    out.learn(dst, GUEST_MAC);
    let mut buf = vec![0u8; 2000];
    let mut lens = Vec::new();
    while let Some((h, n)) = out.queue.pop_gso_into(&mut buf) {
        assert!(h.is_plain());
        lens.push(n);
    }
    assert_eq!(lens, vec![60, 60, 60, 1054, 1054, 554]);
}
