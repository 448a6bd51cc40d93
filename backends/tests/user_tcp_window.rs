//! The TCP NAT's handling of the guest's receive window: zero-window probes, window
//! reopening, and what counts as a duplicate ACK. The test plays the guest with crafted
//! segments against a host server on 127.0.0.1.
#![cfg(feature = "user")]

mod user_util;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use user_util::*;
use vm_nic_backends::user::UserNet;
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Opens a NAT'ed connection from guest port `port` with the guest's window `wnd`;
/// returns the guest end and the host's end.
fn open(n: &mut UserNet, port: u16, wnd: u16) -> (GuestTcp, TcpStream) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut g = GuestTcp::new(port, (GW, server.local_addr().unwrap().port()));
    g.wnd = wnd;
    n.send(&g.syn()).unwrap();
    let sa = wait_segs(n, &g, T).remove(0);
    assert!(sa.syn && !sa.rst, "{sa:?}");
    g.seq += 1;
    g.ack = sa.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    let (conn, _) = server.accept().unwrap();
    (g, conn)
}

/// Segments for `g` arriving within `d`.
fn collect(n: &mut UserNet, g: &GuestTcp, d: Duration) -> Vec<Seg> {
    let mut got = Vec::new();
    pump(n, d, |n| {
        got.extend(
            drain(n)
                .iter()
                .filter_map(|f| parse_tcp(f))
                .filter(|s| g.owns(s)),
        );
        false
    });
    got
}

#[test]
fn closed_window_is_probed_without_skipping_data_and_reopens_promptly() {
    let mut n = UserNet::new(Default::default()).unwrap();
    let (mut g, mut conn) = open(&mut n, 42000, 1000);
    let data = pattern(3000);
    conn.write_all(&data).unwrap();
    // The first 1000 bytes fill the guest's window; it takes them and closes it.
    let mut got = Vec::new();
    let end = Instant::now() + T;
    while got.len() < 1000 && Instant::now() < end {
        for s in wait_segs(&mut n, &g, T) {
            assert!(s.payload.len() + got.len() <= 1000, "beyond the window");
            if s.seq == g.ack.wrapping_add(got.len() as u32) {
                got.extend_from_slice(&s.payload);
            }
        }
    }
    assert_eq!(got, data[..1000]);
    g.ack = g.ack.wrapping_add(1000);
    g.wnd = 0;
    n.send(&g.ack_only()).unwrap();
    // Four probes, each answered with the window still closed: none of them, nor the
    // answers taken as duplicate ACKs, may push more than a probe's byte into the
    // closed window.
    let mut probes = 0;
    let end = Instant::now() + T;
    while probes < 4 && Instant::now() < end {
        for s in wait_segs(&mut n, &g, T) {
            if s.payload.is_empty() && s.seq != g.ack.wrapping_sub(1) {
                continue; // a plain ACK, not a probe
            }
            assert!(
                s.payload.len() <= 1,
                "{} bytes sent into a closed window after {probes} probes",
                s.payload.len()
            );
            probes += 1;
            n.send(&g.ack_only()).unwrap();
        }
    }
    assert_eq!(probes, 4, "the closed window is probed");
    // The guest reopens its window: the data continues at the byte the guest expects,
    // not after a probe byte the closed window dropped.
    g.wnd = 65535;
    n.send(&g.ack_only()).unwrap();
    let opened = Instant::now();
    let first = wait_segs(&mut n, &g, T);
    eprintln!(
        "first: {:?}",
        first
            .iter()
            .map(|s| (s.seq.wrapping_sub(g.ack), s.payload.len()))
            .collect::<Vec<_>>()
    );
    let first = first.iter().find(|s| !s.payload.is_empty()).expect("data");
    assert_eq!(
        first.seq, g.ack,
        "data resumes where the guest's ACK points"
    );
    // That data is lost: the retransmission comes after the initial timeout, not after
    // the timeout the probes backed off to (3.2 s by now).
    let again = collect(&mut n, &g, Duration::from_millis(700));
    eprintln!(
        "again: {:?} {:?}",
        again
            .iter()
            .map(|s| (s.seq.wrapping_sub(g.ack), s.payload.len()))
            .collect::<Vec<_>>(),
        opened.elapsed()
    );
    assert!(
        again
            .iter()
            .any(|s| s.seq == first.seq && !s.payload.is_empty()),
        "no retransmission within 700 ms of the window opening ({:?} since)",
        opened.elapsed()
    );
    // Everything arrives in order.
    let mut rest = Vec::new();
    let end = Instant::now() + T;
    while rest.len() < 2000 && Instant::now() < end {
        for s in wait_segs(&mut n, &g, Duration::from_millis(500)) {
            if s.seq == g.ack && !s.payload.is_empty() {
                rest.extend_from_slice(&s.payload);
                g.ack = g.ack.wrapping_add(s.payload.len() as u32);
                n.send(&g.ack_only()).unwrap();
            }
        }
    }
    assert_eq!(rest, data[1000..]);
}

#[test]
fn a_pure_ack_is_not_answered_but_a_probe_is() {
    let mut n = UserNet::new(Default::default()).unwrap();
    let (mut g, _conn) = open(&mut n, 42001, 65535);
    collect(&mut n, &g, Duration::from_millis(50));
    n.send(&g.ack_only()).unwrap();
    n.send(&g.ack_only()).unwrap();
    let answers = collect(&mut n, &g, Duration::from_millis(300));
    assert!(answers.is_empty(), "ACKs of ACKs: {answers:?}");
    // A window probe (one below the next expected byte) gets the current window.
    g.seq = g.seq.wrapping_sub(1);
    n.send(&g.ack_only()).unwrap();
    g.seq = g.seq.wrapping_add(1);
    let answers = collect(&mut n, &g, Duration::from_millis(300));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].ack, Some(g.seq));
    assert!(answers[0].wnd > 0);
}

#[test]
fn guest_data_acked_on_a_data_segment_still_reaches_the_host() {
    use std::io::Read;
    let mut n = UserNet::new(Default::default()).unwrap();
    // The guest's window is closed, so the host's data waits in the NAT ...
    let (mut g, mut conn) = open(&mut n, 42002, 0);
    conn.write_all(b"hello").unwrap();
    collect(&mut n, &g, Duration::from_millis(50));
    // ... until a guest segment without PSH opens it: the NAT's answer carries the
    // host's data and the ACK; the guest's bytes must still be written to the host.
    g.wnd = 65535;
    n.send(&g.data_more(b"abc")).unwrap();
    let segs = collect(&mut n, &g, Duration::from_millis(300));
    assert!(segs.iter().any(|s| s.payload == b"hello"), "{segs:?}");
    assert!(segs.iter().all(|s| s.ack == Some(g.seq)));
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 3];
    conn.read_exact(&mut buf)
        .expect("the guest's data reached the host");
    assert_eq!(&buf, b"abc");
}
