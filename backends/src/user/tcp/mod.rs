//! TCP NAT: each guest connection becomes a host socket.
//!
//! The guest-facing half is a small TCP of its own (no smoltcp sockets): the SYN-ACK goes
//! out only once the host `connect` has succeeded (RST when refused, ICMP unreachable when
//! the host has no route), data from the guest is taken never beyond the window
//! advertised, which is exactly the free space of the flow's buffer towards the host;
//! data beyond a hole waits in a bounded out-of-order queue ([`reasm`]) and is reported
//! to the guest in SACK blocks. Data from the host is kept until the guest acknowledges
//! it, sent as a congestion window allows, and retransmitted on timeout ([`rtt`]) or by
//! fast retransmit and recovery ([`recovery`], using the guest's SACK blocks, [`sack`]).
//! Each FIN is passed on as a half-close (`shutdown`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Instant;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{TcpControl, TcpPacket, TcpRepr};

use super::config::{loopback_like, Dest};
use super::guestfwd::{self, FwdTarget, HostStream, Reaper};
use super::sock;
use super::{Connection, Ctx, FwdProto, Verdict};

mod flow;
#[cfg(test)]
mod gso_tests;
mod hostfwd;
mod reasm;
mod recovery;
mod rtt;
mod sack;
mod segment;

pub(crate) use flow::FlowKey;
use flow::{on_ack, on_data, seq_lt, set_interest, Flow, State};
pub(crate) use hostfwd::{fwd_guest, fwd_source};
use recovery::Cc;
use segment::{emit, emit_rst, emit_syn, max_payload, refuse, reset_for, syn_repr};

/// epoll token kind of a NAT'ed TCP flow (the low 32 bits are the slot).
pub(crate) const TOKEN_FLOW: u64 = 1 << 32;
/// epoll token kind of a `hostfwd` TCP listener.
pub(crate) const TOKEN_LISTEN: u64 = 2 << 32;

/// The segment size we announce: an Ethernet MTU of 1500 less IPv4 and TCP headers.
const OUR_MSS: u16 = 1460;
/// Retransmissions of one segment before the flow is reset.
const MAX_RETRIES: u32 = 12;
/// Bytes read from a host socket per call.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Stop queueing data segments for the guest above this many queued frames, keeping room
/// for ACKs and other traffic; [`TcpNat::flush_all`] resumes once the device drains.
const QUEUE_HIGH_WATER: usize = 1024;
/// Room kept in the guest queue per data frame beyond its payload (headers, padding).
const FRAME_HEADROOM: usize = 128;
/// Guest data is written to the host at once when a segment carries PSH or FIN or this
/// much is buffered; otherwise at the end of the burst (fewer system calls).
const WRITE_BATCH: usize = 32 * 1024;

/// The TCP half of the NAT: flows, hostfwd listeners, timers.
#[derive(Debug, Default)]
pub(crate) struct TcpNat {
    flows: Vec<Option<Flow>>,
    free: Vec<usize>,
    index: HashMap<FlowKey, usize>,
    /// hostfwd listeners and the guest endpoint each forwards to (`[::]` for the guest's
    /// learned IPv6 address).
    listeners: Vec<(std::net::TcpListener, SocketAddr)>,
    /// Some flow stopped sending because the guest queue was full.
    pub flush_wanted: bool,
    /// Flows owing the guest an ACK, and possibly the host a write: done at the end of
    /// the burst by [`TcpNat::flush_all`].
    ack_list: Vec<usize>,
    isn: u32,
    /// Connections refused for lack of resources.
    pub refused: u64,
    reaper: Reaper,
    /// The bytes of the segment being sent, gathered from a flow's ring: kept across
    /// calls so a 64 KiB GSO frame costs no allocation.
    payload: Vec<u8>,
}

impl TcpNat {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn next_iss(&mut self, now: Instant) -> u32 {
        // RFC 6528 wants unpredictable ISNs; the guest's own peer is us, so a clock-driven
        // counter with a per-connection stride suffices to keep incarnations apart.
        let t = now.elapsed().as_nanos() as u32;
        self.isn = self.isn.wrapping_add(0x0105_9a3b).wrapping_add(t);
        self.isn
    }

