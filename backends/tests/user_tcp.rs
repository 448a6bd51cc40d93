//! TCP NAT through real host sockets on 127.0.0.1: the test plays the guest with crafted
//! segments and a host server with std sockets.
#![cfg(feature = "user")]

mod user_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use user_util::*;
use vm_nic_backends::user::{Limits, UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

fn accept(l: &TcpListener) -> TcpStream {
    accept_within(l, T)
}

/// Completes a guest-initiated handshake; returns the guest end and the window scale
/// the user network announced.
fn connect(n: &mut UserNet, port: u16, guest_port: u16) -> (GuestTcp, u8) {
    let mut g = GuestTcp::new(guest_port, (GW, port));
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(n, &g, T);
    let sa = &segs[0];
    assert!(sa.syn && !sa.rst, "{sa:?}");
    assert_eq!(sa.ack, Some(g.seq + 1));
    assert_eq!(sa.mss, Some(1460));
    g.seq += 1;
    g.ack = sa.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    (g, sa.ws.unwrap_or(0))
}

/// Sends `data` as the guest, never beyond the advertised window; returns the largest
/// window (bytes) ever advertised and the smallest.
fn guest_send(n: &mut UserNet, g: &mut GuestTcp, data: &[u8], ws: u8, cap: usize) -> (u32, u32) {
    let base = g.seq;
    let mut acked = g.seq;
    let mut wnd: u32 = 1460;
    let mut max_wnd = 0;
    let mut min_wnd = u32::MAX;
    let end = Instant::now() + T;
    let mut sent = 0usize;
    while (acked.wrapping_sub(base) as usize) < data.len() {
        assert!(
            Instant::now() < end,
            "upload stalled at {sent}/{}",
            data.len()
        );
        while sent < data.len() && (g.seq.wrapping_sub(acked)) < wnd {
            let room = (wnd - g.seq.wrapping_sub(acked)) as usize;
            let k = (data.len() - sent).min(1460).min(room);
            let f = g.data(&data[sent..sent + k]);
            n.send(&f).unwrap();
            sent += k;
        }
        pump(n, Duration::from_millis(50), |n| n.has_pending());
        let before = acked;
        for f in drain(n) {
            if let Some(s) = parse_tcp(&f) {
                if g.owns(&s) {
                    let w = u32::from(s.wnd) << ws;
                    assert!(w as usize <= cap, "window {w} beyond the buffer {cap}");
                    max_wnd = max_wnd.max(w);
                    min_wnd = min_wnd.min(w);
                    let a = s.ack.unwrap();
                    if (a.wrapping_sub(acked) as i32) >= 0 {
                        acked = a;
                        wnd = w;
                    }
                }
            }
        }
        if acked == before && g.seq != acked {
            // No progress this round: what was sent beyond the window was dropped, so
            // go back to the first unacknowledged byte, as the guest's TCP would.
            g.seq = acked;
            sent = acked.wrapping_sub(base) as usize;
        }
    }
    (max_wnd, min_wnd)
}

/// Receives as the guest until `want` bytes (and a FIN if `fin`) arrived in order,
/// ACKing each in-order segment.
fn guest_recv(n: &mut UserNet, g: &mut GuestTcp, want: usize, fin: bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut saw_fin = false;
    let end = Instant::now() + T;
    while got.len() < want || (fin && !saw_fin) {
        assert!(
            Instant::now() < end,
            "download stalled at {}/{want}",
            got.len()
        );
        pump(n, Duration::from_millis(50), |n| n.has_pending());
        let mut progressed = false;
        for f in drain(n) {
            let Some(s) = parse_tcp(&f) else { continue };
            if !g.owns(&s) {
                continue;
            }
            assert!(!s.rst, "unexpected reset");
            if s.seq == g.ack {
                got.extend_from_slice(&s.payload);
                g.ack = g.ack.wrapping_add(s.payload.len() as u32);
                if s.fin {
                    saw_fin = true;
                    g.ack = g.ack.wrapping_add(1);
                }
                progressed = true;
            }
        }
        if progressed {
            n.send(&g.ack_only()).unwrap();
        }
    }
    got
}

#[test]
fn nat_connection_carries_bytes_both_ways_in_order_and_half_closes() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, ws) = connect(&mut n, port, 40000);
    let mut conn = accept(&server);
    assert_eq!(n.connections().len(), 1);
    // libslirp's orientation: the guest is the source, the destination is the address
    // the guest connected to (the gateway), not the host's loopback.
    let row = info_row(&n, "TCP[ESTABLISHED]");
    assert_eq!(
        row[2..6],
        ["10.0.2.15", "40000", "10.0.2.2", &port.to_string()[..]]
    );

    // Guest to host, 300 KB: in order, never beyond the advertised window.
    let up = pattern(300_000, 0x5a);
    let mut reader = conn.try_clone().unwrap();
    let want = up.len();
    let t = thread::spawn(move || {
        let mut v = vec![0u8; want];
        reader.read_exact(&mut v).map(|_| v)
    });
    let cap = Limits::default().tcp_buffer;
    guest_send(&mut n, &mut g, &up, ws, cap);
    assert!(t.join().unwrap().unwrap() == up, "upload corrupted");

    // Host to guest, 300 KB.
    let down = pattern(300_000, 0xa5);
    let mut writer = conn.try_clone().unwrap();
    let d2 = down.clone();
    let t = thread::spawn(move || writer.write_all(&d2));
    let got = guest_recv(&mut n, &mut g, down.len(), false);
    t.join().unwrap().unwrap();
    assert!(got == down, "download corrupted");

    // Half-close from the guest: the host reads EOF but can still send.
    n.send(&g.fin()).unwrap();
    pump(&mut n, Duration::from_millis(100), |_| false);
    let mut buf = [0u8; 8];
    assert_eq!(conn.read(&mut buf).unwrap(), 0, "host sees the guest's FIN");
    conn.write_all(b"bye").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let got = guest_recv(&mut n, &mut g, 3, true);
    assert_eq!(got, b"bye");
    assert!(
        pump(&mut n, T, |n| n.connections().is_empty()),
        "flow closed"
    );
    assert_eq!(n.stats().malformed, 0);
}

