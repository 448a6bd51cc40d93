//! Statistics registers, 0x4000-0x40FC (SDM 13.7).
//!
//! Every counter clears when read. 32-bit counters stick at their maximum. The 64-bit
//! octet counters (GORC, GOTC, TOR, TOT) are read low dword then high dword: reading the
//! low dword returns it, latches the high dword and clears the counter, so the pair is
//! consistent and no count is lost between the two reads.

use super::regs::STATS;

/// Number of dword slots in the statistics block.
pub const SLOTS: usize = 64;

/// Slot index of a statistics register.
pub const fn slot(off: u32) -> usize {
    ((off - STATS) / 4) as usize
}

/// Slot indices of the counters the model updates.
#[allow(missing_docs)]
pub mod idx {
    use super::slot;
    pub const MPC: usize = slot(0x4010);
    pub const PRC64: usize = slot(0x405c);
    pub const GPRC: usize = slot(0x4074);
    pub const BPRC: usize = slot(0x4078);
    pub const MPRC: usize = slot(0x407c);
    pub const GPTC: usize = slot(0x4080);
    pub const GORC: usize = slot(0x4088);
    pub const GOTC: usize = slot(0x4090);
    pub const RNBC: usize = slot(0x40a0);
    pub const RUC: usize = slot(0x40a4);
    pub const ROC: usize = slot(0x40ac);
    pub const TOR: usize = slot(0x40c0);
    pub const TOT: usize = slot(0x40c8);
    pub const TPR: usize = slot(0x40d0);
    pub const TPT: usize = slot(0x40d4);
    pub const PTC64: usize = slot(0x40d8);
    pub const MPTC: usize = slot(0x40f0);
    pub const BPTC: usize = slot(0x40f4);
    pub const TSCTC: usize = slot(0x40f8);
    pub const TSCTFC: usize = slot(0x40fc);
}

/// True for the low slot of a 64-bit counter.
fn is_wide(i: usize) -> bool {
    matches!(i, idx::GORC | idx::GOTC | idx::TOR | idx::TOT)
}

/// The counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Counter values; a 64-bit counter lives in its low slot.
    pub counts: [u64; SLOTS],
    /// High dwords latched by a low-dword read.
    pub latched: [u32; SLOTS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            counts: [0; SLOTS],
            latched: [0; SLOTS],
        }
    }
}

impl Stats {
    /// Adds one to a 32-bit counter (sticking at the maximum).
    pub fn inc(&mut self, i: usize) {
        self.add(i, 1);
    }

    /// Adds `n` to a counter; 32-bit counters stick at the maximum.
    pub fn add(&mut self, i: usize, n: u64) {
        let max = if is_wide(i) {
            u64::MAX
        } else {
            u32::MAX as u64
        };
        self.counts[i] = self.counts[i].saturating_add(n).min(max);
    }

    /// Counts a packet of `len` bytes (with FCS) into the six size buckets starting at
    /// `first` (64, 65-127, 128-255, 256-511, 512-1023, 1024 and up).
    pub fn add_size_bucket(&mut self, first: usize, len: usize) {
        let b = match len {
            0..=64 => 0,
            65..=127 => 1,
            128..=255 => 2,
            256..=511 => 3,
            512..=1023 => 4,
            _ => 5,
        };
        self.inc(first + b);
    }

    /// Reads (and clears) the register at `off`.
    pub fn read(&mut self, off: u32) -> u32 {
        let i = slot(off);
        if is_wide(i) {
            let v = self.counts[i];
            self.counts[i] = 0;
            self.latched[i + 1] = (v >> 32) as u32;
            return v as u32;
        }
        if i > 0 && is_wide(i - 1) {
            return std::mem::take(&mut self.latched[i]);
        }
        std::mem::take(&mut self.counts[i]) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_counters_read_low_then_high() {
        let mut s = Stats::default();
        s.add(idx::GORC, 0x1_0000_0005);
        assert_eq!(s.read(0x4088), 5);
        s.add(idx::GORC, 7);
        assert_eq!(s.read(0x408c), 1);
        assert_eq!(s.read(0x4088), 7);
        assert_eq!(s.read(0x408c), 0);
    }

    #[test]
    fn narrow_counters_stick_and_clear() {
        let mut s = Stats::default();
        s.add(idx::MPC, u64::MAX);
        assert_eq!(s.read(0x4010), u32::MAX);
        assert_eq!(s.read(0x4010), 0);
    }
}