    /// Handles a TCP segment from the guest (`src` and `dst` of one family).
    pub fn input(&mut self, cx: &mut Ctx, src: IpAddr, dst: IpAddr, data: &[u8]) -> Verdict {
        let Ok(pkt) = TcpPacket::new_checked(data) else {
            log::debug!("user: TCP header truncated or data offset bad");
            return Verdict::Malformed;
        };
        let Ok(seg) = TcpRepr::parse(
            &pkt,
            &src.into(),
            &dst.into(),
            &ChecksumCapabilities::default(),
        ) else {
            log::debug!("user: TCP segment with bad checksum, port 0 or flags dropped");
            return Verdict::Malformed;
        };
        // TCP is unicast: a segment to a group address or from no address gets no flow
        // and no reset (which would have to come from that address).
        if src.is_unspecified() || cx.cfg.is_group(dst) {
            log::debug!("user: TCP from {src} to group or unspecified {dst} ignored");
            return Verdict::Ignored;
        }
        let key = FlowKey {
            guest: SocketAddr::new(src, seg.src_port),
            remote: SocketAddr::new(dst, seg.dst_port),
        };
        if let Some(&id) = self.index.get(&key) {
            if !self.reopens(id, &seg) {
                self.segment(cx, id, &seg);
                return Verdict::Handled;
            }
            // A new connection on the 4-tuple of one the guest has closed (RFC 9293
            // 3.10.7.4): the old flow gives way.
            log::debug!("user: new SYN reuses the 4-tuple of closing flow {key:?}");
            self.write_host(cx, id);
            if self.flows[id].is_some() {
                self.remove(cx, id);
            }
            cx.flows = cx.flows.saturating_sub(1);
        }
        match seg.control {
            TcpControl::Syn if seg.ack_number.is_none() => self.open(cx, key, &seg),
            TcpControl::Rst => Verdict::Ignored,
            _ => {
                reset_for(cx, &key, &seg);
                Verdict::Ignored
            }
        }
    }

    /// Where a guest connection to `remote` goes on the host, or `None` to refuse it:
    /// the virtual host (IPv4 `host`, IPv6 `ipv6-host`) is the host's loopback of the same
    /// family, the virtual DNS address on port 53 the first resolver, other addresses of
    /// the virtual networks nothing, the rest itself.
    fn host_target(cx: &Ctx, remote: SocketAddr) -> Option<SocketAddr> {
        let port = remote.port();
        match cx.cfg.dest(remote.ip()) {
            Dest::Host => Some(SocketAddr::new(loopback_like(remote.ip()), port)),
            Dest::Dns => (port == 53)
                .then(|| cx.cfg.dns_resolvers.first().copied())
                .flatten(),
            Dest::Local => None,
            Dest::Outside => Some(remote),
        }
    }

    fn open(&mut self, cx: &mut Ctx, key: FlowKey, seg: &TcpRepr) -> Verdict {
        // Guest forwards are served even with restrict=on, as in libslirp.
        let fwd = cx
            .forwards
            .iter()
            .find(|g| SocketAddr::V4(g.addr) == key.remote);
        let target = match fwd.map(|g| g.target.clone()) {
            Some(FwdTarget::Tcp(addr)) => addr,
            Some(local) => return self.open_local(cx, key, seg, &local),
            None if cx.cfg.restrict => {
                log::debug!("user: restrict=on refuses TCP to {}", key.remote);
                reset_for(cx, &key, seg);
                return Verdict::Refused;
            }
            None => {
                let Some(target) = Self::host_target(cx, key.remote) else {
                    log::debug!("user: no host target for TCP to {}", key.remote);
                    reset_for(cx, &key, seg);
                    return Verdict::Refused;
                };
                target
            }
        };
        if cx.flows >= cx.cfg.limits.max_flows {
            log::debug!("user: flow limit reached, TCP to {} refused", key.remote);
            self.refused += 1;
            reset_for(cx, &key, seg);
            return Verdict::Refused;
        }
        let (stream, connected) = match sock::tcp_connect(target) {
            Ok(x) => x,
            Err(e) => {
                log::debug!("user: connect to {target} failed at once: {e}");
                refuse(cx, &key, seg, &e);
                return Verdict::Handled;
            }
        };
        sock::set_keepalive(&stream);
        let cap = cx.cfg.limits.tcp_buffer;
        let mut flow = Flow::from_guest_syn(key, HostStream::Tcp(stream), target, seg, cap);
        flow.timer = Some(cx.now + cx.cfg.limits.tcp_connect);
        let id = self.insert(flow);
        let f = self.flows[id].as_mut().expect("just inserted");
        // Watch for the connect's completion, or, when it completed inside connect(2),
        // straight away for what `connected` watches (one epoll_ctl, not ADD then MOD).
        if !set_interest(cx, id, f, connected, !connected) {
            self.remove(cx, id);
            reset_for(cx, &key, seg);
            return Verdict::Refused;
        }
        if connected {
            self.connected(cx, id);
        }
        Verdict::Handled
    }

