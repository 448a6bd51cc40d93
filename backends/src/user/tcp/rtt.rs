//! Round-trip time and retransmission timeout of the host-to-guest direction (RFC 6298):
//! 1 s before the first measurement, `SRTT + max(G, 4 RTTVAR)` after, never below
//! [`RTO_FLOOR`] nor above [`RTO_CAP`], doubled on each timeout until a new measurement.
//! One segment is timed at a time, and never one that was retransmitted (Karn's rule).

use std::time::{Duration, Instant};

use super::flow::seq_lt;

/// Timeout before any RTT was measured (RFC 6298 2.1).
pub(super) const RTO_INITIAL: Duration = Duration::from_secs(1);
/// Lowest timeout (Linux's `TCP_RTO_MIN`; RFC 6298 2.4 allows below 1 s).
pub(super) const RTO_FLOOR: Duration = Duration::from_millis(200);
/// Highest timeout (RFC 6298 2.5).
pub(super) const RTO_CAP: Duration = Duration::from_secs(60);
/// The clock granularity G.
const GRANULARITY: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub(super) struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// The timeout from the estimate, before backoff.
    base: Duration,
    /// Timeouts since the last measurement (the backoff exponent).
    backoff: u32,
    /// The segment being timed: the sequence number it ends at, and when it was sent.
    timing: Option<(u32, Instant)>,
}

impl Default for Rtt {
    fn default() -> Self {
        Rtt {
            srtt: None,
            rttvar: Duration::ZERO,
            base: RTO_INITIAL,
            backoff: 0,
            timing: None,
        }
    }
}

impl Rtt {
    /// The retransmission timeout now, backoff included.
    pub(super) fn rto(&self) -> Duration {
        let mul = 1u32 << self.backoff.min(16);
        self.base.saturating_mul(mul).min(RTO_CAP)
    }

    /// The smoothed RTT, once measured.
    #[cfg(test)]
    pub(super) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// A segment ending at `end` went out at `now`; `fresh` when it is new data (not a
    /// retransmission). Starts timing it when nothing is timed.
    pub(super) fn on_send(&mut self, end: u32, now: Instant, fresh: bool) {
        if !fresh {
            // Karn: a retransmission's ACK is ambiguous; stop timing what it overlaps.
            self.timing = None;
        } else if self.timing.is_none() {
            self.timing = Some((end, now));
        }
    }

    /// Something was retransmitted: the timed segment's ACK would be ambiguous.
    pub(super) fn on_retransmit(&mut self) {
        self.timing = None;
    }

    /// The guest acknowledged up to `ack` at `now`: a measurement when it covers the
    /// timed segment.
    pub(super) fn on_ack(&mut self, ack: u32, now: Instant) {
        let Some((end, sent)) = self.timing else {
            return;
        };
        if seq_lt(ack, end) {
            return;
        }
        self.timing = None;
        self.sample(now.saturating_duration_since(sent));
    }

    /// One measurement `r` (RFC 6298 2.2, 2.3); ends the backoff (5.7).
    pub(super) fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.base = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(RTO_FLOOR, RTO_CAP);
        self.backoff = 0;
    }

    /// The timer fired: double the timeout (RFC 6298 5.5) and stop timing.
    pub(super) fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(16);
        self.timing = None;
    }

    /// The guest reopened its window: the zero-window probes' backoff is over.
    pub(super) fn reset_backoff(&mut self) {
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn initial_floor_cap_and_smoothing() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(), RTO_INITIAL);
        // First sample 100 ms: SRTT 100, RTTVAR 50, RTO 100 + 200 = 300 ms.
        r.sample(100 * MS);
        assert_eq!(r.rto(), 300 * MS);
        // Second sample 200 ms: RTTVAR = 37.5 + 25 = 62.5, SRTT = 87.5 + 25 = 112.5.
        r.sample(200 * MS);
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rto(), Duration::from_micros(112_500 + 250_000));
        // Tiny RTTs (a loopback-class guest): the floor.
        let mut r = Rtt::default();
        for _ in 0..20 {
            r.sample(Duration::from_micros(50));
        }
        assert_eq!(r.rto(), RTO_FLOOR);
        // Backoff doubles up to the cap; a measurement ends it.
        for _ in 0..40 {
            r.on_timeout();
        }
        assert_eq!(r.rto(), RTO_CAP);
        r.sample(Duration::from_micros(50));
        assert_eq!(r.rto(), RTO_FLOOR);
        let mut r = Rtt::default();
        r.sample(Duration::from_secs(100));
        assert_eq!(r.rto(), RTO_CAP);
    }

    #[test]
    fn karn_no_sample_from_a_retransmission() {
        let t0 = Instant::now();
        let mut r = Rtt::default();
        r.on_send(1000, t0, true);
        // A second fresh segment does not restart the timing.
        r.on_send(2000, t0 + 10 * MS, true);
        r.on_ack(999, t0 + 50 * MS);
        assert_eq!(r.srtt(), None, "ACK below the timed segment's end");
        r.on_ack(1000, t0 + 80 * MS);
        assert_eq!(r.srtt(), Some(80 * MS));
        r.on_send(3000, t0 + 100 * MS, true);
        r.on_timeout();
        r.on_send(3000, t0 + 400 * MS, false);
        r.on_ack(3000, t0 + 410 * MS);
        assert_eq!(r.srtt(), Some(80 * MS), "no sample across a retransmission");
        r.on_send(4000, t0 + 500 * MS, true);
        r.on_send(4000, t0 + 600 * MS, false);
        r.on_ack(4000, t0 + 700 * MS);
        assert_eq!(r.srtt(), Some(80 * MS));
    }
}
