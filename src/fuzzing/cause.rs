//! The cause/mask oracle's sources: where the harness reads a device's interrupt causes
//! and mask ([`Limits::cause_mask`](crate::fuzzing::Limits::cause_mask)), and the rule
//! that turns them into the PCI Interrupt Status the device must show.

use vm_nic_devices::e1000::regs as e1000_regs;
use vm_nic_devices::{NicDevice, NicState};

use crate::fuzzing::ram::FuzzMemory;
use crate::fuzzing::setup::BarInfo;

/// Where the cause/mask oracle takes a device's interrupt causes and mask from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CauseMask {
    /// Registers whose read has no side effect (RTL8139 ISR and IMR): the device must
    /// request its interrupt exactly when `cause & mask != 0`.
    Registers(CauseMaskRegs),
    /// The device's saved state ([`NicDevice::save_state`]), for devices whose cause or
    /// mask cannot be read without a side effect. The rule depends on the state's family:
    ///
    /// - e1000: `ICR & IMS & 0x1ffff != 0` (cause bits 16:0; ICR is clear-on-read), except
    ///   that a rising edge may be held back by interrupt throttling: while the state's
    ///   ITR timer is armed with a deadline after the clock and at most the longest
    ///   throttle interval (0xffff × 256 ns) after the last assertion, Interrupt Status
    ///   must be clear (see [`ThrottleHold`]).
    ///   The delay timers (RDTR, RADV, TIDV, TADV) delay setting ICR bits, not the
    ///   line, so they need no exception.
    /// - NE2000: `ISR & IMR & 0x7f != 0` (DP8390: ISR bit 7, RST, is status only and
    ///   IMR bit 7 is reserved; IMR is readable only on page 2).
    /// - RTL8139: `ISR & IMR != 0`, as for [`CauseMask::Registers`].
    ///
    /// A device without a saved state is not checked.
    SavedState,
}

/// Side-effect-free cause and mask registers whose AND gives the interrupt request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CauseMaskRegs {
    /// Index in the device's BAR list.
    pub bar: u8,
    /// Offset of the cause (status) register.
    pub cause: u64,
    /// Offset of the mask register.
    pub mask: u64,
    /// Width of both, in bytes.
    pub width: u8,
}

/// An armed e1000 interrupt-throttling (ITR) timer: a rising edge held back until
/// `deadline` because the line was last asserted at `last_assert`, less than the ITR
/// interval ago.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleHold {
    /// When the held-back assertion is due, in clock nanoseconds.
    pub deadline: u64,
    /// When the line was last asserted, if the state says.
    pub last_assert: Option<u64>,
}

impl ThrottleHold {
    /// True when the hold is one throttling allows at `now`: the last assertion is
    /// past, the deadline is not, and the two are at most the longest ITR interval
    /// apart.
    fn holds_at(&self, now: u64) -> bool {
        self.last_assert.is_some_and(|last| {
            last <= now && now < self.deadline && self.deadline - last <= E1000_ITR_MAX_NS
        })
    }
}

/// e1000 interrupt causes: ICR/IMS bits 16:0 (8254x SDM, ICR); the rest are reserved or,
/// for ICR bit 31 (INT_ASSERTED), computed on read.
const E1000_CAUSES: u32 = 0x1_ffff;
/// The longest e1000 throttle interval: ITR's 16-bit interval in 256 ns units.
const E1000_ITR_MAX_NS: u64 = 0xffff * 256;
/// DP8390 ISR bits that can raise INT (bit 7, RST, cannot).
const DP8390_SOURCES: u32 = 0x7f;

/// One reading of a device's interrupt causes and mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    /// The cause register.
    pub cause: u32,
    /// The mask register.
    pub mask: u32,
    /// The cause bits that can raise an interrupt.
    sources: u32,
    /// An armed e1000 ITR timer.
    pub hold: Option<ThrottleHold>,
}

impl CauseMask {
    /// Reads the causes and mask from `dev` (whose BARs are `bars`); `None` when there is
    /// nothing to read (no such BAR, no saved state).
    pub(crate) fn sample(
        self,
        dev: &mut dyn NicDevice<FuzzMemory>,
        bars: &[BarInfo],
    ) -> Option<Sample> {
        match self {
            CauseMask::Registers(r) => {
                let bar = bars.get(r.bar as usize)?.index;
                Some(Sample {
                    cause: dev.bar_read(bar, r.cause, r.width),
                    mask: dev.bar_read(bar, r.mask, r.width),
                    sources: u32::MAX,
                    hold: None,
                })
            }
            CauseMask::SavedState => dev.save_state().map(|s| Sample::of_state(&s)),
        }
    }
}

impl Sample {
    fn of_state(state: &NicState) -> Sample {
        match state {
            NicState::E1000(s) => {
                let word = |off: u32| s.regs.get(off as usize / 4).copied().unwrap_or(0);
                Sample {
                    cause: word(e1000_regs::ICR),
                    mask: word(e1000_regs::IMS),
                    sources: E1000_CAUSES,
                    hold: s.irq_timers[0].map(|deadline| ThrottleHold {
                        deadline,
                        last_assert: s.last_assert,
                    }),
                }
            }
            NicState::Ne2000(s) => Sample {
                cause: s.isr.bits() as u32,
                mask: s.imr.bits() as u32,
                sources: DP8390_SOURCES,
                hold: None,
            },
            NicState::Rtl8139(s) => Sample {
                cause: s.regs.isr as u32,
                mask: s.regs.imr as u32,
                sources: u32::MAX,
                hold: None,
            },
        }
    }

    /// The PCI Interrupt Status the device must show with the clock at `now`.
    pub fn status_at(&self, now: u64) -> bool {
        let held = self.hold.is_some_and(|h| h.holds_at(now));
        self.cause & self.mask & self.sources != 0 && !held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cause: u32, mask: u32, sources: u32, hold: Option<ThrottleHold>) -> Sample {
        Sample {
            cause,
            mask,
            sources,
            hold,
        }
    }

    #[test]
    fn only_interrupt_sources_count() {
        assert!(
            !sample(0x80, 0xff, DP8390_SOURCES, None).status_at(0),
            "RST"
        );
        assert!(sample(0xc0, 0x40, DP8390_SOURCES, None).status_at(0), "RDC");
        assert!(!sample(1 << 31, u32::MAX, E1000_CAUSES, None).status_at(0));
        assert!(
            sample(1 << 16, 1 << 16, E1000_CAUSES, None).status_at(0),
            "SRPD"
        );
    }

    #[test]
    fn a_throttle_hold_counts_only_within_the_longest_interval_of_the_last_assertion() {
        let s = |last_assert, deadline| {
            let hold = ThrottleHold {
                deadline,
                last_assert,
            };
            sample(0x80, 0x80, E1000_CAUSES, Some(hold)).status_at(1_000)
        };
        assert!(!s(Some(0), 1_001));
        assert!(!s(Some(1_000), 1_000 + E1000_ITR_MAX_NS));
        assert!(s(Some(0), 1 + E1000_ITR_MAX_NS), "longer than ITR allows");
        assert!(s(None, 1_001), "no assertion to throttle after");
        assert!(s(Some(1_001), 2_000), "an assertion in the future");
        assert!(s(Some(0), 1_000), "due: must have fired");
        let hold = ThrottleHold {
            deadline: 1_001,
            last_assert: Some(0),
        };
        assert!(!sample(0, 0x80, E1000_CAUSES, Some(hold)).status_at(1_000));
    }
}
