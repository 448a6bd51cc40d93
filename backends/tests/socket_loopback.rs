//! Two vm-nic socket endpoints talking over 127.0.0.1 / Unix sockets, and the faults a
//! peer can cause: refusal, EOF, death mid-frame, oversized frames, a peer that stops
//! reading. Every frame is checked byte for byte.
#![cfg(feature = "socket")]

mod socket_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use socket_util::*;
use vm_nic_backends::socket::{self, dgram, stream, SockTarget, StreamBackend};
use vm_nic_backends::NetBackend;

fn listen_any() -> (StreamBackend, u16) {
    let s = StreamBackend::listen(&SockTarget::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Sends `count` frames each way, `window` at a time (datagram sockets drop what does not
/// fit the receiver's buffer, as UDP does), and checks every one arrives intact, in order.
fn exchange(a: &mut dyn NetBackend, b: &mut dyn NetBackend, count: u16) {
    exchange_windowed(a, b, count, count as usize)
}

fn exchange_windowed(a: &mut dyn NetBackend, b: &mut dyn NetBackend, count: u16, window: usize) {
    let fa = frames(0xa, count);
    let fb = frames(0xb, count);
    for (ca, cb) in fa.chunks(window).zip(fb.chunks(window)) {
        for f in ca {
            a.send(f).unwrap();
        }
        for f in cb {
            b.send(f).unwrap();
        }
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 70000];
        let end = Instant::now() + TIMEOUT;
        while (got_b.len() < ca.len() || got_a.len() < cb.len()) && Instant::now() < end {
            // Both sides are polled: a sender finishes buffered frames when writable.
            a.poll(Instant::now()).unwrap();
            b.poll(Instant::now()).unwrap();
            let mut idle = true;
            if let Some(n) = b.recv(&mut buf).unwrap() {
                got_b.push(buf[..n].to_vec());
                idle = false;
            }
            if let Some(n) = a.recv(&mut buf).unwrap() {
                got_a.push(buf[..n].to_vec());
                idle = false;
            }
            if idle {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        same_frames(&got_b, ca);
        same_frames(&got_a, cb);
    }
}

#[test]
fn tcp_listen_connect_pair_carries_frames_both_ways() {
    let (mut server, port) = listen_any();
    assert!(
        !server.link_up(),
        "listen keeps the link down until a peer connects"
    );
    let mut client = socket::open(&opts(&[("connect", &format!("127.0.0.1:{port}"))])).unwrap();
    assert!(poll_until(&mut [&mut server, &mut *client], |b| b
        .iter()
        .all(|x| x.link_up())));
    assert_eq!(client.kind(), "socket");
    exchange(&mut server, &mut *client, 200);
    assert_eq!(server.counters().dropped, 0);
    assert_eq!(client.counters().received_frames, 200);
}

#[test]
fn listener_accepts_the_next_peer_after_eof() {
    let (mut server, port) = listen_any();
    let target = SockTarget::Inet(format!("127.0.0.1:{port}").parse().unwrap());
    for round in 0..3u8 {
        let mut client = StreamBackend::connect(&target).unwrap();
        assert!(poll_until(&mut [&mut server, &mut client], |b| b
            .iter()
            .all(|x| x.link_up())));
        exchange(&mut server, &mut client, 5 + round as u16);
        drop(client);
        // The server notices EOF on its next read and goes down, then listens again.
        assert!(poll_until(&mut [&mut server], |b| {
            let mut buf = [0u8; 100];
            assert_eq!(b[0].recv(&mut buf).unwrap(), None);
            !b[0].link_up()
        }));
    }
}

fn framed(f: &[u8]) -> Vec<u8> {
    let mut v = (f.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(f);
    v
}

/// Reads from `b` until `pred` holds; no frame may arrive meanwhile.
fn expect_no_frame_until(b: &mut StreamBackend, mut pred: impl FnMut(&StreamBackend) -> bool) {
    let end = Instant::now() + TIMEOUT;
    let mut buf = vec![0u8; 70000];
    while Instant::now() < end {
        b.poll(Instant::now()).unwrap();
        assert_eq!(
            b.recv(&mut buf).unwrap(),
            None,
            "no (partial) frame may be delivered"
        );
        if pred(b) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("condition not reached in time");
}

#[test]
fn oversized_frame_closes_only_that_connection() {
    let (mut server, port) = listen_any();
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(poll_until(&mut [&mut server], |b| b[0].link_up()));
    raw.write_all(&framed(&frame(1, 1, 100))).unwrap();
    raw.write_all(&((4096 + 65536 + 1) as u32).to_be_bytes())
        .unwrap();
    raw.write_all(&[0u8; 1000]).unwrap();
    assert_eq!(recv_frames(&mut server, 1), vec![frame(1, 1, 100)]);
    expect_no_frame_until(&mut server, |s| !s.link_up());
    assert_eq!(server.counters().dropped, 1);
    // The connection was closed by the server: the raw peer sees EOF.
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(raw.read(&mut [0u8; 16]).unwrap(), 0);
    // The server accepts the next peer; the largest legal frame passes.
    let mut raw2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big = frame(2, 2, 4096 + 65536);
    raw2.write_all(&framed(&big)).unwrap();
    assert_eq!(recv_frames(&mut server, 1), vec![big]);
}

#[test]
fn peer_dying_mid_frame_delivers_nothing_of_it() {
    let (mut server, port) = listen_any();
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let good = frame(3, 0, 300);
    let cut = framed(&frame(3, 1, 1500));
    raw.write_all(&framed(&good)).unwrap();
    raw.write_all(&cut[..700]).unwrap();
    drop(raw);
    assert_eq!(recv_frames(&mut server, 1), vec![good]);
    expect_no_frame_until(&mut server, |s| !s.link_up());
    // The next peer starts clean: nothing of the old half frame leaks into its stream.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let next = frame(3, 2, 64);
    raw.write_all(&framed(&next)).unwrap();
    assert_eq!(recv_frames(&mut server, 1), vec![next]);
}

#[test]
fn refused_connection_is_a_clear_error() {
    let port = free_tcp_port();
    let e = socket::open(&opts(&[("connect", &format!("127.0.0.1:{port}"))]))
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("connect"));
    assert!(e.message.contains("cannot connect to 127.0.0.1"), "{e}");
    assert!(e.message.contains("refused"), "{e}");
    let path = sock_path("nobody");
    let e = stream::open(&opts(&[
        ("addr.type", "unix"),
        ("addr.path", path.to_str().unwrap()),
    ]))
    .err()
    .unwrap();
    assert!(e.message.contains("cannot connect to"), "{e}");
}

#[test]
fn peer_that_stops_reading_costs_bounded_memory_and_whole_frames() {
    let (server, port) = listen_any();
    let mut server = server.with_tx_bound(0);
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(poll_until(&mut [&mut server], |b| b[0].link_up()));
    // Send until the kernel buffers and our bounded buffer are full and frames drop.
    let mut sent = Vec::new();
    let mut n = 0u16;
    while server.counters().dropped < 20 && n < 60000 {
        let f = frame(4, n, 1514);
        server.send(&f).unwrap();
        sent.push(f);
        n += 1;
    }
    assert!(
        server.counters().dropped >= 20,
        "the bound must make frames drop"
    );
    assert!(server.tx_pending() <= 4 + 4096 + 65536 + 4 + 1514);
    // Now the peer reads everything: whole frames only, in order, a subsequence of sent.
    raw.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let end = Instant::now() + TIMEOUT;
    while Instant::now() < end {
        server.poll(Instant::now()).unwrap();
        match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(_) if server.tx_pending() == 0 => break,
            Err(_) => {}
        }
    }
    let mut frames_got = Vec::new();
    let mut i = 0;
    while i + 4 <= got.len() {
        let len = u32::from_be_bytes(got[i..i + 4].try_into().unwrap()) as usize;
        assert_eq!(len, 1514, "a frame was cut");
        frames_got.push(got[i + 4..i + 4 + len].to_vec());
        i += 4 + len;
    }
    assert_eq!(i, got.len(), "trailing partial frame");
    let c = server.counters();
    assert_eq!(frames_got.len() as u64, c.sent_frames - c.dropped);
    let mut it = sent.iter();
    for f in &frames_got {
        assert!(it.any(|s| s == f), "frames out of order or altered");
    }
}

#[test]
fn client_reconnects_when_asked_to() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = stream::open(&opts(&[
        ("addr.type", "inet"),
        ("addr.host", "127.0.0.1"),
        ("addr.port", &port.to_string()),
        ("reconnect", "1"),
    ]))
    .unwrap();
    let (first, _) = listener.accept().unwrap();
    assert!(poll_until(&mut [&mut *client], |b| b[0].link_up()));
    drop(first);
    assert!(poll_until(&mut [&mut *client], |b| {
        b[0].recv(&mut [0u8; 100]).unwrap();
        !b[0].link_up()
    }));
    assert!(client.next_deadline().is_some(), "a retry is scheduled");
    // The retry connects to the same listener; frames flow on the new connection.
    listener.set_nonblocking(true).unwrap();
    let mut second = None;
    assert!(poll_until(&mut [&mut *client], |b| {
        if second.is_none() {
            second = listener.accept().ok().map(|(s, _)| s);
        }
        second.is_some() && b[0].link_up()
    }));
    let mut second = second.unwrap();
    second.set_nonblocking(false).unwrap();
    let f = frame(5, 0, 60);
    second.write_all(&framed(&f)).unwrap();
    assert_eq!(recv_frames(&mut *client, 1), vec![f]);
}

#[test]
fn unix_stream_pair_via_stream_options() {
    let path = sock_path("stream");
    let p = path.to_str().unwrap();
    let mut server = stream::open(&opts(&[
        ("server", "on"),
        ("addr.type", "unix"),
        ("addr.path", p),
    ]))
    .unwrap();
    let mut client = stream::open(&opts(&[("addr.type", "unix"), ("addr.path", p)])).unwrap();
    assert!(poll_until(&mut [&mut *server, &mut *client], |b| b
        .iter()
        .all(|x| x.link_up())));
    exchange(&mut *server, &mut *client, 50);
    drop(server);
    assert!(!path.exists(), "the server removes its socket file");
}

#[test]
fn udp_pair_via_socket_options() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a_addr = format!("127.0.0.1:{pa}");
    let b_addr = format!("127.0.0.1:{pb}");
    let mut a = socket::open(&opts(&[("udp", &b_addr), ("localaddr", &a_addr)])).unwrap();
    let mut b = socket::open(&opts(&[("udp", &a_addr), ("localaddr", &b_addr)])).unwrap();
    exchange_windowed(&mut *a, &mut *b, 100, 8);
}

#[test]
fn dgram_inet_and_unix_pairs() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let inet = |l: u16, r: u16| {
        dgram::open(&opts(&[
            ("local.type", "inet"),
            ("local.host", "127.0.0.1"),
            ("local.port", &l.to_string()),
            ("remote.type", "inet"),
            ("remote.host", "127.0.0.1"),
            ("remote.port", &r.to_string()),
        ]))
        .unwrap()
    };
    let (mut a, mut b) = (inet(pa, pb), inet(pb, pa));
    exchange_windowed(&mut *a, &mut *b, 100, 8);

    let (ua, ub) = (sock_path("dg-a"), sock_path("dg-b"));
    let unix = |l: &std::path::Path, r: &std::path::Path| {
        dgram::open(&opts(&[
            ("local.type", "unix"),
            ("local.path", l.to_str().unwrap()),
            ("remote.type", "unix"),
            ("remote.path", r.to_str().unwrap()),
        ]))
        .unwrap()
    };
    let mut a = unix(&ua, &ub);
    // The peer is not there yet: the frame is dropped and counted, nothing fails.
    a.send(&frame(6, 0, 60)).unwrap();
    assert_eq!(a.counters().dropped, 1);
    let mut b = unix(&ub, &ua);
    exchange_windowed(&mut *a, &mut *b, 100, 8);
}

#[test]
fn mcast_members_on_loopback_see_every_frame_including_their_own() {
    let port = free_udp_port();
    let group = format!("239.255.77.{}:{port}", (port % 200) + 1);
    let open = || socket::open(&opts(&[("mcast", &group), ("localaddr", "127.0.0.1")])).unwrap();
    let (mut a, mut b) = (open(), open());
    let fa = frames(0xa, 30);
    for f in &fa {
        a.send(f).unwrap();
    }
    same_frames(&recv_frames(&mut *b, 30), &fa);
    // IP_MULTICAST_LOOP=1: the sender receives its own frames too, as with QEMU.
    same_frames(&recv_frames(&mut *a, 30), &fa);
    let e = socket::open(&opts(&[("mcast", "127.0.0.1:5000")]))
        .err()
        .unwrap();
    assert!(e.message.contains("not a multicast address"), "{e}");
}

#[test]
fn option_errors_name_the_problem() {
    let e = socket::open(&opts(&[("listen", ":1"), ("connect", "127.0.0.1:1")]))
        .err()
        .unwrap();
    assert!(e.message.contains("exactly one of"), "{e}");
    let e = socket::open(&opts(&[("udp", "127.0.0.1:1")]))
        .err()
        .unwrap();
    assert!(e.message.contains("localaddr"), "{e}");
    let e = socket::open(&opts(&[
        ("listen", "127.0.0.1:1"),
        ("localaddr", "127.0.0.1"),
    ]))
    .err()
    .unwrap();
    assert_eq!(e.key.as_deref(), Some("localaddr"));
    let e = socket::open(&opts(&[("bogus", "1")])).err().unwrap();
    assert_eq!(e.key.as_deref(), Some("bogus"));
    let e = dgram::open(&opts(&[("local.type", "inet"), ("local.port", "1")]))
        .err()
        .unwrap();
    assert!(e.message.contains("remote"), "{e}");
    let e = stream::open(&opts(&[
        ("server", "maybe"),
        ("addr.type", "inet"),
        ("addr.port", "1"),
    ]))
    .err()
    .unwrap();
    assert_eq!(e.key.as_deref(), Some("server"));
}

#[test]
fn frames_sent_while_down_are_dropped_and_counted() {
    let (mut server, _port) = listen_any();
    server.send(&frame(7, 0, 60)).unwrap();
    assert_eq!(server.counters().dropped, 1);
    assert_eq!(server.counters().sent_frames, 1);
}

#[test]
fn full_datagram_queue_drops_whole_frames_and_never_blocks() {
    let (pa, pb) = (sock_path("full-a"), sock_path("full-b"));
    let mut a = dgram::DgramBackend::unix(&pa, &pb).unwrap();
    let mut b = dgram::DgramBackend::unix(&pb, &pa).unwrap();
    // b does not read: a's sends fill b's queue, then the kernel refuses and a drops.
    let mut sent = 0u16;
    while a.counters().dropped == 0 && sent < 60000 {
        a.send(&frame(8, sent, 1514)).unwrap();
        sent += 1;
    }
    assert!(a.counters().dropped > 0, "the queue never filled");
    for _ in 0..10 {
        a.send(&frame(8, 60001, 1514)).unwrap();
    }
    let queued = a.counters().sent_frames - a.counters().dropped;
    let got = drain(&mut b, Duration::from_millis(200));
    assert_eq!(got.len() as u64, queued);
    for (i, f) in got.iter().enumerate() {
        same_frames(std::slice::from_ref(f), &[frame(8, i as u16, 1514)]);
    }
}

#[test]
fn adopted_descriptors_via_fd_option() {
    use std::os::fd::IntoRawFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};
    // A connected stream: QEMU framing on it.
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let fd = ours.into_raw_fd().to_string();
    let mut s = socket::open(&opts(&[("fd", &fd)])).unwrap();
    assert!(s.link_up());
    let f = frame(9, 0, 100);
    theirs.write_all(&framed(&f)).unwrap();
    assert_eq!(recv_frames(&mut *s, 1), vec![f.clone()]);
    s.send(&f).unwrap();
    let mut got = vec![0u8; 104];
    theirs.read_exact(&mut got).unwrap();
    assert_eq!(got, framed(&f));
    // A connected datagram socket: one frame per datagram.
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    let fd = ours.into_raw_fd().to_string();
    let mut d = socket::open(&opts(&[("fd", &fd)])).unwrap();
    theirs.send(&f).unwrap();
    assert_eq!(recv_frames(&mut *d, 1), vec![f.clone()]);
    d.send(&f).unwrap();
    let mut got = vec![0u8; 200];
    assert_eq!(theirs.recv(&mut got).unwrap(), 100);
    assert_eq!(&got[..100], &f[..]);
    let e = socket::open(&opts(&[("fd", "1000000")])).err().unwrap();
    assert_eq!(e.key.as_deref(), Some("fd"));
}
