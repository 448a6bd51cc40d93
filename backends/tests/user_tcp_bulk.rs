//! Bulk TCP through the user network's NAT, 64 MiB each way, against a guest endpoint
//! that behaves like Linux's TCP: window scaling on (shift 7), MSS 1460, a bounded
//! receive buffer the application drains at its own pace (with pauses, so the window
//! closes and reopens), an ACK every second segment or after a 40 ms delayed-ACK timer,
//! window updates when the application frees space (`tcp_cleanup_rbuf`'s rule),
//! out-of-order segments dropped and answered with a duplicate ACK, go-back-N
//! retransmission on timeout and zero-window probes (`seq = snd_una - 1`, no data).
//!
//! The backend is driven as the runner drives it: `recv` while `has_pending` (a bounded
//! burst per round, like a NIC's receive ring), `poll` when the poll fd is readable or
//! `next_deadline` has passed. Every byte is checked in order; each run is bounded in
//! time and in loop rounds.
#![cfg(feature = "user")]

mod user_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

/// Bytes moved by each bulk run.
const TOTAL: usize = 64 << 20;
/// Wall-clock bound of one run (a debug build on a loaded 2-core machine needs ~50 s).
const LIMIT: Duration = Duration::from_secs(120);
/// Bound on driver rounds of one run.
const MAX_ROUNDS: u64 = 20_000_000;
const MSS: usize = 1460;
/// Linux's window scale for a default-sized receive buffer.
const GUEST_WS: u8 = 7;
/// Frames the "device" takes from the backend per round (a receive ring's worth).
const RX_BURST: usize = 64;
/// Segments the guest transmits per round (a transmit ring's worth).
const TX_BURST: usize = 32;
const DELACK: Duration = Duration::from_millis(40);
const RTO_MIN: Duration = Duration::from_millis(200);

/// The byte at offset `i` of a bulk stream: position-dependent, so a lost, duplicated
/// or reordered byte shows.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (i >> 20) as u8
}

fn fill(buf: &mut [u8], start: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = byte_at(start + k as u64);
    }
}

fn le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// How the guest's application consumes what it receives.
#[derive(Clone, Copy)]
struct Reader {
    /// Bytes read per round at most.
    per_round: usize,
    /// Pause after every this many bytes read ...
    pause_every: u64,
    /// ... of this long (the receive window fills and closes meanwhile).
    pause: Duration,
}

/// A Linux-like guest TCP endpoint for one connection.
struct LinuxGuest {
    port: u16,
    remote: (Ipv4Addr, u16),
    established: bool,
    nat_ws: u8,
    // Sending.
    to_send: usize,
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    peer_wnd: u32,
    max_peer_wnd: u32,
    fin_sent: bool,
    fin_acked: bool,
    rto: Duration,
    rto_at: Option<Instant>,
    dupacks: u32,
    // Receiving.
    irs: u32,
    rcv_nxt: u32,
    rbuf: usize,
    rbuf_cap: usize,
    adv_edge: u32,
    read: u64,
    unacked_segs: u32,
    delack_at: Option<Instant>,
    peer_fin: bool,
    reader: Reader,
    paused_until: Option<Instant>,
    next_pause: u64,
    out: Vec<Vec<u8>>,
    stats: GuestStats,
}

#[derive(Debug, Default, Clone, Copy)]
struct GuestStats {
    retransmits: u64,
    probes: u64,
    dup_acks_sent: u64,
    out_of_order: u64,
    beyond_window: u64,
    window_updates: u64,
    zero_windows_seen: u64,
    zero_windows_sent: u64,
}

impl LinuxGuest {
    fn new(port: u16, remote: (Ipv4Addr, u16), to_send: usize, reader: Reader) -> Self {
        let iss = 0xfff0_0000; // wraps during the run
        LinuxGuest {
            port,
            remote,
            established: false,
            nat_ws: 0,
            to_send,
            iss,
            snd_una: iss,
            snd_nxt: iss.wrapping_add(1),
            snd_max: iss.wrapping_add(1),
            peer_wnd: 0,
            max_peer_wnd: 0,
            fin_sent: false,
            fin_acked: false,
            rto: RTO_MIN,
            rto_at: None,
            dupacks: 0,
            irs: 0,
            rcv_nxt: 0,
            rbuf: 0,
            rbuf_cap: 256 * 1024,
            adv_edge: 0,
            read: 0,
            unacked_segs: 0,
            delack_at: None,
            peer_fin: false,
            reader,
            paused_until: None,
            next_pause: reader.pause_every,
            out: Vec::new(),
            stats: GuestStats::default(),
        }
    }

