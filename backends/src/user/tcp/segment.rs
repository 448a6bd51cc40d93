//! Segments the NAT sends the guest: data/ACK (several segments' worth in one GSO frame
//! when the peer takes them), SYN or SYN-ACK, RST, and the answers to a connection the
//! host refused.

use std::io;

use smoltcp::wire::{IpProtocol, TcpControl, TcpRepr, TcpSeqNumber};

use super::super::icmp::{unreachable, Unreachable};
use super::super::out::GSO_MAX_PAYLOAD;
use super::super::Ctx;
use super::flow::{Flow, FlowKey};

/// Emits a segment of flow `f` carrying the current ACK and window.
pub(super) fn emit(
    cx: &mut Ctx,
    f: &mut Flow,
    control: TcpControl,
    seq: u32,
    payload: &[u8],
    cap: usize,
) {
    let free = f.window(cap);
    // Receiver silly-window avoidance (RFC 1122 4.2.3.3): keep the right edge where it
    // was until it can move by a full segment (or half the buffer); never shrink it.
    let cur = f.adv_edge.wrapping_sub(f.rcv_nxt);
    let cur = if (cur as i32) < 0 { 0 } else { cur.min(free) };
    let step = (f.mss as u32).min(cap as u32 / 2);
    let wnd = if free.saturating_sub(cur) >= step {
        free
    } else {
        cur
    };
    let scaled = (wnd >> f.our_ws).min(65535);
    f.last_adv = scaled << f.our_ws;
    f.adv_edge = f.rcv_nxt.wrapping_add(f.last_adv);
    f.ack_due = false;
    let repr = TcpRepr {
        src_port: f.key.remote.port(),
        dst_port: f.key.guest.port(),
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(f.rcv_nxt as i32)),
        window_len: scaled as u16,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        // RFC 2018: what lies beyond a hole, on ACKs (a data segment has no room).
        sack_ranges: if f.sack_ok && payload.is_empty() {
            f.reasm.sack_blocks()
        } else {
            [None; 3]
        },
        timestamp: None,
        payload,
    };
    if payload.len() > f.mss {
        // More than one segment: only when the peer takes GSO frames (send_guest).
        cx.out
            .tcp_gso(f.key.remote.ip(), f.key.guest.ip(), &repr, f.mss);
        return;
    }
    cx.out.tcp(f.key.remote.ip(), f.key.guest.ip(), &repr);
}

/// The most payload one data frame to the guest carries: one MSS, or with a peer that
/// takes GSO frames (a tap with `vnet_hdr`) as many whole MSS as fit in 64 KiB, cut at
/// the MSS by whoever needs it cut. `single`: one segment was asked for (a
/// retransmission), which stays one MSS.
pub(super) fn max_payload(cx: &Ctx, f: &Flow, single: bool) -> usize {
    if !cx.out.gso || single || f.mss == 0 {
        return f.mss;
    }
    (GSO_MAX_PAYLOAD / f.mss * f.mss).max(f.mss)
}

/// Emits our SYN (hostfwd) or SYN-ACK (guest-initiated), with MSS and window scale.
pub(super) fn emit_syn(cx: &mut Ctx, f: &mut Flow, cap: usize) {
    let offer_ws = f.hostfwd || f.our_ws > 0;
    let repr = TcpRepr {
        src_port: f.key.remote.port(),
        dst_port: f.key.guest.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(f.iss as i32),
        ack_number: (!f.hostfwd).then_some(TcpSeqNumber(f.rcv_nxt as i32)),
        window_len: f.window(cap).min(65535) as u16,
        window_scale: offer_ws.then_some(f.our_ws),
        max_seg_size: Some(f.key.our_mss()),
        // Offered on our SYN (hostfwd), or answered when the guest offered it.
        sack_permitted: f.hostfwd || f.sack_ok,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    cx.out.tcp(f.key.remote.ip(), f.key.guest.ip(), &repr);
}

/// A segment without options, window or payload.
fn bare(ports: (u16, u16), control: TcpControl, seq: u32, ack: Option<u32>) -> TcpRepr<'static> {
    TcpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    }
}

pub(super) fn emit_rst(cx: &mut Ctx, key: &FlowKey, seq: u32, ack: Option<u32>) {
    let repr = bare(
        (key.remote.port(), key.guest.port()),
        TcpControl::Rst,
        seq,
        ack,
    );
    cx.out.tcp(key.remote.ip(), key.guest.ip(), &repr);
}

/// RFC 793's reset for a segment that belongs to no connection.
pub(super) fn reset_for(cx: &mut Ctx, key: &FlowKey, seg: &TcpRepr) {
    match seg.ack_number {
        Some(a) => emit_rst(cx, key, a.0 as u32, None),
        None => {
            let len = seg.payload.len() as u32 + seg.control.len() as u32;
            emit_rst(
                cx,
                key,
                0,
                Some((seg.seq_number.0 as u32).wrapping_add(len)),
            )
        }
    }
}

/// A guest SYN whose host connect failed: RST when refused, ICMP (or ICMPv6) destination
/// unreachable when the host has no route.
pub(super) fn refuse(cx: &mut Ctx, key: &FlowKey, seg: &TcpRepr, e: &io::Error) {
    let why = match e.raw_os_error() {
        Some(libc::EHOSTUNREACH) => Unreachable::Host,
        // IPv6 with no source address for the destination (no route at all) fails
        // with EADDRNOTAVAIL rather than ENETUNREACH.
        Some(libc::ENETUNREACH | libc::EADDRNOTAVAIL) => Unreachable::Net,
        _ => {
            reset_for(cx, key, seg);
            return;
        }
    };
    // The first 8 bytes of the guest's TCP header: ports and sequence number.
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&key.guest.port().to_be_bytes());
    quoted[2..4].copy_from_slice(&key.remote.port().to_be_bytes());
    quoted[4..8].copy_from_slice(&(seg.seq_number.0 as u32).to_be_bytes());
    unreachable(cx, why, IpProtocol::Tcp, key.guest, key.remote, &quoted);
}

/// Enough of the guest's SYN to answer it after the flow is gone.
pub(super) struct SynInfo {
    src_port: u16,
    dst_port: u16,
    seq: u32,
}

impl SynInfo {
    pub(super) fn as_repr(&self) -> TcpRepr<'static> {
        bare(
            (self.src_port, self.dst_port),
            TcpControl::Syn,
            self.seq,
            None,
        )
    }
}

pub(super) fn syn_repr(f: &Flow) -> SynInfo {
    SynInfo {
        src_port: f.key.guest.port(),
        dst_port: f.key.remote.port(),
        seq: f.rcv_nxt.wrapping_sub(1),
    }
}
