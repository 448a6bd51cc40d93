//! Congestion control and loss recovery of the host-to-guest direction: a congestion
//! window with slow start and congestion avoidance (RFC 5681; initial window of RFC 6928,
//! slow start counting up to two segments per ACK as RFC 3465 allows), limited transmit
//! (RFC 3042), fast retransmit and NewReno fast recovery (RFC 6582), and with the guest's
//! SACK blocks the holes below its highest SACKed byte resent one per duplicate ACK
//! (RFC 6675's rule, reduced).

use smoltcp::wire::TcpControl;

use super::super::Ctx;
use super::flow::{seq_lt, Flow};
use super::segment::emit;

/// Duplicate ACKs that start fast retransmit.
const DUPACK_THRESHOLD: u32 = 3;

/// The congestion state of one flow.
#[derive(Debug)]
pub(super) struct Cc {
    /// Congestion window, bytes.
    pub(super) cwnd: u32,
    /// Slow-start threshold, bytes.
    pub(super) ssthresh: u32,
    /// Duplicate ACKs in a row.
    pub(super) dupacks: u32,
    /// In fast recovery: `recover` of RFC 6582, the highest byte sent when it began.
    recovering: Option<u32>,
    /// After a loss event, no new fast retransmit until an ACK passes this (RFC 6582 3.2
    /// step 2, 4.1).
    guard: Option<u32>,
    /// SACK recovery: holes below this were resent in this recovery.
    rexmit_next: u32,
    /// Bytes acknowledged towards the next congestion-avoidance increase.
    acked_acc: u32,
}

impl Cc {
    /// Fresh state for a segment size of `mss`: the initial window of RFC 6928 and no
    /// threshold yet.
    pub(super) fn new(mss: usize) -> Cc {
        let mss = mss as u32;
        Cc {
            cwnd: (10 * mss).min((2 * mss).max(14_600)),
            ssthresh: u32::MAX,
            dupacks: 0,
            recovering: None,
            guard: None,
            rexmit_next: 0,
            acked_acc: 0,
        }
    }

    /// Bytes the congestion state lets be outstanding: the window, plus one segment per
    /// early duplicate ACK (limited transmit).
    pub(super) fn window(&self, mss: usize) -> usize {
        let extra = if self.recovering.is_none() && self.dupacks < DUPACK_THRESHOLD {
            self.dupacks * mss as u32
        } else {
            0
        };
        self.cwnd.saturating_add(extra) as usize
    }

    /// The loss response: half the flight, at least two segments (RFC 5681 (4)).
    fn halve(&mut self, flight: u32, mss: u32) {
        self.ssthresh = (flight / 2).max(2 * mss);
    }
}

/// Bytes sent and not acknowledged, up to the highest byte ever sent.
fn flight(f: &Flow) -> u32 {
    f.snd_max.wrapping_sub(f.snd_una)
}

/// The guest acknowledged `acked` new bytes (`snd_una` already moved): grow the window,
/// or in fast recovery resend after a partial ACK and leave after a full one.
pub(super) fn on_new_ack(cx: &mut Ctx, f: &mut Flow, acked: u32, cap: usize) {
    let mss = f.mss as u32;
    f.cc.dupacks = 0;
    if let Some(g) = f.cc.guard {
        if seq_lt(g, f.snd_una) {
            f.cc.guard = None;
        }
    }
    let Some(recover) = f.cc.recovering else {
        if f.cc.cwnd < f.cc.ssthresh {
            f.cc.cwnd = f.cc.cwnd.saturating_add(acked.min(2 * mss));
        } else {
            f.cc.acked_acc = f.cc.acked_acc.saturating_add(acked);
            if f.cc.acked_acc >= f.cc.cwnd {
                f.cc.acked_acc -= f.cc.cwnd;
                f.cc.cwnd = f.cc.cwnd.saturating_add(mss);
            }
        }
        // Beyond what the buffer could ever fill the window means nothing.
        f.cc.cwnd = f.cc.cwnd.min((cap as u32).saturating_mul(2).max(4 * mss));
        return;
    };
    if seq_lt(f.snd_una, recover) {
        // Partial ACK (RFC 6582 3.2 step 5): the next hole is lost too.
        f.cc.cwnd = f.cc.cwnd.saturating_sub(acked);
        if acked >= mss {
            f.cc.cwnd = f.cc.cwnd.saturating_add(mss);
        }
        if !seq_lt(f.snd_una, f.cc.rexmit_next) || f.scoreboard.is_empty() {
            f.cc.rexmit_next = f.snd_una;
        }
        resend_next(cx, f, cap);
    } else {
        // Full ACK: leave recovery (step 6, option 1).
        f.cc.recovering = None;
        f.cc.cwnd = f.cc.ssthresh.min(flight(f).max(mss) + mss);
        f.cc.acked_acc = 0;
    }
}