    fn frame(&self, control: TcpControl, seq: u32, wnd: u16, payload: &[u8]) -> Vec<u8> {
        let syn = control == TcpControl::Syn;
        let repr = TcpRepr {
            src_port: self.port,
            dst_port: self.remote.1,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: (!syn).then_some(TcpSeqNumber(self.rcv_nxt as i32)),
            window_len: wnd,
            window_scale: syn.then_some(GUEST_WS),
            max_seg_size: syn.then_some(MSS as u16),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut p[..]),
            &GUEST_IP.into(),
            &self.remote.0.into(),
            &ChecksumCapabilities::default(),
        );
        ipv4(GUEST_IP, self.remote.0, IpProtocol::Tcp, &p)
    }

    fn syn(&mut self) {
        let f = self.frame(TcpControl::Syn, self.iss, 65535, &[]);
        self.out.push(f);
    }

    /// The window to advertise, in units of the scale (Linux's `__tcp_select_window`:
    /// no window below one MSS, never shrink the right edge).
    fn select_window(&mut self) -> u16 {
        let free = self.rbuf_cap.saturating_sub(self.rbuf) as u32;
        let free = if free < MSS as u32 { 0 } else { free };
        let cur = self.adv_edge.wrapping_sub(self.rcv_nxt);
        let cur = if (cur as i32) < 0 { 0 } else { cur };
        let scaled = (free >> GUEST_WS)
            .max(cur.div_ceil(1 << GUEST_WS))
            .min(65535);
        if scaled == 0 {
            self.stats.zero_windows_sent += 1;
        }
        self.adv_edge = self.rcv_nxt.wrapping_add(scaled << GUEST_WS);
        scaled as u16
    }

    fn send_ack(&mut self) {
        let wnd = self.select_window();
        let f = self.frame(TcpControl::None, self.snd_nxt, wnd, &[]);
        self.out.push(f);
        self.unacked_segs = 0;
        self.delack_at = None;
    }

    fn on_frame(&mut self, frame: &[u8], now: Instant) {
        let Some(s) = parse_tcp(frame) else { return };
        if s.dport != self.port || s.sport != self.remote.1 {
            return;
        }
        assert!(!s.rst, "the NAT reset the connection: {s:?}");
        if s.syn {
            assert_eq!(
                s.ack,
                Some(self.iss.wrapping_add(1)),
                "SYN-ACK acks our SYN"
            );
            if !self.established {
                self.established = true;
                self.nat_ws = s.ws.expect("the NAT answers window scaling");
                self.irs = s.seq;
                self.rcv_nxt = s.seq.wrapping_add(1);
                self.snd_una = self.iss.wrapping_add(1);
                self.peer_wnd = u32::from(s.wnd);
            }
            self.send_ack();
            return;
        }
        if let Some(ack) = s.ack {
            self.on_ack(ack, u32::from(s.wnd) << self.nat_ws, &s, now);
        }
        if !s.payload.is_empty() || s.fin {
            self.on_data(&s, now);
        }
    }

    fn on_ack(&mut self, ack: u32, wnd: u32, s: &Seg, now: Instant) {
        assert!(
            le(ack, self.snd_max),
            "NAT acked {ack} beyond what was sent ({})",
            self.snd_max
        );
        if !le(self.snd_una, ack) {
            return; // old ACK
        }
        if ack != self.snd_una {
            self.snd_una = ack;
            if le(self.snd_nxt, ack) {
                self.snd_nxt = ack;
            }
            self.rto = RTO_MIN;
            self.dupacks = 0;
            self.rto_at = (self.snd_una != self.snd_max).then_some(now + self.rto);
            let fin_seq = self.data_seq(self.to_send);
            if self.fin_sent && ack == fin_seq.wrapping_add(1) {
                self.fin_acked = true;
            }
        } else if s.payload.is_empty()
            && !s.fin
            && wnd == self.peer_wnd
            && self.snd_una != self.snd_max
        {
            self.dupacks += 1;
            if self.dupacks == 3 {
                // Fast retransmit: go back to the hole.
                self.snd_nxt = self.snd_una;
                self.stats.retransmits += 1;
            }
        }
        if wnd == 0 && self.peer_wnd != 0 {
            self.stats.zero_windows_seen += 1;
        }
        self.peer_wnd = wnd;
        self.max_peer_wnd = self.max_peer_wnd.max(wnd);
    }

    fn on_data(&mut self, s: &Seg, now: Instant) {
        // A retransmission may straddle rcv_nxt: keep only the new part.
        let old = self.rcv_nxt.wrapping_sub(s.seq);
        let payload = if old as i32 > 0 && (old as usize) < s.payload.len() {
            &s.payload[old as usize..]
        } else {
            &s.payload[..]
        };
        let seq = if payload.len() < s.payload.len() {
            self.rcv_nxt
        } else {
            s.seq
        };
        let len = payload.len() as u32;
        if seq != self.rcv_nxt {
            if le(seq.wrapping_add(len), self.rcv_nxt) {
                // Old duplicate: Linux answers at once.
                self.stats.dup_acks_sent += 1;
            } else {
                self.stats.out_of_order += 1;
            }
            self.send_ack();
            return;
        }
        let room = self.adv_edge.wrapping_sub(self.rcv_nxt);
        let room = if (room as i32) < 0 { 0 } else { room };
        let take = len.min(room);
        if take < len && len > 1 {
            // More than a window probe's byte beyond the advertised window.
            self.stats.beyond_window += u64::from(len - take);
        }
        let offset = self.read + self.rbuf as u64;
        for (k, &b) in payload[..take as usize].iter().enumerate() {
            let i = offset + k as u64;
            assert_eq!(b, byte_at(i), "byte {i} from the host corrupted");
        }
        self.rcv_nxt = self.rcv_nxt.wrapping_add(take);
        self.rbuf += take as usize;
        if s.fin && take == len {
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            self.peer_fin = true;
            self.send_ack();
            return;
        }
        if take == 0 {
            self.send_ack();
            return;
        }
        self.unacked_segs += 1;
        if self.unacked_segs >= 2 {
            self.send_ack();
        } else {
            self.delack_at.get_or_insert(now + DELACK);
        }
    }

    /// Sequence number of data byte `i` of what the guest sends.
    fn data_seq(&self, i: usize) -> u32 {
        self.iss.wrapping_add(1).wrapping_add(i as u32)
    }

    /// The application reads; a window update goes out when the window doubled
    /// (Linux's `tcp_cleanup_rbuf`).
    fn app_read(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|t| t > now) {
            return;
        }
        self.paused_until = None;
        let n = self.rbuf.min(self.reader.per_round);
        if n == 0 {
            return;
        }
        self.rbuf -= n;
        self.read += n as u64;
        if self.read >= self.next_pause {
            self.next_pause += self.reader.pause_every;
            self.paused_until = Some(now + self.reader.pause);
        }
        let cur = self.adv_edge.wrapping_sub(self.rcv_nxt);
        let cur = if (cur as i32) < 0 { 0 } else { cur };
        if 2 * cur <= self.rbuf_cap as u32 {
            let free = self.rbuf_cap.saturating_sub(self.rbuf) as u32;
            let new = if free < MSS as u32 { 0 } else { free };
            if new != 0 && new >= 2 * cur {
                self.stats.window_updates += 1;
                self.send_ack();
            }
        }
    }

    fn sent_bytes(&self) -> usize {
        self.snd_nxt.wrapping_sub(self.iss.wrapping_add(1)) as usize
    }

    /// The persist timer fired with data waiting and nothing in flight (Linux's
    /// `tcp_write_wakeup`): what the window allows, or a zero-window probe.
    fn probe(&mut self) {
        self.stats.probes += 1;
        let wnd = self.select_window();
        let n = (self.to_send - self.sent_bytes())
            .min(MSS)
            .min(self.peer_wnd as usize);
        if n == 0 {
            let f = self.frame(TcpControl::None, self.snd_una.wrapping_sub(1), wnd, &[]);
            self.out.push(f);
            return;
        }
        let mut buf = [0u8; MSS];
        fill(&mut buf[..n], self.sent_bytes() as u64);
        let f = self.frame(TcpControl::Psh, self.snd_nxt, wnd, &buf[..n]);
        self.out.push(f);
        self.snd_nxt = self.snd_nxt.wrapping_add(n as u32);
        if le(self.snd_max, self.snd_nxt) {
            self.snd_max = self.snd_nxt;
        }
    }

    /// Sends data within the peer's window, the FIN, and what timers call for.
    fn transmit(&mut self, now: Instant) {
        if !self.established {
            return;
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.send_ack();
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto = (self.rto * 2).min(Duration::from_secs(60));
            self.rto_at = Some(now + self.rto);
            let outstanding = self.snd_una != self.snd_max;
            if outstanding {
                self.snd_nxt = self.snd_una;
                if self.fin_sent && !self.fin_acked && self.sent_bytes() < self.to_send {
                    self.fin_sent = false;
                }
                self.stats.retransmits += 1;
            } else if self.sent_bytes() < self.to_send {
                self.probe();
            } else {
                self.rto_at = None;
            }
        }
        let mut buf = [0u8; MSS];
        for _ in 0..TX_BURST {
            let sent = self.sent_bytes();
            if sent >= self.to_send {
                break;
            }
            let inflight = self.snd_nxt.wrapping_sub(self.snd_una);
            let room = self.peer_wnd.saturating_sub(inflight) as usize;
            let unsent = self.to_send - sent;
            let n = unsent.min(MSS).min(room);
            // Sender silly-window avoidance: full segments, the tail, or half the
            // largest window the peer ever offered.
            if n == 0 || (n < MSS && n < unsent && n < self.max_peer_wnd as usize / 2) {
                // The persist timer (only when nothing is in flight to time out).
                if self.rto_at.is_none() {
                    self.rto_at = Some(now + self.rto);
                }
                break;
            }
            fill(&mut buf[..n], sent as u64);
            let wnd = self.select_window();
            let control = if n == unsent {
                TcpControl::Psh
            } else {
                TcpControl::None
            };
            let f = self.frame(control, self.snd_nxt, wnd, &buf[..n]);
            self.out.push(f);
            self.unacked_segs = 0;
            self.delack_at = None;
            self.snd_nxt = self.snd_nxt.wrapping_add(n as u32);
            if le(self.snd_max, self.snd_nxt) {
                self.snd_max = self.snd_nxt;
            }
            self.rto_at.get_or_insert(now + self.rto);
        }
        if self.sent_bytes() >= self.to_send && self.to_send > 0 && !self.fin_sent {
            // The application closes once everything is queued.
            let wnd = self.select_window();
            let f = self.frame(TcpControl::Fin, self.snd_nxt, wnd, &[]);
            self.out.push(f);
            self.fin_sent = true;
            self.snd_nxt = self.snd_nxt.wrapping_add(1);
            if le(self.snd_max, self.snd_nxt) {
                self.snd_max = self.snd_nxt;
            }
            self.rto_at.get_or_insert(now + self.rto);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [self.rto_at, self.delack_at, self.paused_until]
            .into_iter()
            .flatten()
            .min()
    }
}