    /// A guest connection to a guestfwd command or Unix socket: the connection is
    /// established at once, or reset when the command or socket fails.
    fn open_local(
        &mut self,
        cx: &mut Ctx,
        key: FlowKey,
        seg: &TcpRepr,
        target: &FwdTarget,
    ) -> Verdict {
        let commands = self.flows.iter().flatten().filter(|f| f.child.is_some());
        let too_many_commands =
            matches!(target, FwdTarget::Cmd(_)) && commands.count() >= cx.cfg.limits.max_commands;
        if cx.flows >= cx.cfg.limits.max_flows || too_many_commands {
            log::debug!(
                "user: flow or command limit reached, TCP to {} refused",
                key.remote
            );
            self.refused += 1;
            reset_for(cx, &key, seg);
            return Verdict::Refused;
        }
        let (stream, child) = match guestfwd::open_local(target) {
            Ok(x) => x,
            Err(e) => {
                log::debug!("user: guestfwd {target:?} failed: {e}");
                reset_for(cx, &key, seg);
                return Verdict::Refused;
            }
        };
        // The table shows the forward's virtual address (libslirp shows the same).
        let host = key.remote;
        let cap = cx.cfg.limits.tcp_buffer;
        let mut flow = Flow::from_guest_syn(key, stream, host, seg, cap);
        flow.child = child;
        let id = self.insert(flow);
        self.connected(cx, id);
        cx.flows += 1;
        Verdict::Handled
    }

    fn insert(&mut self, flow: Flow) -> usize {
        let key = flow.key;
        let id = match self.free.pop() {
            Some(id) => {
                self.flows[id] = Some(flow);
                id
            }
            None => {
                self.flows.push(Some(flow));
                self.flows.len() - 1
            }
        };
        self.index.insert(key, id);
        id
    }

    fn remove(&mut self, cx: &Ctx, id: usize) {
        if let Some(f) = self.flows.get_mut(id).and_then(Option::take) {
            if f.registered {
                cx.poller.remove(f.stream.as_raw_fd());
            }
            if let Some(child) = f.child {
                drop(f.stream);
                self.reaper.adopt(child);
            }
            self.index.remove(&f.key);
            self.free.push(id);
        }
    }

    /// True when `seg` is a SYN opening a new connection on the 4-tuple of flow `id`: the
    /// guest has sent its FIN there, and the SYN's sequence number lies at or beyond
    /// what the old connection used (so it is no retransmission of the old SYN).
    fn reopens(&self, id: usize, seg: &TcpRepr) -> bool {
        let Some(f) = self.flows.get(id).and_then(Option::as_ref) else {
            return false;
        };
        seg.control == TcpControl::Syn
            && seg.ack_number.is_none()
            && f.state == State::Established
            && f.guest_fin
            && !seq_lt(seg.seq_number.0 as u32, f.rcv_nxt)
    }

    /// The host connect of flow `id` completed: answer the guest's SYN.
    fn connected(&mut self, cx: &mut Ctx, id: usize) {
        let iss = self.next_iss(cx.now);
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        f.state = State::SynReceived;
        f.iss = iss;
        f.snd_una = iss;
        f.snd_nxt = iss.wrapping_add(1);
        f.snd_max = f.snd_nxt;
        f.timer = Some(cx.now + f.rtt.rto());
        f.rtt.on_send(f.snd_nxt, cx.now, true);
        emit_syn(cx, f, cap);
        set_interest(cx, id, f, true, false);
    }

