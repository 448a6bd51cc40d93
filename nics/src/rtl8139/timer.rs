//! TCTR, the 32-bit counter running at the 33 MHz PCI clock, and TimerInt: when TCTR
//! reaches a non-zero TimerInt, ISR.PCSTimeout is set. Writing TCTR restarts it from 0.
//! HltClk `'H'` freezes the counter, `'R'` lets it run again. Time is the injected clock.

use vm_memory::GuestMemory;

use super::regs::int;
use super::Rtl8139;

/// PCI clock rate.
const HZ: u128 = 33_000_000;
/// One full TCTR cycle in ticks.
const CYCLE: u64 = 1 << 32;

/// Clock ticks elapsed in `ns` nanoseconds.
pub(super) fn ns_to_ticks(ns: u64) -> u64 {
    (ns as u128 * HZ / 1_000_000_000) as u64
}

/// The first nanosecond at which `ticks` ticks have elapsed.
pub(super) fn ticks_to_ns(ticks: u64) -> u64 {
    (ticks as u128 * 1_000_000_000).div_ceil(HZ) as u64
}

impl<M: GuestMemory> Rtl8139<M> {
    /// Ticks counted since TCTR was last 0: those since `tctr_base` plus the count the
    /// counter had when it (re)started there.
    fn ticks_since_base(&self) -> u64 {
        ns_to_ticks(self.clock.now_ns().saturating_sub(self.tctr_base)) + self.tctr_offset
    }

    /// Lets the counter run on from `count` at the current time.
    pub(super) fn tctr_start_at(&mut self, count: u32) {
        self.tctr_base = self.clock.now_ns();
        self.tctr_offset = count as u64;
    }

    /// The current TCTR value.
    pub(super) fn tctr_now(&self) -> u32 {
        if self.r.clock_halted {
            self.r.tctr
        } else {
            self.ticks_since_base() as u32
        }
    }

    /// A TCTR write: the counter restarts at 0.
    pub(super) fn tctr_reset(&mut self) {
        self.r.tctr = 0;
        self.tctr_start_at(0);
        self.rearm_timer();
    }

    /// Recomputes when TCTR next equals TimerInt.
    pub(super) fn rearm_timer(&mut self) {
        if self.r.timer_int == 0 || self.r.clock_halted {
            self.timer_target = None;
            return;
        }
        let now = self.ticks_since_base();
        let mut t = (now & !(CYCLE - 1)) + self.r.timer_int as u64;
        if t <= now {
            t += CYCLE;
        }
        self.timer_target = Some(t);
    }

    pub(super) fn timer_deadline(&self) -> Option<u64> {
        self.timer_target.map(|t| {
            self.tctr_base
                .saturating_add(ticks_to_ns(t.saturating_sub(self.tctr_offset)))
        })
    }

    pub(super) fn fire_timer(&mut self) {
        if let Some(t) = self.timer_target {
            if self.ticks_since_base() >= t {
                self.raise(int::PCS_TIMEOUT);
                self.rearm_timer();
            }
        }
    }

    /// HltClk: `'H'` halts the clock (TCTR freezes), `'R'` runs it.
    pub(super) fn hltclk_write(&mut self, v: u8) {
        match v {
            b'H' if !self.r.clock_halted => {
                self.r.tctr = self.tctr_now();
                self.r.clock_halted = true;
                self.timer_target = None;
            }
            b'R' if self.r.clock_halted => {
                self.r.clock_halted = false;
                self.tctr_start_at(self.r.tctr);
                self.rearm_timer();
            }
            b'H' | b'R' => {}
            other => log::debug!("rtl8139: HltClk value {other:#x} is neither 'R' nor 'H'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_conversions_round_trip() {
        assert_eq!(ns_to_ticks(1_000_000_000), 33_000_000);
        for t in [1u64, 2, 33, 1000, u32::MAX as u64] {
            assert!(ns_to_ticks(ticks_to_ns(t)) >= t);
            assert!(ns_to_ticks(ticks_to_ns(t) - 1) < t);
        }
    }
}