fn readable(fd: std::os::fd::RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(10) as libc::c_int;
    // SAFETY: one valid pollfd; the wait is bounded by 10 ms.
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
}

/// Drives backend and guest as the runner would until `done`, within [`LIMIT`] and
/// [`MAX_ROUNDS`]; panics with the state at a stall.
fn run(n: &mut UserNet, g: &mut LinuxGuest, mut done: impl FnMut(&UserNet, &LinuxGuest) -> bool) {
    let end = Instant::now() + LIMIT;
    let fd = n.poll_fd().unwrap();
    let mut buf = vec![0u8; 65536];
    for _ in 0..MAX_ROUNDS {
        let now = Instant::now();
        assert!(
            now < end,
            "stalled: received {} sent {} snd_una {:#x} snd_nxt {:#x} peer_wnd {} rbuf {} \
             pending {} stats {:?} connections {:?}",
            g.read + g.rbuf as u64,
            g.sent_bytes(),
            g.snd_una,
            g.snd_nxt,
            g.peer_wnd,
            g.rbuf,
            n.has_pending(),
            g.stats,
            n.connections()
        );
        for _ in 0..RX_BURST {
            if !n.has_pending() {
                break;
            }
            match n.recv(&mut buf).unwrap() {
                Some(len) => g.on_frame(&buf[..len], now),
                None => break,
            }
        }
        g.app_read(now);
        g.transmit(now);
        for f in g.out.drain(..) {
            n.send(&f).unwrap();
        }
        if done(n, g) {
            return;
        }
        let now = Instant::now();
        let wake = [n.next_deadline(), g.deadline()]
            .into_iter()
            .flatten()
            .min();
        let timeout = if n.has_pending() {
            Duration::ZERO
        } else {
            wake.map_or(Duration::from_millis(10), |t| {
                t.saturating_duration_since(now)
            })
        };
        let ready = readable(fd, timeout);
        if ready || n.next_deadline().is_some_and(|t| t <= Instant::now()) {
            n.poll(Instant::now()).unwrap();
        }
    }
    panic!("round bound reached");
}

fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(LIMIT)).unwrap();
                s.set_write_timeout(Some(LIMIT)).unwrap();
                return s;
            }
            Err(_) if Instant::now() < end => thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("no connection: {e}"),
        }
    }
}

fn set_rcvbuf(l: &TcpListener, bytes: libc::c_int) {
    // SAFETY: a valid int option on a valid socket; accepted sockets inherit it.
    let r = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &bytes as *const _ as *const libc::c_void,
            4,
        )
    };
    assert_eq!(r, 0);
}

/// A host server that accepts one connection and sends `total` pattern bytes, then
/// closes.
fn host_source(total: usize) -> (u16, thread::JoinHandle<std::io::Result<()>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let mut s = accept(&server);
        let mut buf = vec![0u8; 256 * 1024];
        let mut off = 0usize;
        while off < total {
            let k = (total - off).min(buf.len());
            fill(&mut buf[..k], off as u64);
            s.write_all(&buf[..k])?;
            off += k;
        }
        s.shutdown(std::net::Shutdown::Write)
    });
    (port, t)
}

/// A host server that accepts one connection and reads to EOF, checking every byte;
/// returns the count. Every `pause_every` bytes it stops reading until `resume` is set
/// (the NAT's window closed) or 5 s passed.
fn host_sink(
    pause_every: usize,
    resume: Arc<AtomicBool>,
) -> (u16, thread::JoinHandle<std::io::Result<usize>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    // A small socket buffer, so the NAT's writes block while the sink pauses.
    set_rcvbuf(&server, 64 * 1024);
    let port = server.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let mut s = accept(&server);
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        let mut next_pause = pause_every;
        loop {
            let k = s.read(&mut buf)?;
            if k == 0 {
                return Ok(got);
            }
            for (j, &b) in buf[..k].iter().enumerate() {
                let i = (got + j) as u64;
                if b != byte_at(i) {
                    return Err(std::io::Error::other(format!("byte {i} corrupted")));
                }
            }
            got += k;
            if got >= next_pause {
                next_pause += pause_every;
                resume.store(false, Ordering::SeqCst);
                let end = Instant::now() + Duration::from_secs(5);
                while !resume.load(Ordering::SeqCst) && Instant::now() < end {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    });
    (port, t)
}

/// Both sides have closed: the NAT forgets the flow.
fn assert_flow_closes(n: &mut UserNet) {
    let closed = pump(n, Duration::from_secs(5), |n| {
        drain(n);
        n.connections().is_empty()
    });
    assert!(closed, "flow closed: {:?}", n.connections());
}

fn report(what: &str, bytes: usize, start: Instant, g: &LinuxGuest) {
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{what}: {} MiB in {secs:.2} s = {:.1} MB/s; guest {:?}",
        bytes >> 20,
        bytes as f64 / secs / 1e6,
        g.stats
    );
}

