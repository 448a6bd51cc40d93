//! Interrupt causes (ICR/ICS/IMS/IMC), the INTx level and the moderation timers.
//!
//! SDM: the ICR/ICS/IMS/IMC and ITR register descriptions, "Receive Interrupt Delay",
//! "Receive Absolute Delay" and "Transmit Interrupt Delay". The line is `ICR & IMS != 0`,
//! except that with ITR non-zero a rising edge is held back until ITR x 256 ns have
//! passed since the previous assertion. ICR reads return the causes with INT_ASSERTED
//! (bit 31) when the line is requested, and clear them.
//!
//! Delay timers count in 1.024 us units. RDTR restarts on every received packet and
//! RADV runs from the first; either expiring raises RXT0. TIDV/TADV do the same for
//! TXDW on descriptors with IDE set. RDTR.FPD / TIDV.FPD flush a pending delay.

use vm_memory::GuestMemory;

use super::regs::{self, icr};
use super::E1000;
use crate::clock::{earliest, Timer};

/// One delay-timer unit: 1.024 microseconds.
pub const DELAY_UNIT_NS: u64 = 1024;
/// One ITR unit: 256 nanoseconds.
pub const ITR_UNIT_NS: u64 = 256;

/// The moderation timers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqTimers {
    /// Throttle: an assertion held back by ITR.
    pub itr: Timer,
    /// Receive packet delay (RDTR).
    pub rdtr: Timer,
    /// Receive absolute delay (RADV).
    pub radv: Timer,
    /// Transmit interrupt delay (TIDV).
    pub tidv: Timer,
    /// Transmit absolute delay (TADV).
    pub tadv: Timer,
    /// When the line was last asserted.
    pub last_assert: Option<u64>,
}

impl IrqTimers {
    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        earliest([
            self.itr.deadline(),
            self.rdtr.deadline(),
            self.radv.deadline(),
            self.tidv.deadline(),
            self.tadv.deadline(),
        ])
    }
}

impl<M: GuestMemory> E1000<M> {
    /// Sets cause bits in ICR and updates the line.
    pub(crate) fn raise(&mut self, cause: u32) {
        let v = self.reg(regs::ICR) | cause;
        self.set_reg(regs::ICR, v);
        self.update_irq();
    }

    /// True when an enabled cause is pending.
    pub(crate) fn irq_pending(&self) -> bool {
        self.reg(regs::ICR) & self.reg(regs::IMS) != 0
    }

    /// Recomputes the INTx level from ICR, IMS and ITR.
    pub(crate) fn update_irq(&mut self) {
        let pending = self.irq_pending();
        let mut level = pending;
        if pending && !self.intx.requested() {
            let itr = (self.reg(regs::ITR) & 0xffff) as u64 * ITR_UNIT_NS;
            let now = self.now();
            if let Some(last) = self.timers.last_assert {
                let due = last.saturating_add(itr);
                if itr != 0 && now < due {
                    self.timers.itr.arm(now, due - now);
                    level = false;
                }
            }
            if level {
                self.timers.last_assert = Some(now);
                self.timers.itr.cancel();
            }
        }
        if !pending {
            self.timers.itr.cancel();
        }
        self.intx.update_pci(level, &mut self.pci);
    }

    /// ICR read: returns the causes (with INT_ASSERTED if the line is requested) and
    /// clears them all, as the 8254x SDM specifies.
    pub(crate) fn read_icr(&mut self) -> u32 {
        let mut v = self.reg(regs::ICR);
        if self.intx.requested() || self.irq_pending() {
            v |= icr::INT_ASSERTED;
        }
        self.set_reg(regs::ICR, 0);
        self.update_irq();
        v
    }

    /// A packet has been stored: RXT0 now, or after the RDTR/RADV delay.
    pub(crate) fn rx_delay_interrupt(&mut self) {
        let rdtr = (self.reg(regs::RDTR) & 0xffff) as u64;
        if rdtr == 0 {
            self.timers.rdtr.cancel();
            self.timers.radv.cancel();
            self.raise(icr::RXT0);
            return;
        }
        let now = self.now();
        self.timers.rdtr.arm(now, rdtr * DELAY_UNIT_NS);
        let radv = (self.reg(regs::RADV) & 0xffff) as u64;
        if radv != 0 {
            self.timers.radv.arm_if_idle(now, radv * DELAY_UNIT_NS);
        }
    }

    /// A descriptor with RS was written back: TXDW now, or after TIDV/TADV if `delay`
    /// (the descriptor's IDE bit).
    pub(crate) fn tx_delay_interrupt(&mut self, delay: bool) {
        let tidv = (self.reg(regs::TIDV) & 0xffff) as u64;
        if !delay || tidv == 0 {
            self.timers.tidv.cancel();
            self.timers.tadv.cancel();
            self.raise(icr::TXDW);
            return;
        }
        let now = self.now();
        self.timers.tidv.arm(now, tidv * DELAY_UNIT_NS);
        let tadv = (self.reg(regs::TADV) & 0xffff) as u64;
        if tadv != 0 {
            self.timers.tadv.arm_if_idle(now, tadv * DELAY_UNIT_NS);
        }
    }

    /// RDTR.FPD: raise a pending receive interrupt now.
    pub(crate) fn flush_rx_delay(&mut self) {
        if self.timers.rdtr.is_armed() || self.timers.radv.is_armed() {
            self.timers.rdtr.cancel();
            self.timers.radv.cancel();
            self.raise(icr::RXT0);
        }
    }

    /// TIDV.FPD: raise a pending transmit interrupt now.
    pub(crate) fn flush_tx_delay(&mut self) {
        if self.timers.tidv.is_armed() || self.timers.tadv.is_armed() {
            self.timers.tidv.cancel();
            self.timers.tadv.cancel();
            self.raise(icr::TXDW);
        }
    }

    /// Fires every moderation timer due at `now`.
    pub(crate) fn fire_irq_timers(&mut self, now: u64) {
        let t = &mut self.timers;
        if t.rdtr.fire(now) | t.radv.fire(now) {
            t.rdtr.cancel();
            t.radv.cancel();
            self.raise(icr::RXT0);
        }
        let t = &mut self.timers;
        if t.tidv.fire(now) | t.tadv.fire(now) {
            t.tidv.cancel();
            t.tadv.cancel();
            self.raise(icr::TXDW);
        }
        if self.timers.itr.fire(now) {
            // The throttle interval has passed: allow the held-back assertion.
            self.timers.last_assert = None;
            self.update_irq();
        }
    }
}
