//! The injected clock every device timer runs on.
//!
//! Models never read the wall clock. They read [`Clock::now_ns`] when the guest touches a
//! register or when [`crate::NicDevice::run_timers`] is called, and publish their next
//! deadline through [`crate::NicDevice::next_deadline`]. Tests and fuzzers drive time with
//! a [`ManualClock`]; a VMM passes a clock backed by `CLOCK_MONOTONIC`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A monotonic time source in nanoseconds. Must never go backwards.
pub trait Clock: Send + Sync {
    /// Current time in nanoseconds since an arbitrary origin.
    fn now_ns(&self) -> u64;
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `ns` nanoseconds (saturating).
    pub fn advance(&self, ns: u64) {
        let cur = self.now.load(Ordering::SeqCst);
        self.now.store(cur.saturating_add(ns), Ordering::SeqCst);
    }

    /// Sets the time; ignored if it would go backwards.
    pub fn set(&self, ns: u64) {
        self.now.fetch_max(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// A one-shot timer: an optional deadline on the injected clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    deadline: Option<u64>,
}

impl Timer {
    /// A disarmed timer.
    pub const fn new() -> Self {
        Timer { deadline: None }
    }

    /// Arms the timer to fire `delay_ns` after `now`, replacing any earlier deadline.
    pub fn arm(&mut self, now: u64, delay_ns: u64) {
        self.deadline = Some(now.saturating_add(delay_ns));
    }

    /// Arms the timer only if it is not armed already.
    pub fn arm_if_idle(&mut self, now: u64, delay_ns: u64) {
        if self.deadline.is_none() {
            self.arm(now, delay_ns);
        }
    }

    /// Disarms the timer.
    pub fn cancel(&mut self) {
        self.deadline = None;
    }

    /// The deadline, if armed.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// True if armed.
    pub fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }

    /// If the deadline has passed at `now`, disarms the timer and returns true.
    pub fn fire(&mut self, now: u64) -> bool {
        match self.deadline {
            Some(d) if d <= now => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

/// The earliest of several optional deadlines.
pub fn earliest(deadlines: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_forward_only() {
        let c = ManualClock::new();
        c.advance(10);
        c.set(5);
        assert_eq!(c.now_ns(), 10);
        let c2 = c.clone();
        c2.advance(5);
        assert_eq!(c.now_ns(), 15);
    }

    #[test]
    fn timer_fires_once() {
        let mut t = Timer::new();
        t.arm(100, 50);
        assert!(!t.fire(149));
        assert!(t.fire(150));
        assert!(!t.fire(1000));
        assert_eq!(earliest([None, Some(3), Some(2)]), Some(2));
    }
}
