//! One NAT'ed TCP flow: its state, buffers, sequence space, and what a guest segment
//! does to it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use smoltcp::wire::{TcpControl, TcpRepr};

use super::super::guestfwd::HostStream;
use super::super::Ctx;
use super::reasm::Reasm;
use super::recovery::{self, Cc};
use super::rtt::Rtt;
use super::sack::Scoreboard;
use super::{OUR_MSS, READ_CHUNK, TOKEN_FLOW};

pub(super) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Guest-side view of a flow: the guest's endpoint and the remote endpoint it addressed,
/// both of one address family (IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    pub guest: SocketAddr,
    pub remote: SocketAddr,
}

impl FlowKey {
    /// The segment size we announce and accept: the 1500-byte MTU less the IP and TCP
    /// headers of the flow's family.
    pub(super) fn our_mss(&self) -> u16 {
        if self.guest.is_ipv4() {
            OUR_MSS
        } else {
            OUR_MSS - 20
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Guest SYN received, host connect in progress.
    Connecting,
    /// Host connected, SYN-ACK sent, waiting for the guest's ACK.
    SynReceived,
    /// hostfwd: host connection accepted, SYN sent to the guest.
    SynSent,
    /// Data flows.
    Established,
}

#[derive(Debug)]
pub(super) struct Flow {
    pub(super) key: FlowKey,
    pub(super) stream: HostStream,
    /// The command serving a guestfwd flow.
    pub(super) child: Option<std::process::Child>,
    pub(super) host: SocketAddr,
    pub(super) state: State,
    pub(super) hostfwd: bool,
    // Guest to host.
    pub(super) rcv_nxt: u32,
    pub(super) to_host: VecDeque<u8>,
    /// Guest data received beyond a hole.
    pub(super) reasm: Reasm,
    /// Both ends offered SACK (RFC 2018) on their SYN.
    pub(super) sack_ok: bool,
    pub(super) guest_fin: bool,
    pub(super) host_shut: bool,
    // Host to guest: `to_guest[0]` is sequence number `snd_una` once the SYN is acked.
    pub(super) iss: u32,
    pub(super) snd_una: u32,
    pub(super) snd_nxt: u32,
    pub(super) snd_max: u32,
    pub(super) to_guest: VecDeque<u8>,
    pub(super) host_eof: bool,
    pub(super) fin_acked: bool,
    pub(super) snd_wnd: u32,
    pub(super) peer_ws: u8,
    pub(super) our_ws: u8,
    pub(super) mss: usize,
    /// Congestion window and fast recovery.
    pub(super) cc: Cc,
    /// What the guest's SACK blocks say it holds.
    pub(super) scoreboard: Scoreboard,
    // Timers.
    pub(super) rtt: Rtt,
    pub(super) retries: u32,
    pub(super) timer: Option<Instant>,
    pub(super) ack_due: bool,
    pub(super) last_adv: u32,
    /// Right edge of the window last advertised (sequence number).
    pub(super) adv_edge: u32,
    pub(super) ack_queued: bool,
    pub(super) interest: (bool, bool),
    pub(super) registered: bool,
}

impl Flow {
    /// A flow in `state` with empty buffers and fresh timers; callers set the rest.
    pub(super) fn new(key: FlowKey, stream: HostStream, host: SocketAddr, state: State) -> Flow {
        Flow {
            key,
            stream,
            child: None,
            host,
            state,
            hostfwd: state == State::SynSent,
            rcv_nxt: 0,
            to_host: VecDeque::new(),
            reasm: Reasm::default(),
            sack_ok: false,
            guest_fin: false,
            host_shut: false,
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            to_guest: VecDeque::new(),
            host_eof: false,
            fin_acked: false,
            snd_wnd: 0,
            peer_ws: 0,
            our_ws: 0,
            mss: 536,
            cc: Cc::new(536),
            scoreboard: Scoreboard::default(),
            rtt: Rtt::default(),
            retries: 0,
            timer: None,
            ack_due: false,
            last_adv: 0,
            adv_edge: 0,
            ack_queued: false,
            interest: (false, false),
            registered: false,
        }
    }

    /// A flow answering the guest's SYN `seg`: its sequence number, window, scale, MSS.
    pub(super) fn from_guest_syn(
        key: FlowKey,
        stream: HostStream,
        host: SocketAddr,
        seg: &TcpRepr,
        cap: usize,
    ) -> Flow {
        let mut f = Flow::new(key, stream, host, State::Connecting);
        f.rcv_nxt = (seg.seq_number.0 as u32).wrapping_add(1);
        f.snd_wnd = u32::from(seg.window_len);
        f.peer_ws = seg.window_scale.unwrap_or(0).min(14);
        if seg.window_scale.is_some() {
            f.our_ws = scale_for(cap);
        }
        f.mss = usize::from(seg.max_seg_size.unwrap_or(536).clamp(64, key.our_mss()));
        f.sack_ok = seg.sack_permitted;
        f
    }

    /// True when the flow should read from the host again: established, no EOF yet,
    /// and room for at least a quarter of the buffer (or a whole read chunk), so a
    /// draining buffer does not turn into one small read per guest ACK.
    pub(super) fn wants_host_data(&self, cap: usize) -> bool {
        let room = cap.saturating_sub(self.to_guest.len());
        self.state == State::Established && !self.host_eof && room >= (cap / 4).min(READ_CHUNK)
    }

    pub(super) fn window(&self, cap: usize) -> u32 {
        cap.saturating_sub(self.to_host.len()) as u32
    }

    /// Bytes sent and not yet acknowledged (the FIN excluded).
    pub(super) fn inflight(&self) -> usize {
        (self.snd_nxt.wrapping_sub(self.snd_una) as usize).min(self.to_guest.len())
    }

    pub(super) fn fin_sent(&self) -> bool {
        self.fin_acked
            || (self.host_eof
                && self.snd_nxt.wrapping_sub(self.snd_una) as usize > self.to_guest.len())
    }

    pub(super) fn done(&self) -> bool {
        self.guest_fin && self.host_shut && self.fin_acked
    }
}

/// The smallest window scale that lets a `cap`-byte buffer be advertised whole.
pub(super) fn scale_for(cap: usize) -> u8 {
    let mut s = 0u8;
    while s < 14 && (65535usize << s) < cap {
        s += 1;
    }
    s
}

/// Watches the flow's socket for what it can make progress on. A socket with nothing to
/// wait for leaves the epoll set, so a peer's hang-up cannot make it spin; false when
/// epoll refused.
pub(super) fn set_interest(cx: &Ctx, id: usize, f: &mut Flow, read: bool, write: bool) -> bool {
    let want = read || write;
    if f.interest == (read, write) && f.registered == want {
        return true;
    }
    let fd = f.stream.as_raw_fd();
    let token = TOKEN_FLOW | id as u64;
    let r = if !want {
        cx.poller.remove(fd);
        Ok(())
    } else if f.registered {
        cx.poller.modify(fd, token, read, write)
    } else {
        cx.poller.add(fd, token, read, write)
    };
    match r {
        Ok(()) => {
            f.interest = (read, write);
            f.registered = want;
            true
        }
        Err(e) => {
            log::debug!("user: epoll refused a TCP socket: {e}");
            false
        }
    }
}

pub(super) fn on_ack(cx: &mut Ctx, f: &mut Flow, seg: &TcpRepr) {
    let Some(ack) = seg.ack_number.map(|a| a.0 as u32) else {
        return;
    };
    let cap = cx.cfg.limits.tcp_buffer;
    let acked = ack.wrapping_sub(f.snd_una);
    let outstanding = f.snd_max.wrapping_sub(f.snd_una);
    let new_wnd = u32::from(seg.window_len) << f.peer_ws;
    if acked as i32 > 0 && acked <= outstanding {
        let data_len = f.to_guest.len() as u32;
        f.to_guest.drain(..acked.min(data_len) as usize);
        if f.host_eof && acked == data_len + 1 {
            f.fin_acked = true;
        }
        f.snd_una = ack;
        if seq_lt(f.snd_nxt, ack) {
            f.snd_nxt = ack;
        }
        f.retries = 0;
        f.rtt.on_ack(ack, cx.now);
        if f.sack_ok {
            f.scoreboard.update(ack, f.snd_max, &seg.sack_ranges);
        } else {
            f.scoreboard.advance(ack);
        }
        recovery::on_new_ack(cx, f, acked, cap);
        f.timer = (f.snd_una != f.snd_max).then_some(cx.now + f.rtt.rto());
    } else if acked == 0
        && seg.payload.is_empty()
        && seg.control != TcpControl::Fin
        && f.snd_una != f.snd_max
        && new_wnd != 0
    {
        // A duplicate ACK (RFC 5681: same window; RFC 6675: or new SACK information);
        // answers to zero-window probes are not.
        let sacked = f.sack_ok && f.scoreboard.update(ack, f.snd_max, &seg.sack_ranges);
        if new_wnd == f.snd_wnd || sacked {
            recovery::on_dup_ack(cx, f, cap);
        }
    }
    if !seq_lt(ack, f.snd_una) {
        if f.snd_wnd == 0 && new_wnd != 0 {
            // The window reopened: the probes' backoff is over (as Linux's
            // tcp_ack_probe); send_guest arms a fresh timer for what it sends.
            f.rtt.reset_backoff();
            f.retries = 0;
            if f.snd_una == f.snd_max {
                f.timer = None;
            } else {
                f.timer = Some(cx.now + f.rtt.rto());
            }
        }
        f.snd_wnd = new_wnd;
        if new_wnd == 0 && acked == 0 {
            // The guest answered a probe with a closed window: it is alive, keep probing.
            f.retries = 0;
        }
    }
}

/// Takes the guest's data: in order into the buffer towards the host, beyond a hole
/// into the out-of-order queue. True when the guest should get an ACK at once: a
/// segment beyond a hole (a duplicate ACK, RFC 5681 4.2) or one that filled a hole.
pub(super) fn on_data(f: &mut Flow, seg: &TcpRepr, cap: usize) -> bool {
    let fin = seg.control == TcpControl::Fin;
    let seq = seg.seq_number.0 as u32;
    if seg.payload.is_empty() && !fin {
        // A pure ACK is not answered (that would be an ACK of an ACK, which a guest
        // with data in flight counts as a duplicate); one below rcv_nxt is a window or
        // keepalive probe and is (RFC 9293 3.10.7.4).
        if seq != f.rcv_nxt {
            f.ack_due = true;
        }
        return false;
    }
    f.ack_due = true;
    if f.guest_fin {
        // Data after the FIN: only ACK.
        return false;
    }
    let off = f.rcv_nxt.wrapping_sub(seq);
    if (off as i32) < 0 {
        // Beyond a hole: keep it (a segment with the FIN is not kept, nor SACKed, so
        // the guest resends it whole).
        if !fin {
            f.reasm.insert(f.rcv_nxt, f.window(cap), seq, seg.payload);
        }
        return true;
    }
    if off as usize > seg.payload.len() {
        // An old duplicate: only ACK.
        return false;
    }
    let data = &seg.payload[off as usize..];
    let take = data.len().min(f.window(cap) as usize);
    f.to_host.extend(&data[..take]);
    f.rcv_nxt = f.rcv_nxt.wrapping_add(take as u32);
    if fin && take == data.len() {
        f.rcv_nxt = f.rcv_nxt.wrapping_add(1);
        f.guest_fin = true;
        // Nothing follows the FIN: whatever was queued beyond it is void.
        f.reasm.clear();
        return false;
    }
    if f.reasm.is_empty() {
        return false;
    }
    let more = f.reasm.take_into(f.rcv_nxt, &mut f.to_host);
    f.rcv_nxt = f.rcv_nxt.wrapping_add(more as u32);
    true
}
