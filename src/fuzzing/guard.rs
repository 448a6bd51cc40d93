//! The backend the device under test transmits to: a [`RecordingBackend`] behind a
//! guard that checks every frame as it is sent (length, and whether the guest posted
//! anything), keeps only the first frames of a run, and stops a transmit loop that does
//! not end.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use vm_nic_backends::memory::RecordingBackend;
use vm_nic_backends::{Counters, NetBackend};

use crate::fuzzing::outcome::Violation;

/// Frames one op may send before the guard declares the transmit loop unbounded and
/// panics (the only way to stop a loop running inside the device). Far above anything a
/// guest can post legitimately in the harness's 256 KiB of RAM.
pub const HARD_FRAMES_PER_OP: u64 = 1 << 22;

#[derive(Debug)]
pub(crate) struct GuardState {
    /// True while the harness is inside `bar_write`.
    pub in_bar_write: bool,
    /// Index of the op running.
    pub op: usize,
    /// The device's frame-length limit.
    pub max_frame: usize,
    /// Frames still to keep (forwarded to the recording backend).
    pub keep_left: usize,
    /// Frames sent in the run.
    pub sent: u64,
    /// Frames sent during the current op.
    pub sent_this_op: u64,
    /// The first violation seen.
    pub violation: Option<Violation>,
}

pub(crate) fn lock(s: &Mutex<GuardState>) -> MutexGuard<'_, GuardState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct GuardedBackend {
    pub inner: RecordingBackend,
    pub state: Arc<Mutex<GuardState>>,
}

impl GuardedBackend {
    fn check(&mut self, len: usize) -> bool {
        let mut s = lock(&self.state);
        s.sent += 1;
        s.sent_this_op += 1;
        if s.sent_this_op > HARD_FRAMES_PER_OP {
            panic!(
                "op {}: more than {HARD_FRAMES_PER_OP} frames transmitted in one op: the \
                 transmit loop does not stop",
                s.op
            );
        }
        let op = s.op;
        if s.violation.is_none() {
            if len > s.max_frame {
                s.violation = Some(Violation::FrameTooLong {
                    op,
                    len,
                    max: s.max_frame,
                });
            } else if !s.in_bar_write {
                s.violation = Some(Violation::UnpostedFrame { op, len });
            }
        }
        if s.keep_left > 0 {
            s.keep_left -= 1;
            true
        } else {
            false
        }
    }
}

impl NetBackend for GuardedBackend {
    fn kind(&self) -> &'static str {
        "fuzz-guard"
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.check(frame.len()) {
            self.inner.send(frame)?;
        }
        Ok(())
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let len = iov.iter().map(|s| s.len()).sum();
        if self.check(len) {
            self.inner.send_iov(iov)?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.inner.recv(buf)
    }

    fn has_pending(&self) -> bool {
        self.inner.has_pending()
    }

    fn link_up(&self) -> bool {
        self.inner.link_up()
    }

    fn set_link(&mut self, up: bool) {
        self.inner.set_link(up)
    }

    fn counters(&self) -> Counters {
        self.inner.counters()
    }
}
