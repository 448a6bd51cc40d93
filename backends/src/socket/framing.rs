//! QEMU's stream framing: every frame is preceded by its length as a 4-byte big-endian
//! number. [`Deframer`] rebuilds whole frames from reads of any size; [`TxBuffer`] holds
//! what a non-blocking socket did not take yet, whole frames only.

use std::io::{self, IoSlice, Read, Write};

use crate::backend::MAX_FRAME_LEN;

/// Length of the frame length prefix.
pub const HEADER_LEN: usize = 4;

/// Bytes read per `read` call when no frame length is known yet.
const READ_CHUNK: usize = 16 * 1024;

/// A frame header announced a length over [`MAX_FRAME_LEN`]: the stream cannot be
/// trusted any more and the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLong(pub u32);

/// Rebuilds frames from a byte stream. Memory is bounded by one maximal frame plus a
/// read chunk.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What one [`Deframer::fill`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// This many bytes were added.
    Data(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held that do not form a whole frame yet (or precede one).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Forgets everything buffered (the connection it came from is gone).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn announced(&self) -> Option<u32> {
        let h = self.buf.get(self.start..self.start + HEADER_LEN)?;
        (self.buffered() >= HEADER_LEN).then(|| u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }

    /// True when [`Deframer::next_frame`] would return a frame (or an error) without reading.
    pub fn has_frame(&self) -> bool {
        match self.announced() {
            Some(len) => {
                len as usize > MAX_FRAME_LEN || self.buffered() >= HEADER_LEN + len as usize
            }
            None => false,
        }
    }

    /// Takes the next whole frame, if buffered. The slice is valid until the next call.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameTooLong> {
        let Some(len) = self.announced() else {
            return Ok(None);
        };
        if len as usize > MAX_FRAME_LEN {
            return Err(FrameTooLong(len));
        }
        let total = HEADER_LEN + len as usize;
        if self.buffered() < total {
            return Ok(None);
        }
        let frame_start = self.start + HEADER_LEN;
        self.start += total;
        if self.start == self.end {
            // Keep the buffer but restart at 0 so the next frame needs no compaction.
            let (s, e) = (frame_start, frame_start + len as usize);
            self.start = 0;
            self.end = 0;
            return Ok(Some(&self.buf[s..e]));
        }
        Ok(Some(&self.buf[frame_start..frame_start + len as usize]))
    }

    /// Reads once from `r` into free space, making room for the frame being assembled.
    pub fn fill(&mut self, r: &mut impl Read) -> io::Result<Fill> {
        let want = match self.announced() {
            Some(len) if (len as usize) <= MAX_FRAME_LEN => {
                (HEADER_LEN + len as usize).max(self.buffered() + 1)
            }
            _ => self.buffered() + READ_CHUNK,
        };
        if self.start > 0 && self.start + want > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Read a little past the current frame so small frames need few syscalls.
        let cap = (self.start + want).max(self.end + READ_CHUNK);
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    self.end += n;
                    return Ok(Fill::Data(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::WouldBlock),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Framed bytes waiting for a non-blocking socket. Only whole frames are accepted; the
/// buffer never holds more than its bound, so a stalled peer costs bounded memory and
/// later frames are dropped (and counted by the caller) rather than cut.
#[derive(Debug)]
pub struct TxBuffer {
    buf: Vec<u8>,
    start: usize,
    max_bytes: usize,
}

/// Default bound on bytes waiting for a stream socket (besides the kernel's own buffer).
pub const DEFAULT_TX_BOUND: usize = 1 << 20;

/// Outcome of [`TxBuffer::send_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// The whole frame is in the kernel.
    Written,
    /// Part or all of it waits in the buffer; it will go out in order.
    Buffered,
    /// The bound would be exceeded: nothing of this frame was written or kept.
    Dropped,
}

impl TxBuffer {
    /// A buffer holding at most `max_bytes` (at least one maximal frame is always allowed).
    pub fn new(max_bytes: usize) -> Self {
        TxBuffer {
            buf: Vec::new(),
            start: 0,
            max_bytes: max_bytes.max(HEADER_LEN + MAX_FRAME_LEN),
        }
    }

    /// Bytes waiting.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets everything waiting (the connection is gone; a new one starts clean).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Writes `len` + `iov` as one frame: straight to `w` when nothing waits, the rest
    /// into the buffer. A write error other than would-block is returned and the frame
    /// is lost (the caller closes the connection).
    pub fn send_frame(&mut self, w: &mut impl Write, iov: &[&[u8]]) -> io::Result<Queued> {
        let len: usize = iov.iter().map(|s| s.len()).sum();
        let total = HEADER_LEN + len;
        if self.pending() + total > self.max_bytes {
            return Ok(Queued::Dropped);
        }
        let hdr = (len as u32).to_be_bytes();
        let mut written = 0;
        if self.pending() == 0 {
            let mut slices = Vec::with_capacity(iov.len() + 1);
            slices.push(IoSlice::new(&hdr));
            slices.extend(iov.iter().map(|s| IoSlice::new(s)));
            written = match write_retrying(w, |w| w.write_vectored(&slices)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            if written == total {
                return Ok(Queued::Written);
            }
        }
        // Keep the unwritten tail of the frame: skip `written` bytes of header + data.
        let mut skip = written;
        for piece in std::iter::once(&hdr[..]).chain(iov.iter().copied()) {
            let s = skip.min(piece.len());
            self.buf.extend_from_slice(&piece[s..]);
            skip -= s;
        }
        Ok(Queued::Buffered)
    }

    /// Writes as much of the waiting bytes as `w` takes. Returns true when all is out.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<bool> {
        while self.pending() > 0 {
            match write_retrying(w, |w| w.write(&self.buf[self.start..])) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.clear();
        Ok(true)
    }
}

fn write_retrying<W: Write>(
    w: &mut W,
    mut f: impl FnMut(&mut W) -> io::Result<usize>,
) -> io::Result<usize> {
    loop {
        match f(w) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its data in fixed-size pieces, then would block.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn framed(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn rebuilds_frames_from_one_byte_reads() {
        let frames: Vec<Vec<u8>> = (1..40).map(|n| vec![n as u8; n * 53]).collect();
        for step in [1, 3, 4, 5, 1000, 70000] {
            let mut r = Trickle {
                data: framed(&frames),
                pos: 0,
                step,
            };
            let mut d = Deframer::new();
            let mut got = Vec::new();
            for _ in 0..1_000_000 {
                if let Some(f) = d.next_frame().unwrap() {
                    got.push(f.to_vec());
                    continue;
                }
                if d.fill(&mut r).unwrap() == Fill::WouldBlock {
                    break;
                }
            }
            assert_eq!(got, frames, "step {step}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn oversized_announcement_is_an_error_before_any_allocation() {
        let mut r = Trickle {
            data: ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec(),
            pos: 0,
            step: 4,
        };
        let mut d = Deframer::new();
        d.fill(&mut r).unwrap();
        assert!(d.has_frame());
        assert_eq!(d.next_frame(), Err(FrameTooLong(MAX_FRAME_LEN as u32 + 1)));
        // The largest legal frame is accepted.
        let big = vec![9u8; MAX_FRAME_LEN];
        let mut r = Trickle {
            data: framed(std::slice::from_ref(&big)),
            pos: 0,
            step: 9000,
        };
        let mut d = Deframer::new();
        while !d.has_frame() {
            assert_ne!(d.fill(&mut r).unwrap(), Fill::WouldBlock);
        }
        assert_eq!(d.next_frame().unwrap().unwrap(), &big[..]);
    }

    /// A writer that takes at most `room` bytes, then would block.
    struct Narrow {
        out: Vec<u8>,
        room: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.room);
            self.out.extend_from_slice(&b[..n]);
            self.room -= n;
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            // Gathers like a socket does, up to the room left.
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.write(&all)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_are_finished_in_order_and_bound_drops_whole_frames() {
        let mut w = Narrow {
            out: Vec::new(),
            room: 7,
        };
        let mut tx = TxBuffer::new(0);
        let max = tx.max_bytes;
        assert_eq!(
            tx.send_frame(&mut w, &[b"abcdef"]).unwrap(),
            Queued::Buffered
        );
        assert_eq!(tx.pending(), 3);
        assert_eq!(
            tx.send_frame(&mut w, &[b"gh", b"i"]).unwrap(),
            Queued::Buffered
        );
        // Too big for what is left of the bound: refused whole.
        let huge = vec![0u8; max];
        assert_eq!(tx.send_frame(&mut w, &[&huge]).unwrap(), Queued::Dropped);
        assert!(!tx.flush(&mut w).unwrap());
        w.room = 100;
        assert!(tx.flush(&mut w).unwrap());
        assert_eq!(w.out, framed(&[b"abcdef".to_vec(), b"ghi".to_vec()]));
        assert_eq!(tx.send_frame(&mut w, &[b"j"]).unwrap(), Queued::Written);
    }
}
