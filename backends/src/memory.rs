//! In-process backends for tests, fuzzing and benchmarks.
//!
//! - [`MemoryBackend::pair`]: two connected ends, like a socketpair: what one sends the
//!   other receives.
//! - [`RecordingBackend`]: records every frame the device sends and lets the test inject
//!   frames for the device to receive, through a cloneable [`RecordingHandle`].
//! - [`NullBackend`]: discards everything and never has a frame; counts what it saw.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Counters, NetBackend};
use crate::queue::FrameQueue;

#[derive(Debug, Default)]
struct Shared {
    /// Frames waiting to be received by side 0 and side 1.
    queues: [FrameQueue; 2],
    counters: [Counters; 2],
    link_up: bool,
}

/// One end of an in-memory link (see [`MemoryBackend::pair`]).
///
/// ```
/// use vm_nic_backends::memory::MemoryBackend;
/// use vm_nic_backends::NetBackend;
///
/// let (mut nic_side, mut peer) = MemoryBackend::pair();
/// nic_side.send(b"to the peer").unwrap();
/// let mut buf = [0u8; 64];
/// assert_eq!(peer.recv(&mut buf).unwrap(), Some(11));
/// assert!(!nic_side.has_pending());
/// ```
#[derive(Debug)]
pub struct MemoryBackend {
    shared: Arc<Mutex<Shared>>,
    side: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryBackend {
    /// Two connected ends with the default queue bounds.
    pub fn pair() -> (MemoryBackend, MemoryBackend) {
        let shared = Arc::new(Mutex::new(Shared {
            link_up: true,
            ..Default::default()
        }));
        (
            MemoryBackend {
                shared: shared.clone(),
                side: 0,
            },
            MemoryBackend { shared, side: 1 },
        )
    }

    /// Frames waiting for this end.
    pub fn pending(&self) -> usize {
        lock(&self.shared).queues[self.side].len()
    }
}

impl NetBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let mut s = lock(&self.shared);
        let len = iov.iter().map(|x| x.len()).sum();
        s.counters[self.side].count_sent(len);
        if !s.queues[1 - self.side].push_iov(iov) {
            s.counters[self.side].count_drop();
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut s = lock(&self.shared);
        let got = s.queues[self.side].pop_into(buf);
        if let Some(n) = got {
            s.counters[self.side].count_received(n);
        }
        Ok(got)
    }

    fn has_pending(&self) -> bool {
        !lock(&self.shared).queues[self.side].is_empty()
    }

    fn link_up(&self) -> bool {
        lock(&self.shared).link_up
    }

    fn set_link(&mut self, up: bool) {
        lock(&self.shared).link_up = up;
    }

    fn counters(&self) -> Counters {
        lock(&self.shared).counters[self.side]
    }
}

#[derive(Debug)]
struct Recording {
    sent: Vec<Vec<u8>>,
    inject: FrameQueue,
    counters: Counters,
    link_up: bool,
    vnet_hdr: bool,
    gso: Vec<(crate::VirtioNetHdr, Vec<u8>)>,
}

/// A backend that records what the device sends and delivers frames the test injects.
///
/// ```
/// use vm_nic_backends::memory::RecordingBackend;
/// use vm_nic_backends::NetBackend;
///
/// let (mut backend, test) = RecordingBackend::new(); // give `backend` to the device
/// backend.send(b"transmitted").unwrap();
/// assert_eq!(test.take_sent(), vec![b"transmitted".to_vec()]);
/// assert!(test.inject(b"for the device"));
/// let mut buf = [0u8; 64];
/// assert_eq!(backend.recv(&mut buf).unwrap(), Some(14));
/// ```
#[derive(Debug)]
pub struct RecordingBackend {
    shared: Arc<Mutex<Recording>>,
}

/// The test's side of a [`RecordingBackend`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct RecordingHandle {
    shared: Arc<Mutex<Recording>>,
}

