//! The TCP NAT under loss and reordering: the guest's out-of-order segments kept and
//! delivered once, SACK blocks, fast retransmit and NewReno / SACK recovery of dropped
//! host-to-guest segments, the retransmission timeout and the congestion window after
//! it, hostile SACK options and sequence numbers, and a closed connection's 4-tuple
//! reused. The test plays the guest with crafted segments against servers on 127.0.0.1.
#![cfg(feature = "user")]

mod user_util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);
const MSS: usize = 1460;

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// A segment to the guest with its SACK option parsed.
struct Out {
    seg: Seg,
    sack_permitted: bool,
    sack: Vec<(u32, u32)>,
}

fn parse_out(f: &[u8]) -> Option<Out> {
    let seg = parse_tcp(f)?;
    let ip = parse_ip4(f)?;
    let p = TcpPacket::new_checked(&ip.payload[..]).ok()?;
    let r = TcpRepr::parse(&p, &ip.src.into(), &ip.dst.into(), &Default::default()).ok()?;
    Some(Out {
        seg,
        sack_permitted: r.sack_permitted,
        sack: r.sack_ranges.iter().flatten().copied().collect(),
    })
}

/// A guest segment of `g`'s connection with SACK options: `sack_ok` offers SACK on a
/// SYN, `sack` are blocks on an ACK.
fn frame(
    g: &GuestTcp,
    control: TcpControl,
    seq: u32,
    payload: &[u8],
    sack_ok: bool,
    sack: &[(u32, u32)],
) -> Vec<u8> {
    let syn = control == TcpControl::Syn;
    let mut ranges = [None; 3];
    for (slot, r) in ranges.iter_mut().zip(sack) {
        *slot = Some(*r);
    }
    let repr = TcpRepr {
        src_port: g.port,
        dst_port: g.remote.1,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: (!syn).then_some(TcpSeqNumber(g.ack as i32)),
        window_len: g.wnd,
        window_scale: syn.then_some(0),
        max_seg_size: syn.then_some(MSS as u16),
        sack_permitted: syn && sack_ok,
        sack_ranges: ranges,
        timestamp: None,
        payload,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut p[..]),
        &g.ip.into(),
        &g.remote.0.into(),
        &ChecksumCapabilities::default(),
    );
    ipv4(g.ip, g.remote.0, IpProtocol::Tcp, &p)
}

/// The guest's pure ACK with SACK blocks.
fn ack_sack(g: &GuestTcp, sack: &[(u32, u32)]) -> Vec<u8> {
    frame(g, TcpControl::None, g.seq, &[], false, sack)
}

/// What is waiting for `g` now, without polling (so without timers or host reads).
fn now_for(n: &mut UserNet, g: &GuestTcp) -> Vec<Out> {
    drain(n)
        .iter()
        .filter_map(|f| parse_out(f))
        .filter(|o| g.owns(&o.seg))
        .collect()
}

/// Polls (real time) until `want` payload bytes for `g` arrived; then `settle` more.
fn collect_bytes(n: &mut UserNet, g: &GuestTcp, want: usize, settle: Duration) -> Vec<Out> {
    let mut got: Vec<Out> = Vec::new();
    pump(n, T, |n| {
        got.extend(now_for(n, g));
        got.iter().map(|o| o.seg.payload.len()).sum::<usize>() >= want
    });
    let end = Instant::now() + settle;
    pump(n, settle, |n| {
        got.extend(now_for(n, g));
        Instant::now() >= end
    });
    got
}

/// Opens a connection from guest port `port` to a new server; `sack_ok` offers SACK.
/// Returns the guest end, the host end, and whether the SYN-ACK offered SACK.
fn open(n: &mut UserNet, port: u16, sack_ok: bool) -> (GuestTcp, TcpStream, bool) {
    open_on(n, &TcpListener::bind("127.0.0.1:0").unwrap(), port, sack_ok)
}

/// As [`open`], to the server `server`.
fn open_on(
    n: &mut UserNet,
    server: &TcpListener,
    port: u16,
    sack_ok: bool,
) -> (GuestTcp, TcpStream, bool) {
    let mut g = GuestTcp::new(port, (GW, server.local_addr().unwrap().port()));
    n.send(&frame(&g, TcpControl::Syn, g.seq, &[], sack_ok, &[]))
        .unwrap();
    let mut sa = Vec::new();
    pump(n, T, |n| {
        sa.extend(now_for(n, &g));
        !sa.is_empty()
    });
    let sa = sa.remove(0);
    assert!(sa.seg.syn && !sa.seg.rst);
    g.seq += 1;
    g.ack = sa.seg.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    let conn = accept_within(server, T);
    (g, conn, sa.sack_permitted)
}

