//! Selective acknowledgments (RFC 2018) from the guest: the scoreboard of what it holds
//! beyond `snd_una`, which fast recovery uses to resend only the holes.
//!
//! The guest's blocks are hostile input: a block is used only when it lies wholly inside
//! `snd_una .. snd_max` and is not empty; the scoreboard keeps at most [`MAX_RANGES`]
//! disjoint ranges. What we send the guest comes from the out-of-order queue
//! ([`super::reasm::Reasm::sack_blocks`]).

use super::flow::seq_lt;

/// Disjoint SACKed ranges kept at most; a block that would need one more is ignored.
pub(super) const MAX_RANGES: usize = 16;

/// What the guest reported holding above `snd_una`: sorted, disjoint, not touching.
#[derive(Debug, Default)]
pub(super) struct Scoreboard {
    ranges: Vec<(u32, u32)>,
}

impl Scoreboard {
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Bytes SACKed.
    fn bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|&(l, r)| u64::from(r.wrapping_sub(l)))
            .sum()
    }

    /// Takes the SACK blocks of an ACK; true when they cover bytes not SACKed before.
    pub(super) fn update(
        &mut self,
        snd_una: u32,
        snd_max: u32,
        blocks: &[Option<(u32, u32)>; 3],
    ) -> bool {
        self.advance(snd_una);
        let before = self.bytes();
        let flight = snd_max.wrapping_sub(snd_una);
        let off = |s: u32| s.wrapping_sub(snd_una);
        for &(l, r) in blocks.iter().flatten() {
            let (lo, hi) = (off(l), off(r));
            // Below snd_una (a D-SACK or a stale block), empty, reversed or beyond what
            // was sent: ignored.
            if (lo as i32) < 0 || lo >= hi || hi > flight {
                continue;
            }
            let first = self.ranges.iter().position(|&(_, e)| off(e) >= lo);
            let first = first.unwrap_or(self.ranges.len());
            let mut last = first;
            while last < self.ranges.len() && off(self.ranges[last].0) <= hi {
                last += 1;
            }
            if first == last {
                if self.ranges.len() < MAX_RANGES {
                    self.ranges.insert(first, (l, r));
                }
                continue;
            }
            let start = if off(self.ranges[first].0) < lo {
                self.ranges[first].0
            } else {
                l
            };
            let end = if off(self.ranges[last - 1].1) > hi {
                self.ranges[last - 1].1
            } else {
                r
            };
            self.ranges.drain(first..last);
            self.ranges.insert(first, (start, end));
        }
        self.bytes() > before
    }

    /// Drops what `snd_una` now covers.
    pub(super) fn advance(&mut self, snd_una: u32) {
        self.ranges.retain(|&(_, r)| seq_lt(snd_una, r));
        if let Some(first) = self.ranges.first_mut() {
            if seq_lt(first.0, snd_una) {
                first.0 = snd_una;
            }
        }
    }

    /// The first range at or after `from` that the guest does not hold and that lies
    /// below the highest SACKed byte (so presumed lost, RFC 6675's rule reduced):
    /// `(start, end)`.
    pub(super) fn next_hole(&self, snd_una: u32, from: u32) -> Option<(u32, u32)> {
        let off = |s: u32| s.wrapping_sub(snd_una);
        let mut at = if seq_lt(from, snd_una) { snd_una } else { from };
        for &(l, r) in &self.ranges {
            if off(at) < off(l) {
                return Some((at, l));
            }
            if off(at) < off(r) {
                at = r;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_blocks_are_ignored() {
        let mut s = Scoreboard::default();
        let una = 0xffff_ff00u32;
        let max = una.wrapping_add(10_000);
        // Below snd_una, reversed, empty, beyond snd_max, the whole sequence space.
        let bad = [
            Some((una.wrapping_sub(10), una.wrapping_add(10))),
            Some((una.wrapping_add(50), una.wrapping_add(40))),
            Some((una.wrapping_add(50), una.wrapping_add(50))),
        ];
        assert!(!s.update(una, max, &bad));
        let bad = [
            Some((una.wrapping_add(50), max.wrapping_add(1))),
            Some((una.wrapping_add(1), una)),
            Some((0, u32::MAX)),
        ];
        assert!(!s.update(una, max, &bad));
        assert!(s.is_empty());
    }

    #[test]
    fn ranges_merge_holes_are_found_and_the_count_is_bounded() {
        let mut s = Scoreboard::default();
        let una = 0xffff_fc00u32;
        let at = |k: u32| una.wrapping_add(k);
        assert!(s.update(una, at(100_000), &[Some((at(3000), at(4000))), None, None]));
        assert!(s.update(una, at(100_000), &[Some((at(1000), at(2000))), None, None]));
        assert!(!s.update(una, at(100_000), &[Some((at(1000), at(2000))), None, None]));
        assert_eq!(s.next_hole(una, una), Some((una, at(1000))));
        assert_eq!(s.next_hole(una, at(1500)), Some((at(2000), at(3000))));
        assert_eq!(
            s.next_hole(una, at(3000)),
            None,
            "nothing SACKed above 4000"
        );
        assert!(s.update(una, at(100_000), &[Some((at(2000), at(3000))), None, None]));
        assert_eq!(s.ranges, vec![(at(1000), at(4000))]);
        s.advance(at(2500));
        assert_eq!(s.ranges, vec![(at(2500), at(4000))]);
        s.advance(at(5000));
        assert!(s.is_empty());
        for k in 0..100u32 {
            let b = [Some((at(10 + k * 20), at(20 + k * 20))), None, None];
            s.update(una, at(100_000), &b);
        }
        assert_eq!(s.ranges.len(), MAX_RANGES);
    }
}
