//! The out-of-order queue of one flow's guest-to-host direction: data that arrived
//! beyond a hole, kept until the hole is filled.
//!
//! Bounded twice: at most [`MAX_BLOCKS`] disjoint blocks, and only bytes inside the
//! window the flow offers (`rcv_nxt .. rcv_nxt + window`), so the queue and the in-order
//! buffer together never hold more than the flow's buffer size.

use std::collections::VecDeque;

use super::flow::seq_lt;

/// Disjoint blocks kept at most; a segment that would need one more is dropped (the
/// guest retransmits it).
pub(super) const MAX_BLOCKS: usize = 32;

/// One contiguous run of received bytes beyond `rcv_nxt`.
#[derive(Debug)]
struct Block {
    /// Sequence number of `data[0]`.
    seq: u32,
    data: VecDeque<u8>,
    /// When this block last grew (a counter), for the order of the SACK blocks.
    stamp: u64,
}

impl Block {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.data.len() as u32)
    }
}

/// The out-of-order queue: blocks sorted by sequence number, neither overlapping nor
/// touching.
#[derive(Debug, Default)]
pub(super) struct Reasm {
    blocks: VecDeque<Block>,
    bytes: usize,
    clock: u64,
}

impl Reasm {
    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Keeps `data` received at `seq`, clipped to `rcv_nxt .. rcv_nxt + window`; false
    /// when nothing of it was kept (outside the window, or no block left). Blocks it
    /// overlaps or touches merge into the largest of them, so a byte is copied again
    /// only when its block joins a larger one.
    pub(super) fn insert(&mut self, rcv_nxt: u32, window: u32, seq: u32, data: &[u8]) -> bool {
        // Offsets from rcv_nxt: the window is far below 2^31, so they do not wrap.
        let off = |s: u32| s.wrapping_sub(rcv_nxt);
        let mut start = off(seq);
        let mut data = data;
        if (start as i32) < 0 {
            // Starts before rcv_nxt: the caller delivers in-order data itself.
            let skip = start.wrapping_neg() as usize;
            if skip >= data.len() {
                return false;
            }
            data = &data[skip..];
            start = 0;
        }
        if start >= window || data.is_empty() {
            return false;
        }
        let end = start.saturating_add(data.len() as u32).min(window);
        let data = &data[..(end - start) as usize];
        // The blocks this one overlaps or touches: first..last.
        let first = self.blocks.iter().position(|b| off(b.end()) >= start);
        let first = first.unwrap_or(self.blocks.len());
        let mut last = first;
        while last < self.blocks.len() && off(self.blocks[last].seq) <= end {
            last += 1;
        }
        if first == last && self.blocks.len() >= MAX_BLOCKS {
            return false;
        }
        self.clock += 1;
        // The pieces as (offset, bytes); their union is contiguous.
        let mut olds: Vec<(u32, VecDeque<u8>)> = self
            .blocks
            .drain(first..last)
            .map(|b| (off(b.seq), b.data))
            .collect();
        for (_, d) in &olds {
            self.bytes -= d.len();
        }
        let largest = (0..olds.len()).max_by_key(|&i| olds[i].1.len());
        let (base_start, mut merged) = match largest {
            Some(i) if olds[i].1.len() >= data.len() => olds.swap_remove(i),
            _ => (start, data.iter().copied().collect()),
        };
        let mut pieces: Vec<(u32, &[u8])> = vec![(start, data)];
        for (s, d) in &olds {
            let (a, b) = d.as_slices();
            pieces.push((*s, a));
            pieces.push((*s + a.len() as u32, b));
        }
        // Grow the base to the left, then to the right, from whichever piece reaches
        // farthest; each step passes at least one piece, so this ends.
        let mut lo = base_start;
        let mut hi = base_start + merged.len() as u32;
        for _ in 0..pieces.len() {
            let reach = pieces
                .iter()
                .filter(|(s, d)| *s < lo && *s + d.len() as u32 >= lo)
                .min_by_key(|(s, _)| *s);
            let Some(&(s, d)) = reach else { break };
            for &b in d[..(lo - s) as usize].iter().rev() {
                merged.push_front(b);
            }
            lo = s;
        }
        for _ in 0..pieces.len() {
            let reach = pieces
                .iter()
                .filter(|(s, d)| *s <= hi && *s + d.len() as u32 > hi)
                .max_by_key(|(s, d)| *s + d.len() as u32);
            let Some(&(s, d)) = reach else { break };
            merged.extend(&d[(hi - s) as usize..]);
            hi = s + d.len() as u32;
        }
        self.bytes += merged.len();
        let block = Block {
            seq: rcv_nxt.wrapping_add(lo),
            data: merged,
            stamp: self.clock,
        };
        self.blocks.insert(first, block);
        true
    }