/// Reads exactly `len` bytes from the host end, then checks nothing more came.
fn host_reads(conn: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    conn.read_exact(&mut buf).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut more = [0u8; 1];
    assert!(
        conn.read(&mut more).is_err(),
        "the host got more than was sent"
    );
    conn.set_read_timeout(Some(T)).unwrap();
    buf
}

#[test]
fn out_of_order_guest_segments_reach_the_host_once_in_order() {
    let mut n = net();
    let (mut g, mut conn, _) = open(&mut n, 43000, false);
    let data = pattern(6 * 500, 0x11);
    let base = g.seq;
    let seg = |k: usize| {
        (
            base.wrapping_add(k as u32 * 500),
            &data[k * 500..k * 500 + 500],
        )
    };
    // Segment 0 is "lost"; the rest arrive reordered, one of them twice.
    for k in [2usize, 1, 4, 2, 5, 3] {
        let (seq, d) = seg(k);
        n.send(&frame(&g, TcpControl::None, seq, d, false, &[]))
            .unwrap();
        // Each is answered at once with a duplicate ACK at the hole.
        let acks = now_for(&mut n, &g);
        assert_eq!(acks.len(), 1, "one immediate ACK per out-of-order segment");
        assert_eq!(acks[0].seg.ack, Some(base));
        assert!(acks[0].sack.is_empty(), "SACK was not negotiated");
    }
    assert_eq!(n.connections()[0].recv_q, 5 * 500, "queued, counted");
    // The hole is filled: everything goes to the host, once, and the ACK covers it all.
    let (seq, d) = seg(0);
    n.send(&frame(&g, TcpControl::Psh, seq, d, false, &[]))
        .unwrap();
    let acks = now_for(&mut n, &g);
    assert_eq!(acks.last().unwrap().seg.ack, Some(base + 3000));
    assert_eq!(host_reads(&mut conn, 3000), data);
    g.seq = base + 3000;
    // A late duplicate of an old segment changes nothing.
    let (seq, d) = seg(3);
    n.send(&frame(&g, TcpControl::None, seq, d, false, &[]))
        .unwrap();
    pump(&mut n, Duration::from_millis(50), |_| false);
    assert_eq!(n.connections()[0].recv_q, 0);
}

#[test]
fn sack_is_negotiated_and_blocks_describe_what_lies_beyond_the_hole() {
    let mut n = net();
    let (g, mut conn, offered) = open(&mut n, 43001, true);
    assert!(offered, "the SYN-ACK answers SACK-permitted");
    let (_, _conn2, offered2) = open(&mut n, 43002, false);
    assert!(
        !offered2,
        "no SACK-permitted when the guest did not offer it"
    );
    let base = g.seq;
    let at = |k: u32| base.wrapping_add(k);
    let data = pattern(5000, 0x22);
    let send = |n: &mut UserNet, from: usize, to: usize| {
        let f = frame(
            &g,
            TcpControl::None,
            at(from as u32),
            &data[from..to],
            true,
            &[],
        );
        n.send(&f).unwrap();
        now_for(n, &g)
    };
    let a = send(&mut n, 1000, 2000);
    assert_eq!(a[0].seg.ack, Some(base));
    assert_eq!(a[0].sack, vec![(at(1000), at(2000))]);
    let a = send(&mut n, 3000, 4000);
    assert_eq!(a[0].sack, vec![(at(3000), at(4000)), (at(1000), at(2000))]);
    // The block that changed last comes first (RFC 2018 4).
    let a = send(&mut n, 2000, 2500);
    assert_eq!(a[0].sack, vec![(at(1000), at(2500)), (at(3000), at(4000))]);
    let a = send(&mut n, 4500, 5000);
    assert_eq!(
        a[0].sack,
        vec![
            (at(4500), at(5000)),
            (at(1000), at(2500)),
            (at(3000), at(4000))
        ]
    );
    // The first hole filled: the ACK moves to the next hole, the blocks follow.
    let a = send(&mut n, 0, 1000);
    assert_eq!(a.last().unwrap().seg.ack, Some(at(2500)));
    assert_eq!(
        a.last().unwrap().sack,
        vec![(at(4500), at(5000)), (at(3000), at(4000))]
    );
    let a = send(&mut n, 2500, 3000);
    assert_eq!(a.last().unwrap().seg.ack, Some(at(4000)));
    assert_eq!(a.last().unwrap().sack, vec![(at(4500), at(5000))]);
    let a = send(&mut n, 4000, 4500);
    assert_eq!(a.last().unwrap().seg.ack, Some(at(5000)));
    assert!(a.last().unwrap().sack.is_empty());
    assert_eq!(host_reads(&mut conn, 5000), data);
}