#[test]
fn refused_connect_gets_rst() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut n = net();
    let g = GuestTcp::new(40001, (GW, port));
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert!(segs[0].rst, "{:?}", segs[0]);
    assert_eq!(segs[0].ack, Some(g.seq + 1));
    assert!(!segs.iter().any(|s| s.syn));
    assert!(n.connections().is_empty());
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to
/// it stays in progress until the test accepts.
fn full_listener() -> (TcpListener, TcpStream, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a fresh descriptor; results checked.
    let l = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        assert_eq!(
            libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        TcpListener::from_raw_fd(fd)
    };
    let port = l.local_addr().unwrap().port();
    let filler = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (l, filler, port)
}

#[test]
fn syn_ack_only_after_the_host_connect_succeeds() {
    let (l, _filler, port) = full_listener();
    let mut n = net();
    let g = GuestTcp::new(40002, (GW, port));
    n.send(&g.syn()).unwrap();
    pump(&mut n, Duration::from_millis(300), |_| false);
    let early: Vec<Seg> = drain(&mut n).iter().filter_map(|f| parse_tcp(f)).collect();
    assert!(
        early.is_empty(),
        "answered before the host connect: {early:?}"
    );
    assert!(n.info_usernet().contains("SYN_SENT"));
    // Free the accept queue; the kernel's SYN retry then completes our connect.
    let _first = l.accept().unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert!(
        segs[0].syn && segs[0].ack == Some(g.seq + 1),
        "{:?}",
        segs[0]
    );
}

#[test]
fn restrict_on_refuses_and_flow_limit_refuses() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let cfg = UserConfig {
        restrict: true,
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    let g = GuestTcp::new(40003, (GW, port));
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert!(segs[0].rst);
    assert_eq!(n.stats().refused, 1);

    let mut cfg = UserConfig::default();
    cfg.limits.max_flows = 1;
    let mut n = UserNet::new(cfg).unwrap();
    let (_g, _) = connect(&mut n, port, 40004);
    let g2 = GuestTcp::new(40005, (GW, port));
    n.send(&g2.syn()).unwrap();
    let segs = wait_segs(&mut n, &g2, T);
    assert!(segs[0].rst, "second flow refused");
    assert_eq!(n.stats().refused, 1);
    assert_eq!(n.connections().len(), 1);
}

