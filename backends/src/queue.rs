//! A bounded frame queue: the in-process half of QEMU-style flow control.

use std::collections::VecDeque;

use crate::gso;
use crate::vnet::VirtioNetHdr;

/// A FIFO of whole frames bounded both in frame count and in bytes. A push past either
/// bound is refused and counted in [`FrameQueue::dropped`]; nothing else is lost.
///
/// A frame may be queued with a virtio-net header ([`FrameQueue::push_gso`]): a GSO
/// super-frame or a frame whose checksum is left to complete. Such a frame leaves whole
/// through [`FrameQueue::pop_gso_into`]; every other way out ([`FrameQueue::pop_into`],
/// [`FrameQueue::pop`]) first replaces it with the ordinary frames
/// [`gso::segment`] makes of it, so a consumer that never asked for GSO frames never sees
/// one. That expansion may take the queue past its bounds by the headers of one
/// super-frame's segments (a bounded amount); a frame the segmenter refuses is dropped
/// and counted.
#[derive(Debug, Clone)]
pub struct FrameQueue {
    frames: VecDeque<(VirtioNetHdr, Vec<u8>)>,
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
        self.push_with(VirtioNetHdr::default(), iov)
    }

    /// Appends `frame` with its virtio-net header (a plain header makes it an ordinary
    /// frame); `false` (and a counted drop) when a bound is hit.
    pub fn push_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> bool {
        self.push_with(*hdr, &[frame])
    }

    fn push_with(&mut self, hdr: VirtioNetHdr, iov: &[&[u8]]) -> bool {
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
        self.frames.push_back((hdr, buf));
        true
    }

    /// Replaces a GSO frame at the front by its segments (see the type's documentation).
    fn expand_front(&mut self) {
        while self.frames.front().is_some_and(|(h, _)| !h.is_plain()) {
            let Some((hdr, f)) = self.frames.pop_front() else {
                return;
            };
            self.bytes -= f.len();
            match gso::segment_to_vec(&hdr, &f) {
                Ok(segs) => {
                    for s in segs.into_iter().rev() {
                        self.bytes += s.len();
                        self.frames.push_front((VirtioNetHdr::default(), s));
                    }
                }
                Err(e) => {
                    log::debug!("frame queue: {e}; frame dropped");
                    self.dropped += 1;
                }
            }
            self.recycle(f);
        }
    }

    fn recycle(&mut self, f: Vec<u8>) {
        if self.spare.len() < 64 {
            self.spare.push(f);
        }
    }

    /// Copies the oldest frame into `buf` and removes it. Returns `Some(len)`, or `None`
    /// when empty. A frame longer than `buf` is removed, counted as dropped, and the next
    /// one is tried. A GSO frame is first cut into ordinary frames.
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.expand_front();
        self.pop_gso_into(buf).map(|(_, n)| n)
    }

    /// Like [`FrameQueue::pop_into`], but a frame queued with a virtio-net header leaves
    /// whole, with its header (a plain header for an ordinary frame).
    pub fn pop_gso_into(&mut self, buf: &mut [u8]) -> Option<(VirtioNetHdr, usize)> {
        while let Some((hdr, f)) = self.frames.pop_front() {
            self.bytes -= f.len();
            let fits = f.len() <= buf.len();
            let n = f.len();
            if fits {
                buf[..n].copy_from_slice(&f);
            } else {
                self.dropped += 1;
            }
            self.recycle(f);
            if fits {
                return Some((hdr, n));
            }
        }
        None
    }

    /// Removes and returns the oldest frame (a GSO frame is first cut into ordinary
    /// frames).
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.expand_front();
        let (_, f) = self.frames.pop_front()?;
        self.bytes -= f.len();
        Some(f)
    }

    /// The oldest frame, without removing it (a GSO frame as it was queued).
    pub fn front(&self) -> Option<&[u8]> {
        self.frames.front().map(|(_, f)| f.as_slice())
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

    /// The bound on queued bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Frames refused or discarded so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Drops every queued frame (without counting them as drops).
    pub fn clear(&mut self) {
        while let Some((_, f)) = self.frames.pop_front() {
            self.bytes -= f.len();
        }
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

    /// A 3000-byte TCP/IPv4 payload as a GSO frame cut at 1000 bytes.
    fn gso_frame() -> (VirtioNetHdr, Vec<u8>) {
        gso::test_frame(3000, 1000)
    }

    #[test]
    fn gso_frames_leave_whole_or_cut() {
        let (h, f) = gso_frame();
        let mut q = FrameQueue::new();
        assert!(q.push_gso(&h, &f));
        assert!(q.push(&[5; 60]));
        let mut buf = vec![0u8; 70000];
        assert_eq!(q.pop_gso_into(&mut buf), Some((h, f.len())));
        assert_eq!(&buf[..f.len()], &f[..]);
        assert_eq!(
            q.pop_gso_into(&mut buf),
            Some((VirtioNetHdr::default(), 60))
        );

        // A consumer that does not take GSO frames gets the segments, in order, then what
        // followed.
        assert!(q.push_gso(&h, &f));
        assert!(q.push(&[5; 60]));
        let want = gso::segment_to_vec(&h, &f).unwrap();
        assert_eq!(want.len(), 3);
        for w in &want {
            let n = q.pop_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], &w[..]);
        }
        assert_eq!(q.pop(), Some(vec![5; 60]));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn gso_frame_counts_its_bytes_and_bad_ones_drop() {
        let (h, f) = gso_frame();
        let mut q = FrameQueue::with_bounds(10, 4000);
        assert!(q.push_gso(&h, &f));
        assert!(!q.push_gso(&h, &f), "3054 + 3054 bytes is past the bound");
        assert_eq!(q.bytes(), f.len());
        q.clear();
        let bad = VirtioNetHdr {
            gso_type: VirtioNetHdr::GSO_UDP,
            ..h
        };
        assert!(q.push_gso(&bad, &f));
        let before = q.dropped();
        assert_eq!(q.pop(), None);
        assert_eq!(q.dropped(), before + 1);
        assert_eq!(q.bytes(), 0);
    }
}