/// Opens a connection and has the host send `segs` full segments, all of which the
/// guest receives; returns the guest, the host end and the segments.
fn download(
    n: &mut UserNet,
    port: u16,
    sack_ok: bool,
    segs: usize,
) -> (GuestTcp, TcpStream, Vec<Seg>) {
    let (g, mut conn, offered) = open(n, port, sack_ok);
    assert_eq!(offered, sack_ok);
    conn.write_all(&pattern(segs * MSS, 0x33)).unwrap();
    let got = collect_bytes(n, &g, segs * MSS, Duration::from_millis(30));
    let got: Vec<Seg> = got.into_iter().map(|o| o.seg).collect();
    assert_eq!(got.len(), segs, "{} segments", got.len());
    for (k, s) in got.iter().enumerate() {
        assert_eq!(s.seq, g.ack.wrapping_add((k * MSS) as u32));
        assert_eq!(s.payload.len(), MSS);
    }
    (g, conn, got)
}

/// Payload segments (no pure ACKs) waiting for `g` now.
fn data_now(n: &mut UserNet, g: &GuestTcp) -> Vec<Seg> {
    now_for(n, g)
        .into_iter()
        .map(|o| o.seg)
        .filter(|s| !s.payload.is_empty())
        .collect()
}

#[test]
fn first_flight_is_the_initial_window() {
    let mut n = net();
    let (g, mut conn, _) = open(&mut n, 43003, false);
    // The guest offers 64 KiB; the host has 40 KiB: ten segments go out (RFC 6928).
    conn.write_all(&pattern(40_000, 0x44)).unwrap();
    let got = collect_bytes(&mut n, &g, 10 * MSS, Duration::from_millis(50));
    let bytes: usize = got.iter().map(|o| o.seg.payload.len()).sum();
    assert_eq!(bytes, 10 * MSS, "the first flight is the initial window");
}

#[test]
fn newreno_resends_the_next_loss_on_a_partial_ack() {
    let mut n = net();
    let (mut g, _conn, segs) = download(&mut n, 43004, false, 10);
    let at = |k: usize| segs[k].seq;
    // Segments 1 and 4 were lost: an ACK for 0, then a duplicate per segment after.
    g.ack = at(1);
    n.send(&g.ack_only()).unwrap();
    for _ in 0..2 {
        n.send(&g.ack_only()).unwrap();
        assert!(
            data_now(&mut n, &g).is_empty(),
            "no retransmission before three"
        );
    }
    n.send(&g.ack_only()).unwrap();
    let r = data_now(&mut n, &g);
    assert_eq!(r.len(), 1, "fast retransmit");
    assert_eq!((r[0].seq, &r[0].payload), (at(1), &segs[1].payload));
    for _ in 0..5 {
        n.send(&g.ack_only()).unwrap();
    }
    assert!(data_now(&mut n, &g).is_empty());
    // Segment 1 arrived: the ACK stops at the next hole, which is resent at once.
    g.ack = at(4);
    n.send(&g.ack_only()).unwrap();
    let r = data_now(&mut n, &g);
    assert_eq!(r.len(), 1, "partial ACK: the next hole resent at once");
    assert_eq!((r[0].seq, &r[0].payload), (at(4), &segs[4].payload));
    g.ack = at(9).wrapping_add(MSS as u32);
    n.send(&g.ack_only()).unwrap();
    assert!(data_now(&mut n, &g).is_empty());
    assert_eq!(n.connections()[0].send_q, 0);
}