/// A duplicate ACK: the third starts fast retransmit and recovery; in recovery each one
/// inflates the window by a segment and, with SACK, resends the next hole.
pub(super) fn on_dup_ack(cx: &mut Ctx, f: &mut Flow, cap: usize) {
    let mss = f.mss as u32;
    f.cc.dupacks = f.cc.dupacks.saturating_add(1);
    if f.cc.recovering.is_some() {
        f.cc.cwnd = f.cc.cwnd.saturating_add(mss);
        if !f.scoreboard.is_empty() {
            resend_next(cx, f, cap);
        }
        return;
    }
    if f.cc.dupacks != DUPACK_THRESHOLD || f.cc.guard.is_some() {
        return;
    }
    f.cc.halve(flight(f), mss);
    f.cc.recovering = Some(f.snd_max);
    f.cc.guard = Some(f.snd_max);
    f.cc.cwnd = f.cc.ssthresh.saturating_add(3 * mss);
    f.cc.rexmit_next = f.snd_una;
    resend_next(cx, f, cap);
}

/// The retransmission timer fired (RFC 5681 (4), RFC 6582 4.1): one segment of window,
/// recovery abandoned, the guest's SACK blocks forgotten (it may renege).
pub(super) fn on_timeout(f: &mut Flow) {
    let mss = f.mss as u32;
    f.cc.halve(flight(f), mss);
    f.cc.cwnd = mss;
    f.cc.dupacks = 0;
    f.cc.recovering = None;
    f.cc.guard = Some(f.snd_max);
    f.cc.acked_acc = 0;
    f.scoreboard.clear();
}

/// Resends one segment: the next hole at or after `rexmit_next` (the SACK scoreboard's,
/// or without SACK blocks the data at `rexmit_next` itself).
fn resend_next(cx: &mut Ctx, f: &mut Flow, cap: usize) {
    let from = f.cc.rexmit_next;
    let (seq, limit) = if f.scoreboard.is_empty() {
        if !seq_lt(from, f.snd_max) {
            return;
        }
        (from, f.snd_max.wrapping_sub(from))
    } else {
        match f.scoreboard.next_hole(f.snd_una, from) {
            Some((s, e)) => (s, e.wrapping_sub(s)),
            None => return,
        }
    };
    let sent = resend(cx, f, seq, limit as usize, cap);
    f.cc.rexmit_next = seq.wrapping_add(sent.max(1));
}

/// Resends at most one segment of the data at `seq` (at most `limit` bytes, with the FIN
/// when it reaches the end of the stream); returns the payload length.
pub(super) fn resend(cx: &mut Ctx, f: &mut Flow, seq: u32, limit: usize, cap: usize) -> u32 {
    let off = seq.wrapping_sub(f.snd_una) as usize;
    let len = f.to_guest.len();
    if off > len || (off == len && !f.host_eof) {
        return 0;
    }
    let n = (len - off).min(f.mss).min(limit);
    let payload: Vec<u8> = f.to_guest.range(off..off + n).copied().collect();
    let fin = f.host_eof && off + n == len;
    let control = if fin {
        TcpControl::Fin
    } else {
        TcpControl::Psh
    };
    f.rtt.on_retransmit();
    emit(cx, f, control, seq, &payload, cap);
    n as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(Cc::new(1460).cwnd, 14_600);
        assert_eq!(Cc::new(536).cwnd, 5360);
        assert_eq!(Cc::new(64).cwnd, 640);
        let mut c = Cc::new(1460);
        c.dupacks = 2;
        assert_eq!(c.window(1460), 14_600 + 2 * 1460, "limited transmit");
        c.halve(10_000, 1460);
        assert_eq!(c.ssthresh, 5000);
        c.halve(1000, 1460);
        assert_eq!(c.ssthresh, 2920);
    }
}