#[test]
fn window_never_exceeds_buffer_and_reopens() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // A small receive buffer on the host side, so the host socket fills quickly.
    {
        use std::os::fd::AsRawFd;
        let v: libc::c_int = 4096;
        // SAFETY: valid int option on a valid socket; accepted sockets inherit it.
        let r = unsafe {
            libc::setsockopt(
                server.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &v as *const _ as *const libc::c_void,
                4,
            )
        };
        assert_eq!(r, 0);
    }
    let mut cfg = UserConfig::default();
    cfg.limits.tcp_buffer = 16 * 1024;
    let cap = cfg.limits.tcp_buffer;
    let mut n = UserNet::new(cfg).unwrap();
    let (mut g, ws) = connect(&mut n, port, 40006);
    let conn = accept(&server);
    // Nobody reads on the host: the loopback socket buffers fill, then the flow's own
    // buffer, and the window must close rather than overflow (bounded: 64 MB at most).
    let chunk = [0x33u8; 1460];
    let mut acked = g.seq;
    let mut wnd: u32 = 1460;
    let mut sent: usize = 0;
    let mut closed = false;
    let end = Instant::now() + T;
    while !closed && sent < (64 << 20) && Instant::now() < end {
        while g.seq.wrapping_sub(acked) < wnd {
            let k = ((wnd - g.seq.wrapping_sub(acked)) as usize).min(chunk.len());
            n.send(&g.data(&chunk[..k])).unwrap();
            sent += k;
        }
        pump(&mut n, Duration::from_millis(20), |n| n.has_pending());
        for f in drain(&mut n) {
            if let Some(s) = parse_tcp(&f).filter(|s| g.owns(s)) {
                let w = u32::from(s.wnd) << ws;
                assert!(w as usize <= cap, "window {w} beyond the buffer {cap}");
                acked = s.ack.unwrap();
                wnd = w;
                closed |= w == 0;
            }
        }
    }
    assert!(
        closed,
        "the window closed while the host did not read (sent {sent}, wnd {wnd}, inflight {})",
        g.seq.wrapping_sub(acked)
    );
    assert_eq!(
        acked, g.seq,
        "everything sent within the window was accepted"
    );
    // Now the host reads: the window reopens and the rest flows, in order.
    let tail = pattern(200_000, 0x33);
    let want = sent + tail.len();
    let mut reader = conn.try_clone().unwrap();
    let t = thread::spawn(move || {
        let mut v = vec![0u8; want];
        reader.read_exact(&mut v).map(|_| v)
    });
    let (max_wnd, _) = guest_send(&mut n, &mut g, &tail, ws, cap);
    assert!(max_wnd as usize <= cap);
    let got = t.join().unwrap().unwrap();
    assert!(got[..sent].iter().all(|&b| b == 0x33));
    assert!(got[sent..] == tail[..], "upload corrupted");
}

#[test]
fn lost_segment_is_retransmitted() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, _) = connect(&mut n, port, 40007);
    let mut conn = accept(&server);
    conn.write_all(b"first").unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert_eq!(segs[0].payload, b"first");
    // The guest "loses" it: no ACK. The retransmission timer resends it.
    let again = wait_segs(&mut n, &g, T);
    assert_eq!(again[0].payload, b"first");
    assert_eq!(again[0].seq, segs[0].seq);
    let got = {
        // Now accept it.
        g.ack = g.ack.wrapping_add(5);
        n.send(&g.ack_only()).unwrap();
        conn.write_all(b"second").unwrap();
        guest_recv(&mut n, &mut g, 6, false)
    };
    assert_eq!(got, b"second");
}

#[test]
fn out_of_order_guest_data_is_not_acked_past_the_hole() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, _) = connect(&mut n, port, 40008);
    let mut conn = accept(&server);
    let start = g.seq;
    let first = g.data(b"AAAA");
    let second = g.data(b"BBBB");
    n.send(&second).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert_eq!(
        segs.last().unwrap().ack,
        Some(start),
        "duplicate ACK at the hole"
    );
    n.send(&first).unwrap();
    n.send(&second).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert_eq!(segs.last().unwrap().ack, Some(start + 8));
    let mut buf = [0u8; 8];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"AAAABBBB");
}