#[test]
fn sack_recovery_resends_every_hole_once_without_waiting() {
    let mut n = net();
    let (mut g, _conn, segs) = download(&mut n, 43005, true, 10);
    let at = |k: usize| segs[k].seq;
    // Segments 1, 4 and 7 were lost; the guest SACKs what it holds.
    g.ack = at(1);
    n.send(&ack_sack(&g, &[])).unwrap();
    let mut resent = Vec::new();
    let held: [&[(u32, u32)]; 6] = [
        &[(at(2), at(3))],
        &[(at(2), at(4))],
        &[(at(5), at(6)), (at(2), at(4))],
        &[(at(5), at(7)), (at(2), at(4))],
        &[(at(8), at(9)), (at(5), at(7)), (at(2), at(4))],
        &[(at(8), at(9) + MSS as u32), (at(5), at(7)), (at(2), at(4))],
    ];
    for blocks in held {
        n.send(&ack_sack(&g, blocks)).unwrap();
        resent.extend(data_now(&mut n, &g).into_iter().map(|s| s.seq));
    }
    assert_eq!(
        resent,
        vec![at(1), at(4), at(7)],
        "each hole once, in order"
    );
    g.ack = at(9).wrapping_add(MSS as u32);
    n.send(&ack_sack(&g, &[])).unwrap();
    assert!(data_now(&mut n, &g).is_empty());
    assert_eq!(n.connections()[0].send_q, 0);
}

#[test]
fn timeout_resends_one_segment_then_slow_starts() {
    let mut n = net();
    let (mut g, _conn, segs) = download(&mut n, 43006, false, 10);
    // Every segment lost. Nothing is resent before the timeout ...
    n.poll(Instant::now() + Duration::from_millis(50)).unwrap();
    assert!(
        data_now(&mut n, &g).is_empty(),
        "no retransmission before the RTO"
    );
    // ... and at it, the first segment only (a window of one segment).
    let later = Instant::now() + Duration::from_millis(1500);
    n.poll(later).unwrap();
    let r = data_now(&mut n, &g);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].seq, &r[0].payload), (segs[0].seq, &segs[0].payload));
    // Unanswered, the next timeout waits twice as long (at least 400 ms).
    n.poll(later + Duration::from_millis(250)).unwrap();
    assert!(data_now(&mut n, &g).is_empty(), "backed off");
    n.poll(later + Duration::from_millis(2500)).unwrap();
    let r = data_now(&mut n, &g);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].seq, segs[0].seq);
    // Its ACK lets two more go (slow start), not the rest of the guest's window.
    g.ack = segs[1].seq;
    n.send(&g.ack_only()).unwrap();
    let r = data_now(&mut n, &g);
    let seqs: Vec<u32> = r.iter().map(|s| s.seq).collect();
    assert_eq!(
        seqs,
        vec![segs[1].seq, segs[2].seq],
        "slow start after the timeout"
    );
}

/// A guest ACK carrying raw TCP option bytes `opts` (a multiple of 4 long).
fn raw_ack(g: &GuestTcp, opts: &[u8]) -> Vec<u8> {
    let hlen = 20 + opts.len();
    let mut p = vec![0u8; hlen];
    let mut t = TcpPacket::new_unchecked(&mut p[..]);
    t.set_src_port(g.port);
    t.set_dst_port(g.remote.1);
    t.set_seq_number(TcpSeqNumber(g.seq as i32));
    t.set_ack_number(TcpSeqNumber(g.ack as i32));
    t.set_header_len(hlen as u8);
    t.clear_flags();
    t.set_ack(true);
    t.set_window_len(g.wnd);
    t.options_mut().copy_from_slice(opts);
    t.fill_checksum(&g.ip.into(), &g.remote.0.into());
    ipv4(g.ip, g.remote.0, IpProtocol::Tcp, &p)
}