    /// A segment for an existing flow.
    fn segment(&mut self, cx: &mut Ctx, id: usize, seg: &TcpRepr) {
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        let seq = seg.seq_number.0 as u32;
        if seg.control == TcpControl::Rst {
            let acceptable = match f.state {
                State::SynSent => seg.ack_number.map(|a| a.0 as u32) == Some(f.iss.wrapping_add(1)),
                _ => seq.wrapping_sub(f.rcv_nxt) <= f.window(cap).max(1),
            };
            if acceptable {
                log::debug!("user: guest reset TCP flow {:?}", f.key);
                f.stream.reset_on_close();
                self.remove(cx, id);
            }
            return;
        }
        match f.state {
            State::Connecting => return,
            State::SynSent => {
                let ok = seg.control == TcpControl::Syn
                    && seg.ack_number.map(|a| a.0 as u32) == Some(f.iss.wrapping_add(1));
                if !ok {
                    if let Some(a) = seg.ack_number {
                        emit_rst(cx, &f.key, a.0 as u32, None);
                    }
                    return;
                }
                f.rcv_nxt = seq.wrapping_add(1);
                f.peer_ws = seg.window_scale.unwrap_or(0).min(14);
                if seg.window_scale.is_none() {
                    f.our_ws = 0;
                }
                f.mss = usize::from(seg.max_seg_size.unwrap_or(536).clamp(64, f.key.our_mss()));
                f.sack_ok = seg.sack_permitted;
                f.snd_wnd = u32::from(seg.window_len);
                self.established(cx, id, true);
                return;
            }
            State::SynReceived => {
                if seg.control == TcpControl::Syn {
                    // Our SYN-ACK was lost: the guest retransmitted its SYN.
                    emit_syn(cx, f, cap);
                    return;
                }
                if seg.ack_number.map(|a| a.0 as u32) != Some(f.iss.wrapping_add(1)) {
                    if let Some(a) = seg.ack_number {
                        emit_rst(cx, &f.key, a.0 as u32, None);
                    }
                    return;
                }
                self.established(cx, id, false);
            }
            State::Established => {}
        }
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        if seg.control == TcpControl::Syn {
            f.ack_due = true;
        } else {
            on_ack(cx, f, seg);
            if on_data(f, seg, cap) {
                // Out of order, or a hole filled: the guest hears of it at once.
                emit(cx, f, TcpControl::None, f.snd_nxt, &[], cap);
            }
            // The ACK may have freed room for host data: watch the socket again
            // (read_host stopped watching it when the buffer was full).
            if !f.interest.0 && f.wants_host_data(cap) {
                let write = f.interest.1;
                set_interest(cx, id, f, true, write);
            }
        }
        let push = matches!(seg.control, TcpControl::Psh | TcpControl::Fin);
        self.after_guest_segment(cx, id, push);
    }

    fn established(&mut self, cx: &mut Ctx, id: usize, send_ack: bool) {
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        f.state = State::Established;
        f.snd_una = f.iss.wrapping_add(1);
        f.snd_nxt = f.snd_una;
        f.snd_max = f.snd_una;
        f.timer = None;
        f.retries = 0;
        // The handshake's round trip is the first measurement, unless it was resent.
        f.rtt.on_ack(f.snd_una, cx.now);
        f.rtt.reset_backoff();
        f.cc = Cc::new(f.mss);
        f.ack_due = send_ack;
        set_interest(cx, id, f, true, false);
        self.queue_ack(id);
    }

    /// Moves data after a guest segment: into the host socket, out to the guest.
    fn after_guest_segment(&mut self, cx: &mut Ctx, id: usize, push: bool) {
        let batch_full = self.flows[id]
            .as_ref()
            .is_some_and(|f| f.to_host.len() >= WRITE_BATCH);
        // Otherwise flush_all writes at the end of the burst, before the ACK goes out.
        if push || batch_full {
            self.write_host(cx, id);
        }
        self.send_guest(cx, id, usize::MAX);
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        // An ACK may have made room towards the guest: read from the host again.
        if f.state == State::Established && !f.interest.0 && f.to_guest.len() < cap && !f.host_eof {
            let write = f.interest.1;
            set_interest(cx, id, f, true, write);
        }
        if f.done() {
            if f.ack_due {
                // The guest's last FIN still gets its ACK.
                emit(cx, f, TcpControl::None, f.snd_nxt, &[], cap);
            }
            self.remove(cx, id);
        } else {
            self.queue_ack(id);
        }
    }

