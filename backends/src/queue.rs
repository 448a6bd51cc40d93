//! A bounded frame queue: the in-process half of QEMU-style flow control.

use std::collections::VecDeque;

/// A FIFO of whole frames bounded both in frame count and in bytes. A push past either
/// bound is refused and counted in [`FrameQueue::dropped`]; nothing else is lost.
#[derive(Debug, Clone)]
pub struct FrameQueue {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    dropped: u64,
    spare: Vec<Vec<u8>>,
}

impl FrameQueue {
    /// Default bound on queued frames (QEMU's per-queue limit is 10000 packets; a NIC's
    /// ring rarely needs more than a few hundred).
    pub const DEFAULT_MAX_FRAMES: usize = 1024;
    /// Default bound on queued bytes (4 MiB).
    pub const DEFAULT_MAX_BYTES: usize = 4 << 20;

    /// A queue with the default bounds.
    pub fn new() -> Self {
        Self::with_bounds(Self::DEFAULT_MAX_FRAMES, Self::DEFAULT_MAX_BYTES)
    }

    /// A queue holding at most `max_frames` frames and `max_bytes` bytes.
    pub fn with_bounds(max_frames: usize, max_bytes: usize) -> Self {
        FrameQueue {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            dropped: 0,
            spare: Vec::new(),
        }
    }

    /// Appends a copy of `frame`; returns `false` (and counts a drop) when a bound is hit.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        self.push_iov(&[frame])
    }

    /// Appends the concatenation of `iov` as one frame; `false` (and a counted drop) when
    /// a bound is hit.
    pub fn push_iov(&mut self, iov: &[&[u8]]) -> bool {
        let len: usize = iov.iter().map(|s| s.len()).sum();
        if self.frames.len() >= self.max_frames || self.bytes + len > self.max_bytes {
            self.dropped += 1;
            return false;
        }
        // Reuse buffers of frames already delivered so steady traffic does not allocate.
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        for s in iov {
            buf.extend_from_slice(s);
        }
        self.bytes += len;
        self.frames.push_back(buf);
        true
    }

    /// Copies the oldest frame into `buf` and removes it. Returns `Some(len)`, or `None`
    /// when empty. A frame longer than `buf` is removed, counted as dropped, and the next
    /// one is tried.
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some(f) = self.frames.pop_front() {
            self.bytes -= f.len();
            let fits = f.len() <= buf.len();
            let n = f.len();
            if fits {
                buf[..n].copy_from_slice(&f);
            } else {
                self.dropped += 1;
            }
            if self.spare.len() < 64 {
                self.spare.push(f);
            }
            if fits {
                return Some(n);
            }
        }
        None
    }

    /// Removes and returns the oldest frame.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let f = self.frames.pop_front()?;
        self.bytes -= f.len();
        Some(f)
    }

    /// The oldest frame, without removing it.
    pub fn front(&self) -> Option<&[u8]> {
        self.frames.front().map(|f| f.as_slice())
    }

    /// Number of queued frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes currently queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames refused or discarded so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Drops every queued frame (without counting them as drops).
    pub fn clear(&mut self) {
        while self.pop().is_some() {}
    }
}

impl Default for FrameQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_bounds() {
        let mut q = FrameQueue::with_bounds(2, 1000);
        assert!(q.push(&[1; 10]));
        assert!(q.push_iov(&[&[2; 5], &[3; 5]]));
        assert!(!q.push(&[4; 10]));
        assert_eq!(q.dropped(), 1);
        let mut buf = [0u8; 64];
        assert_eq!(q.pop_into(&mut buf), Some(10));
        assert_eq!(&buf[..10], &[1; 10]);
        assert_eq!(q.pop_into(&mut buf), Some(10));
        assert_eq!(&buf[..10], &[2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
        assert_eq!(q.pop_into(&mut buf), None);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn byte_bound_and_oversize_pop() {
        let mut q = FrameQueue::with_bounds(10, 100);
        assert!(q.push(&[0; 80]));
        assert!(!q.push(&[0; 21]));
        assert!(q.push(&[7; 20]));
        let mut small = [0u8; 50];
        // The 80-byte frame does not fit: dropped and counted, the next one is returned.
        assert_eq!(q.pop_into(&mut small), Some(20));
        assert_eq!(q.dropped(), 2);
    }
}