#[test]
fn guest_reset_resets_the_host_side() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (g, _) = connect(&mut n, port, 40009);
    let mut conn = accept(&server);
    n.send(&g.rst()).unwrap();
    assert!(n.connections().is_empty());
    let mut buf = [0u8; 4];
    let r = conn.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
}

#[test]
fn host_close_reaches_guest_as_fin() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, _) = connect(&mut n, port, 40010);
    let mut conn = accept(&server);
    conn.write_all(b"done").unwrap();
    drop(conn);
    let got = guest_recv(&mut n, &mut g, 4, true);
    assert_eq!(got, b"done");
    // The guest may keep sending after the host's FIN? The host is gone: closing ends it.
    n.send(&g.fin()).unwrap();
    assert!(pump(&mut n, T, |n| n.connections().is_empty()));
}

#[test]
fn hostfwd_delivers_host_connections_to_the_guest() {
    let cfg = UserConfig::from_opts(&[("hostfwd".into(), "tcp:127.0.0.1:0-:22".into())]).unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let addr: SocketAddr = n.hostfwd_addrs()[0];
    assert!(n.info_usernet().contains("HOST_FORWARD"));
    let mut host = TcpStream::connect(addr).unwrap();
    host.set_read_timeout(Some(T)).unwrap();
    // The guest's MAC is unknown: the SYN waits for an ARP answer.
    let mut arp = None;
    pump(&mut n, T, |n| {
        for f in drain(n) {
            let e = smoltcp::wire::EthernetFrame::new_checked(&f[..]).unwrap();
            if e.ethertype() == smoltcp::wire::EthernetProtocol::Arp {
                arp = Some(f.clone());
            }
        }
        arp.is_some()
    });
    assert!(arp.is_some(), "ARP request for the guest");
    // Answer it (the guest's own ARP request teaches its MAC just as well).
    n.send(&arp_request(GUEST_IP, GW)).unwrap();
    let syn = drain(&mut n)
        .iter()
        .filter_map(|f| parse_tcp(f))
        .find(|s| s.syn)
        .expect("SYN released after ARP");
    assert_eq!((syn.src, syn.dst, syn.dport), (GW, GUEST_IP, 22));
    assert_eq!(syn.ack, None);
    let mut g = GuestTcp::new(22, (GW, syn.sport));
    g.ack = syn.seq.wrapping_add(1);
    n.send(&g.syn_ack()).unwrap();
    g.seq += 1;
    host.write_all(b"ping").unwrap();
    let got = guest_recv(&mut n, &mut g, 4, false);
    assert_eq!(got, b"ping");
    n.send(&g.data(b"pong")).unwrap();
    pump(&mut n, Duration::from_millis(100), |_| false);
    let mut buf = [0u8; 4];
    host.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    // An accepted forward shows the host socket's own address as the source and the
    // guest as the destination, as libslirp's `info usernet` does.
    let row = info_row(&n, "TCP[ESTABLISHED]");
    assert_eq!(
        row[2..6],
        ["127.0.0.1", &addr.port().to_string()[..], "10.0.2.15", "22"]
    );
    let row = info_row(&n, "TCP[HOST_FORWARD]");
    assert_eq!(row[4..6], ["10.0.2.15", "22"]);
}

/// The whitespace-separated fields of the one `info usernet` row starting with `head`.
fn info_row(n: &UserNet, head: &str) -> Vec<String> {
    let table = n.info_usernet();
    let rows: Vec<Vec<String>> = table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.first().map(String::as_str) == Some(head))
        .collect();
    assert_eq!(rows.len(), 1, "one {head} row in:\n{table}");
    rows[0].clone()
}

#[test]
fn malformed_tcp_is_counted() {
    let mut n = net();
    let g = GuestTcp::new(40011, (GW, 9));
    let mut bad = g.syn();
    let last = bad.len() - 1;
    bad[last - 3] ^= 0x40; // checksum broken
    n.send(&bad).unwrap();
    let good = g.syn();
    n.send(&good[..14 + 20 + 10]).unwrap(); // header cut
    let mut bad = g.syn();
    bad[14 + 20 + 12] = 0xf0; // data offset 60 bytes, beyond the segment
    n.send(&bad).unwrap();
    assert_eq!(n.stats().malformed, 3);
    assert!(drain(&mut n).is_empty());
}