#[test]
fn hostile_sack_options_and_sequence_numbers_are_bounded() {
    let mut cfg = UserConfig::default();
    cfg.limits.tcp_buffer = 16 * 1024;
    let mut n = UserNet::new(cfg).unwrap();
    let (mut g, _conn, segs) = download(&mut n, 43007, true, 4);
    let (mut up, mut upconn, _) = open(&mut n, 43008, true);
    // Malformed SACK options: bad lengths, a length running past the header.
    let malformed = n.stats().malformed;
    for opts in [
        &[5u8, 3, 0, 0][..],
        &[5, 0, 1, 1],
        &[5, 1, 1, 1],
        &[1, 1, 5, 12, 0, 0, 0, 0, 0, 0, 0, 0],
        &[5, 34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        n.send(&raw_ack(&g, opts)).unwrap();
    }
    assert_eq!(n.stats().malformed, malformed + 5);
    // Well-formed but absurd blocks: the whole sequence space, reversed, below snd_una,
    // beyond what was sent. At worst they count as duplicate ACKs.
    g.ack = segs[1].seq;
    n.send(&ack_sack(&g, &[])).unwrap();
    let una = g.ack;
    for blocks in [
        [(0u32, u32::MAX)],
        [(una.wrapping_add(100), una)],
        [(una.wrapping_sub(5000), una.wrapping_sub(1))],
        [(una, una.wrapping_add(1 << 30))],
    ] {
        n.send(&ack_sack(&g, &blocks)).unwrap();
    }
    let resent = data_now(&mut n, &g);
    assert!(resent.iter().all(|s| s.seq == una), "{resent:?}");
    // The upload side: far-off data, data past the window, and more holes than blocks.
    let base = up.seq;
    let cap = 16 * 1024u32;
    let junk = vec![0x55u8; 8000];
    for (off, len) in [
        (1u32 << 31, 100usize),
        (0x7fff_0000, 1000),
        (cap - 10, 8000),
    ] {
        let f = frame(
            &up,
            TcpControl::None,
            base.wrapping_add(off),
            &junk[..len],
            true,
            &[],
        );
        n.send(&f).unwrap();
    }
    assert_eq!(
        n.connections()[1].recv_q,
        10,
        "only what fits the window is kept"
    );
    for k in 0..200u32 {
        let f = frame(
            &up,
            TcpControl::None,
            base.wrapping_add(2 + 2 * k),
            &[0xAA],
            true,
            &[],
        );
        n.send(&f).unwrap();
    }
    let q = n.connections()[1].recv_q;
    assert!(
        q <= 32 + 10,
        "out-of-order blocks bounded: {q} bytes queued"
    );
    // The guest's real data overwrites nothing it should not, and the flow still works.
    let data = pattern(4000, 0x66);
    for c in data.chunks(1000) {
        n.send(&up.data(c)).unwrap();
    }
    drain(&mut n);
    assert_eq!(host_reads(&mut upconn, 4000), data, "in-order data wins");
    assert_eq!(n.connections()[1].recv_q, 10, "the far block still waits");
}

#[test]
fn new_syn_on_a_closed_4_tuple_opens_a_new_flow() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, _first, _) = open_on(&mut n, &server, 43009, false);
    // The guest closes; the host keeps its end open, so the flow stays in the table.
    n.send(&g.fin()).unwrap();
    let a = wait_segs(&mut n, &g, T);
    assert_eq!(a.last().unwrap().ack, Some(g.seq));
    assert_eq!(n.connections().len(), 1);
    // A retransmitted old SYN is no new connection ...
    let mut old = GuestTcp::new(43009, (GW, port));
    old.seq = 1000;
    n.send(&old.syn()).unwrap();
    let a = now_for(&mut n, &g);
    assert!(a.iter().all(|o| !o.seg.syn), "no SYN-ACK for an old SYN");
    // ... a SYN beyond the old connection's sequence space is.
    let mut again = GuestTcp::new(43009, (GW, port));
    again.seq = g.seq.wrapping_add(100_000);
    n.send(&again.syn()).unwrap();
    let sa = wait_segs(&mut n, &again, T).remove(0);
    assert!(sa.syn && !sa.rst, "{sa:?}");
    assert_eq!(sa.ack, Some(again.seq + 1));
    again.seq += 1;
    again.ack = sa.seq.wrapping_add(1);
    n.send(&again.ack_only()).unwrap();
    let mut second = accept_within(&server, T);
    n.send(&again.data(b"new")).unwrap();
    let mut buf = [0u8; 3];
    pump(&mut n, Duration::from_millis(50), |_| false);
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new");
    assert_eq!(n.connections().len(), 1);
}

#[test]
fn the_guests_last_fin_is_acked() {
    let mut n = net();
    let (mut g, conn, _) = open(&mut n, 43010, false);
    drop(conn);
    // The host closed first: its FIN reaches the guest, which ACKs it, then closes.
    let fin = wait_segs(&mut n, &g, T);
    assert!(fin.iter().any(|s| s.fin));
    g.ack = g.ack.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    let fin_seq = g.seq;
    n.send(&g.fin()).unwrap();
    let a = now_for(&mut n, &g);
    assert_eq!(a.len(), 1, "the last FIN is ACKed");
    assert_eq!(a[0].seg.ack, Some(fin_seq + 1));
    assert!(n.connections().is_empty(), "and the flow is gone");
}