    /// Appends to `out` the data that now continues `rcv_nxt` (nothing while the hole
    /// is open) and drops what lies wholly before it; returns the bytes appended.
    pub(super) fn take_into(&mut self, rcv_nxt: u32, out: &mut VecDeque<u8>) -> usize {
        let mut moved = 0usize;
        while let Some(b) = self.blocks.front() {
            let next = rcv_nxt.wrapping_add(moved as u32);
            if seq_lt(next, b.seq) {
                break;
            }
            let b = self.blocks.pop_front().expect("front exists");
            self.bytes -= b.data.len();
            let skip = next.wrapping_sub(b.seq) as usize;
            if skip < b.data.len() {
                out.extend(b.data.range(skip..));
                moved += b.data.len() - skip;
            }
        }
        moved
    }

    /// Up to three SACK blocks (RFC 2018 4): the block that changed last first, then the
    /// others, most recently changed first.
    pub(super) fn sack_blocks(&self) -> [Option<(u32, u32)>; 3] {
        let mut order: Vec<&Block> = self.blocks.iter().collect();
        order.sort_by_key(|b| std::cmp::Reverse(b.stamp));
        let mut out = [None; 3];
        for (slot, b) in out.iter_mut().zip(order) {
            *slot = Some((b.seq, b.end()));
        }
        out
    }

    /// Forgets everything (the flow is going away or its receive side was reset).
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seq: u32, len: usize) -> Vec<u8> {
        (0..len).map(|i| seq.wrapping_add(i as u32) as u8).collect()
    }

    fn take(r: &mut Reasm, rcv_nxt: u32) -> Vec<u8> {
        let mut out = VecDeque::new();
        let n = r.take_into(rcv_nxt, &mut out);
        assert_eq!(n, out.len());
        out.into()
    }

    #[test]
    fn holes_fill_in_any_order_and_come_out_once() {
        let mut r = Reasm::default();
        let base = 0xffff_fff0u32; // wraps inside the test
        for k in [3u32, 1, 5, 2, 4] {
            let seq = base.wrapping_add(k * 10);
            assert!(r.insert(base, 1000, seq, &bytes(seq, 10)));
        }
        assert_eq!(r.bytes(), 50);
        assert!(take(&mut r, base).is_empty(), "the hole at rcv_nxt is open");
        // A retransmission covering the hole and overlapping the queue.
        let got = take(&mut r, base.wrapping_add(10));
        assert_eq!(got, bytes(base.wrapping_add(10), 50));
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn overlaps_merge_and_the_window_bounds_what_is_kept() {
        let mut r = Reasm::default();
        assert!(r.insert(100, 50, 120, &bytes(120, 10)));
        assert!(r.insert(100, 50, 125, &bytes(125, 10)));
        assert!(r.insert(100, 50, 110, &bytes(110, 12)));
        // Beyond the window: clipped at 150, or refused.
        assert!(r.insert(100, 50, 140, &bytes(140, 100)));
        assert!(!r.insert(100, 50, 150, &bytes(150, 10)));
        assert_eq!(r.bytes(), 35);
        assert_eq!(r.sack_blocks()[0], Some((140, 150)));
        assert_eq!(r.sack_blocks()[1], Some((110, 135)));
        assert_eq!(r.sack_blocks()[2], None);
        assert_eq!(take(&mut r, 110), bytes(110, 25));
        assert_eq!(take(&mut r, 140), bytes(140, 10));
    }

    #[test]
    fn a_block_grows_left_and_right_and_bridges_others() {
        let mut r = Reasm::default();
        assert!(r.insert(0, 10_000, 5000, &bytes(5000, 1000)));
        assert!(r.insert(0, 10_000, 7000, &bytes(7000, 100)));
        // Left of the big block, overlapping it and each other.
        for k in (0..10).map(|i| 4900 - i * 100) {
            assert!(r.insert(0, 10_000, k, &bytes(k, 150)));
        }
        // Bridging the gap to the small block, overlapping both.
        assert!(r.insert(0, 10_000, 5990, &bytes(5990, 1020)));
        assert_eq!(r.bytes(), 3100);
        assert_eq!(r.sack_blocks()[0], Some((4000, 7100)));
        assert_eq!(r.sack_blocks()[1], None);
        assert_eq!(take(&mut r, 4000), bytes(4000, 3100));
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn block_count_is_bounded() {
        let mut r = Reasm::default();
        for k in 0..100u32 {
            let kept = r.insert(0, 1 << 20, 10 + k * 20, &[1; 10]);
            assert_eq!(kept, (k as usize) < MAX_BLOCKS);
        }
        assert_eq!(r.bytes(), MAX_BLOCKS * 10);
        // Growing an existing block still works when full.
        assert!(r.insert(0, 1 << 20, 20, &[1; 10]));
        // Data wholly before rcv_nxt is not kept.
        assert!(!r.insert(100, 1 << 20, 50, &[1; 10]));
    }

    #[test]
    fn most_recent_block_is_reported_first() {
        let mut r = Reasm::default();
        for k in 0..5u32 {
            r.insert(0, 1000, 10 + k * 20, &[0; 5]);
        }
        r.insert(0, 1000, 50, &[0; 7]);
        let s = r.sack_blocks();
        assert_eq!(s[0], Some((50, 57)));
        assert_eq!(s[1], Some((90, 95)));
        assert_eq!(s[2], Some((70, 75)));
    }
}