fn fd_readable(fd: std::os::fd::RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
}

#[test]
fn burst_work_is_deferred_but_signalled_on_the_poll_fd() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (mut g, _) = connect(&mut n, port, 40012);
    let mut conn = accept(&server);
    pump(&mut n, Duration::from_millis(50), |_| false);
    drain(&mut n);
    let fd = n.poll_fd().unwrap();
    assert!(!fd_readable(fd), "idle backend: poll fd quiet");
    n.send(&g.data_more(b"part1")).unwrap();
    n.send(&g.data_more(b"part2")).unwrap();
    assert!(fd_readable(fd), "deferred ACK/write signalled");
    assert!(n.has_pending());
    n.poll(Instant::now()).unwrap();
    let acks: Vec<Seg> = drain(&mut n).iter().filter_map(|f| parse_tcp(f)).collect();
    assert_eq!(acks.len(), 1, "one ACK for the burst");
    assert_eq!(acks[0].ack, Some(g.seq));
    let mut buf = [0u8; 10];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"part1part2");
    assert!(!fd_readable(fd));
}

#[test]
fn dns_over_tcp_reaches_the_resolver() {
    let resolver = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = UserConfig {
        dns_resolvers: vec![resolver.local_addr().unwrap()],
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    let mut g = GuestTcp::new(40013, (DNS, 53));
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert!(segs[0].syn && !segs[0].rst);
    g.seq += 1;
    g.ack = segs[0].seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    let mut conn = accept(&resolver);
    n.send(&g.data(b"\x00\x02hi")).unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\x00\x02hi");
}

#[test]
fn guestfwd_command_serves_the_connection_even_when_restricted() {
    let cfg = UserConfig::from_opts(&[
        ("restrict".into(), "on".into()),
        ("guestfwd".into(), "tcp:10.0.2.100:1234-cmd:cat".into()),
    ])
    .unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let fwd = Ipv4Addr::new(10, 0, 2, 100);
    n.send(&arp_request(GUEST_IP, fwd)).unwrap();
    assert_eq!(
        drain(&mut n).len(),
        1,
        "ARP answered for the guestfwd address"
    );
    let mut g = GuestTcp::new(40014, (fwd, 1234));
    n.send(&g.syn()).unwrap();
    let segs = wait_segs(&mut n, &g, T);
    assert!(
        segs[0].syn && segs[0].ack == Some(g.seq + 1),
        "{:?}",
        segs[0]
    );
    g.seq += 1;
    g.ack = segs[0].seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    n.send(&g.data(b"echo me")).unwrap();
    let got = guest_recv(&mut n, &mut g, 7, false);
    assert_eq!(got, b"echo me");
    // Closing our side ends cat, whose EOF comes back as a FIN.
    n.send(&g.fin()).unwrap();
    let rest = guest_recv(&mut n, &mut g, 0, true);
    assert!(rest.is_empty());
    assert!(pump(&mut n, T, |n| n.connections().is_empty()));
}

#[test]
fn download_larger_than_the_flow_buffer_keeps_flowing() {
    // Regression: once the buffer towards the guest filled, reading from the host was
    // switched off and pure ACKs from the guest never switched it on again.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut cfg = UserConfig::default();
    cfg.limits.tcp_buffer = 16 * 1024;
    let mut n = UserNet::new(cfg).unwrap();
    let (mut g, _) = connect(&mut n, port, 40015);
    let conn = accept(&server);
    let down = pattern(400_000, 0x77);
    let mut writer = conn.try_clone().unwrap();
    let d2 = down.clone();
    let t = thread::spawn(move || writer.write_all(&d2));
    let got = guest_recv(&mut n, &mut g, down.len(), false);
    t.join().unwrap().unwrap();
    assert!(got == down, "download corrupted");
}

#[test]
fn pure_acks_are_not_answered() {
    // Regression: every pure ACK from the guest used to draw an ACK back.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    let (g, _) = connect(&mut n, port, 40016);
    let _conn = accept(&server);
    pump(&mut n, Duration::from_millis(50), |_| false);
    drain(&mut n);
    for _ in 0..3 {
        n.send(&g.ack_only()).unwrap();
    }
    pump(&mut n, Duration::from_millis(50), |_| false);
    assert!(drain(&mut n).is_empty());
}