    /// Remembers, once, that flow `id` owes an ACK or has guest data to write: an ACK
    /// that rode on a data segment leaves the write owed.
    fn queue_ack(&mut self, id: usize) {
        if let Some(f) = self.flows.get_mut(id).and_then(Option::as_mut) {
            if (f.ack_due || !f.to_host.is_empty()) && !f.ack_queued {
                f.ack_queued = true;
                self.ack_list.push(id);
            }
        }
    }

    /// Writes buffered guest data to the host; half-closes after the guest's FIN.
    fn write_host(&mut self, cx: &mut Ctx, id: usize) {
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        let before = f.window(cap);
        let mut blocked = false;
        for _ in 0..64 {
            if f.to_host.is_empty() {
                break;
            }
            let (a, _) = f.to_host.as_slices();
            match f.stream.write(a) {
                Ok(0) => break,
                Ok(n) => {
                    f.to_host.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("user: write to host {} failed: {e}; resetting", f.host);
                    self.reset(cx, id);
                    return;
                }
            }
        }
        if f.to_host.is_empty() && f.guest_fin && !f.host_shut {
            f.stream.shutdown_write();
            f.host_shut = true;
        }
        // Tell the guest the window opened when it had shrunk below two segments.
        let after = f.window(cap);
        let mss = f.mss as u32;
        if f.state == State::Established && f.last_adv < 2 * mss && after >= before + mss {
            f.ack_due = true;
        }
        let read = f.state == State::Established && f.to_guest.len() < cap && !f.host_eof;
        set_interest(cx, id, f, read, blocked);
    }