#[test]
fn host_to_guest_64_mib_arrives_in_order() {
    let (port, server) = host_source(TOTAL);
    let mut n = UserNet::new(UserConfig::default()).unwrap();
    let reader = Reader {
        per_round: 48 * 1024,
        pause_every: 8 << 20,
        pause: Duration::from_millis(30),
    };
    let mut g = LinuxGuest::new(41000, (GW, port), 0, reader);
    g.syn();
    let start = Instant::now();
    run(&mut n, &mut g, |_, g| g.peer_fin && g.rbuf == 0);
    report("host to guest", TOTAL, start, &g);
    assert_eq!(g.read, TOTAL as u64, "every byte, then the host's FIN");
    server.join().unwrap().unwrap();
    assert_eq!(g.stats.beyond_window, 0, "the NAT kept within the window");
    assert!(
        g.stats.zero_windows_sent > 0,
        "the reader's pauses closed the window"
    );
    // The guest closes too: the flow goes away.
    let wnd = g.select_window();
    let fin = g.frame(TcpControl::Fin, g.snd_nxt, wnd, &[]);
    n.send(&fin).unwrap();
    assert_flow_closes(&mut n);
}

#[test]
fn guest_to_host_64_mib_arrives_in_order() {
    let resume = Arc::new(AtomicBool::new(true));
    let (port, sink) = host_sink(16 << 20, resume.clone());
    let mut n = UserNet::new(UserConfig::default()).unwrap();
    let reader = Reader {
        per_round: usize::MAX,
        pause_every: u64::MAX,
        pause: Duration::ZERO,
    };
    let mut g = LinuxGuest::new(41001, (GW, port), TOTAL, reader);
    g.syn();
    let start = Instant::now();
    let mut zero_windows = 0;
    run(&mut n, &mut g, |_, g| {
        if g.stats.zero_windows_seen > zero_windows {
            zero_windows = g.stats.zero_windows_seen;
            resume.store(true, Ordering::SeqCst);
        }
        g.fin_acked && g.peer_fin
    });
    report("guest to host", TOTAL, start, &g);
    let got = sink.join().unwrap().unwrap();
    assert_eq!(got, TOTAL, "the host read every byte");
    assert!(
        g.stats.zero_windows_seen > 0,
        "the sink's pauses closed the NAT's window"
    );
    assert_flow_closes(&mut n);
}