impl RecordingBackend {
    /// A new backend and the handle the test keeps.
    pub fn new() -> (RecordingBackend, RecordingHandle) {
        let shared = Arc::new(Mutex::new(Recording {
            sent: Vec::new(),
            inject: FrameQueue::new(),
            counters: Counters::default(),
            link_up: true,
            vnet_hdr: false,
            gso: Vec::new(),
        }));
        (
            RecordingBackend {
                shared: shared.clone(),
            },
            RecordingHandle { shared },
        )
    }
}

impl RecordingHandle {
    /// Queues a frame for the device to receive. Returns false when the queue is full.
    pub fn inject(&self, frame: &[u8]) -> bool {
        lock(&self.shared).inject.push(frame)
    }

    /// Removes and returns every frame the device has sent so far.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut lock(&self.shared).sent)
    }

    /// Number of frames sent so far and not yet taken.
    pub fn sent_count(&self) -> usize {
        lock(&self.shared).sent.len()
    }

    /// Frames injected but not yet received by the device.
    pub fn pending(&self) -> usize {
        lock(&self.shared).inject.len()
    }

    /// Sets the link state the backend reports.
    pub fn set_link(&self, up: bool) {
        lock(&self.shared).link_up = up;
    }

    /// Makes the backend claim virtio-net header support, so devices pass GSO frames to
    /// [`NetBackend::send_gso`]; those are recorded separately (see
    /// [`RecordingHandle::take_gso`]).
    pub fn set_vnet_hdr(&self, on: bool) {
        lock(&self.shared).vnet_hdr = on;
    }

    /// Removes and returns every frame sent through `send_gso`, with its header.
    pub fn take_gso(&self) -> Vec<(crate::VirtioNetHdr, Vec<u8>)> {
        std::mem::take(&mut lock(&self.shared).gso)
    }

    /// The backend's counters.
    pub fn counters(&self) -> Counters {
        lock(&self.shared).counters
    }
}

impl NetBackend for RecordingBackend {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.shared);
        s.counters.count_sent(frame.len());
        s.sent.push(frame.to_vec());
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut s = lock(&self.shared);
        let got = s.inject.pop_into(buf);
        if let Some(n) = got {
            s.counters.count_received(n);
        }
        Ok(got)
    }

    fn has_pending(&self) -> bool {
        !lock(&self.shared).inject.is_empty()
    }

    fn link_up(&self) -> bool {
        lock(&self.shared).link_up
    }

    fn set_link(&mut self, up: bool) {
        lock(&self.shared).link_up = up;
    }

    fn has_vnet_hdr(&self) -> bool {
        lock(&self.shared).vnet_hdr
    }

    fn send_gso(&mut self, hdr: &crate::VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.shared);
        s.counters.count_sent(frame.len());
        s.gso.push((*hdr, frame.to_vec()));
        Ok(())
    }

    fn counters(&self) -> Counters {
        lock(&self.shared).counters
    }
}

/// Discards every frame sent to it and never has one to receive. For benchmarks.
#[derive(Debug, Default)]
pub struct NullBackend {
    counters: Counters,
}

impl NullBackend {
    /// A new null backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NetBackend for NullBackend {
    fn kind(&self) -> &'static str {
        "null"
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.counters.count_sent(frame.len());
        Ok(())
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        self.counters.count_sent(iov.iter().map(|s| s.len()).sum());
        Ok(())
    }

    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_crosses() {
        let (mut a, mut b) = MemoryBackend::pair();
        a.send(b"hello").unwrap();
        b.send_iov(&[b"wor", b"ld"]).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).unwrap(), Some(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(a.recv(&mut buf).unwrap(), Some(5));
        assert_eq!(&buf[..5], b"world");
        assert_eq!(a.recv(&mut buf).unwrap(), None);
    }

    #[test]
    fn recording_records_and_injects() {
        let (mut be, h) = RecordingBackend::new();
        be.send(b"tx").unwrap();
        assert!(h.inject(b"rx"));
        assert!(be.has_pending());
        let mut buf = [0u8; 4];
        assert_eq!(be.recv(&mut buf).unwrap(), Some(2));
        assert_eq!(h.take_sent(), vec![b"tx".to_vec()]);
        assert_eq!(h.counters().received_frames, 1);
    }
}