    /// Reads what the host sent, as far as the buffer allows.
    fn read_host(&mut self, cx: &mut Ctx, id: usize, buf: &mut [u8]) {
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        if f.state != State::Established {
            return;
        }
        for _ in 0..16 {
            let room = cap.saturating_sub(f.to_guest.len()).min(buf.len());
            if room == 0 || f.host_eof {
                break;
            }
            match f.stream.read(&mut buf[..room]) {
                Ok(0) => f.host_eof = true,
                Ok(n) => f.to_guest.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("user: read from host {} failed: {e}; resetting", f.host);
                    self.reset(cx, id);
                    return;
                }
            }
        }
        let read = f.to_guest.len() < cap && !f.host_eof;
        let write = !f.to_host.is_empty();
        set_interest(cx, id, f, read, write);
        self.send_guest(cx, id, usize::MAX);
        if self.flows[id].as_ref().is_some_and(Flow::done) {
            self.remove(cx, id);
        }
    }

    /// Sends the guest what its window allows, at most `max_segs` segments.
    fn send_guest(&mut self, cx: &mut Ctx, id: usize, max_segs: usize) {
        let cap = cx.cfg.limits.tcp_buffer;
        let Some(f) = self.flows[id].as_mut() else {
            return;
        };
        if f.state != State::Established {
            return;
        }
        let payload = &mut self.payload;
        let seg_max = max_payload(cx, f, max_segs == 1);
        for _ in 0..max_segs.min(4096) {
            if f.fin_sent() {
                break;
            }
            let inflight = f.inflight();
            let unsent = f.to_guest.len() - inflight;
            if unsent == 0 && !f.host_eof {
                break;
            }
            let room = (f.snd_wnd as usize).saturating_sub(inflight);
            let cwnd_room = f.cc.window(f.mss).saturating_sub(inflight);
            if room == 0 && unsent > 0 {
                // Zero window: the timer sends a probe (persist).
                f.timer.get_or_insert(cx.now + f.rtt.rto());
                break;
            }
            // The congestion window's turn: no runt segments while the ACKs of the
            // flight will open it (sender silly-window avoidance).
            if cwnd_room < room && cwnd_room < unsent.min(f.mss) && inflight > 0 {
                break;
            }
            let cwnd_limited = cwnd_room < room;
            let room = room.min(cwnd_room);
            let queue = &cx.out.queue;
            if queue.len() >= QUEUE_HIGH_WATER
                || queue.bytes() + seg_max + FRAME_HEADROOM > queue.max_bytes()
            {
                self.flush_wanted = true;
                break;
            }
            let mut n = unsent.min(seg_max).min(room);
            if cwnd_limited && n > f.mss && n < unsent {
                // A GSO frame the congestion window cuts ends on a whole segment, as
                // the segments sent one by one would (no runt: see above).
                n -= n % f.mss;
            }
            payload.clear();
            payload.extend(f.to_guest.range(inflight..inflight + n));
            let fin = f.host_eof && n == unsent;
            let control = if fin {
                TcpControl::Fin
            } else if n == unsent {
                TcpControl::Psh
            } else {
                TcpControl::None
            };
            emit(cx, f, control, f.snd_nxt, payload, cap);
            let end = f.snd_nxt.wrapping_add(n as u32 + u32::from(fin));
            f.rtt.on_send(end, cx.now, !seq_lt(f.snd_nxt, f.snd_max));
            f.snd_nxt = end;
            if seq_lt(f.snd_max, f.snd_nxt) {
                f.snd_max = f.snd_nxt;
            }
            f.timer.get_or_insert(cx.now + f.rtt.rto());
        }
    }

    fn reset(&mut self, cx: &mut Ctx, id: usize) {
        if let Some(f) = self.flows[id].as_ref() {
            emit_rst(cx, &f.key, f.snd_nxt, Some(f.rcv_nxt));
        }
        self.remove(cx, id);
    }

    /// Sends owed ACKs and resumes flows that waited for room in the guest queue.
    pub fn flush_all(&mut self, cx: &mut Ctx) {
        let cap = cx.cfg.limits.tcp_buffer;
        if std::mem::take(&mut self.flush_wanted) {
            for id in 0..self.flows.len() {
                self.send_guest(cx, id, usize::MAX);
            }
        }
        for id in std::mem::take(&mut self.ack_list) {
            if let Some(f) = self.flows.get_mut(id).and_then(Option::as_mut) {
                f.ack_queued = false;
            }
            if self.flows[id]
                .as_ref()
                .is_some_and(|f| !f.to_host.is_empty())
            {
                self.write_host(cx, id);
            }
            if let Some(f) = self.flows.get_mut(id).and_then(Option::as_mut) {
                if f.ack_due {
                    emit(cx, f, TcpControl::None, f.snd_nxt, &[], cap);
                }
            }
            if self.flows[id].as_ref().is_some_and(Flow::done) {
                self.remove(cx, id);
            }
        }
    }

    /// True when [`TcpNat::flush_all`] would produce frames.
    pub fn has_output(&self) -> bool {
        self.flush_wanted || !self.ack_list.is_empty()
    }

    /// Handles readiness of a host socket.
    pub fn event(&mut self, cx: &mut Ctx, token: u64, writable: bool, error: bool, buf: &mut [u8]) {
        let slot = (token & 0xffff_ffff) as usize;
        if token & !0xffff_ffff == TOKEN_LISTEN {
            self.accept(cx, slot);
            return;
        }
        let Some(f) = self.flows.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if error && f.state != State::Connecting {
            if let Ok(Some(e)) | Err(e) = f.stream.take_error() {
                log::debug!("user: host socket {} failed: {e}; resetting", f.host);
                self.reset(cx, slot);
                return;
            }
        }
        match f.state {
            State::Connecting if writable || error => match f.stream.take_error() {
                Ok(None) => self.connected(cx, slot),
                Ok(Some(e)) | Err(e) => {
                    log::debug!("user: connect to {} failed: {e}", f.host);
                    let key = f.key;
                    let syn = syn_repr(f);
                    self.remove(cx, slot);
                    refuse(cx, &key, &syn.as_repr(), &e);
                }
            },
            State::Connecting => {}
            _ => {
                if writable {
                    self.write_host(cx, slot);
                }
                self.read_host(cx, slot, buf);
            }
        }
        self.queue_ack(slot);
    }

    /// The earliest timer of any flow.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.flows.iter().flatten().filter_map(|f| f.timer).min()
    }

    /// Fires due timers: retransmission, zero-window probes, SYN retries, connect timeout.
    pub fn timers(&mut self, cx: &mut Ctx) {
        self.reaper.reap();
        let cap = cx.cfg.limits.tcp_buffer;
        for id in 0..self.flows.len() {
            let Some(f) = self.flows[id].as_mut() else {
                continue;
            };
            if f.timer.is_none_or(|t| t > cx.now) {
                continue;
            }
            let outstanding = f.snd_una != f.snd_max;
            // Data waits (sent or not) and the guest's window is closed.
            let probe = f.state == State::Established && !f.to_guest.is_empty() && f.snd_wnd == 0;
            if f.state == State::Established && !outstanding && !probe {
                f.timer = None;
                f.retries = 0;
                continue;
            }
            // A closed window may stay closed for long: probes never give up.
            if !probe {
                f.retries += 1;
            }
            f.rtt.on_timeout();
            f.timer = Some(cx.now + f.rtt.rto());
            if f.retries > MAX_RETRIES {
                log::debug!("user: TCP flow {:?} timed out", f.key);
                self.reset(cx, id);
                continue;
            }
            match f.state {
                State::Connecting => {
                    log::debug!("user: connect to {} timed out", f.host);
                    let key = f.key;
                    emit_rst(cx, &key, 0, Some(f.rcv_nxt));
                    self.remove(cx, id);
                }
                State::SynReceived | State::SynSent => emit_syn(cx, f, cap),
                State::Established => {
                    // Go back to the oldest unacknowledged byte: one segment, or with
                    // the window closed a probe the way Linux sends it, an ACK for
                    // `snd_una - 1` without data, which the guest must answer with its
                    // window. A data byte pushed into the closed window would be
                    // dropped, and the next segment would then start past it.
                    f.snd_nxt = f.snd_una;
                    if !probe {
                        recovery::on_timeout(f);
                    }
                    if probe {
                        emit(cx, f, TcpControl::None, f.snd_una.wrapping_sub(1), &[], cap);
                    } else {
                        self.send_guest(cx, id, 1);
                    }
                }
            }
        }
    }

    /// The connection table.
    pub fn entries(&self) -> Vec<Connection> {
        let mut v: Vec<Connection> = self
            .listeners
            .iter()
            .filter_map(|(l, g)| {
                let host = l.local_addr().ok()?;
                Some(Connection {
                    proto: FwdProto::Tcp,
                    state: "HOST_FORWARD".into(),
                    guest: *g,
                    host,
                    source: host,
                    dest: *g,
                    recv_q: 0,
                    send_q: 0,
                })
            })
            .collect();
        v.extend(self.flows.iter().flatten().map(|f| {
            let (source, dest) = if f.hostfwd {
                // The accepted socket's own address, as libslirp's getsockname().
                let local = match &f.stream {
                    HostStream::Tcp(s) => s.local_addr().ok(),
                    HostStream::Unix(_) => None,
                };
                (local.unwrap_or(f.host), f.key.guest)
            } else {
                (f.key.guest, f.key.remote)
            };
            Connection {
                proto: FwdProto::Tcp,
                state: match f.state {
                    State::Connecting => "SYN_SENT",
                    State::SynReceived => "SYN_RECEIVED",
                    State::SynSent => "SYN_SENT",
                    State::Established if f.guest_fin && f.host_eof => "CLOSING",
                    State::Established if f.guest_fin => "CLOSE_WAIT",
                    State::Established if f.host_eof => "FIN_WAIT",
                    State::Established => "ESTABLISHED",
                }
                .into(),
                guest: f.key.guest,
                host: f.host,
                source,
                dest,
                recv_q: f.to_host.len() + f.reasm.bytes(),
                send_q: f.to_guest.len(),
            }
        }));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::flow::scale_for;
    use super::*;

    #[test]
    fn window_scale_covers_the_buffer() {
        assert_eq!(scale_for(65535), 0);
        assert_eq!(scale_for(65536), 1);
        assert_eq!(scale_for(512 * 1024), 4);
        assert_eq!(scale_for(usize::MAX), 14);
        assert!(seq_lt(0xffff_fff0, 5));
        assert!(!seq_lt(5, 0xffff_fff0));
    }
}
