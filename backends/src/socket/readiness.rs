//! A private epoll set that gives a stream backend one stable pollable descriptor while
//! the sockets behind it change (listener, connection being set up, connection).
//! Nothing ever waits on it inside the backend: the event loop polls it, sees it readable
//! when any member is ready, and calls the backend, which then tries its sockets
//! non-blockingly.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Readable (data, a pending connection, EOF).
pub const IN: u32 = libc::EPOLLIN as u32;
/// Writable (room in the send buffer, a connect finished).
pub const OUT: u32 = libc::EPOLLOUT as u32;

#[derive(Debug)]
pub struct Readiness {
    epfd: OwnedFd,
}

impl Readiness {
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 returns a new descriptor we then own, or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(Readiness {
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event; the kernel validates both descriptors.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Adds `fd` with `events`.
    pub fn add(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)
    }

    /// Changes the events watched on `fd`.
    pub fn modify(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events)
    }

    /// Removes `fd` (a descriptor not in the set is fine).
    pub fn remove(&self, fd: RawFd) {
        if let Err(e) = self.ctl(libc::EPOLL_CTL_DEL, fd, 0) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                log::debug!("epoll: removing fd {fd}: {e}");
            }
        }
    }
}

/// Non-blocking check of `fd` for `events` (`libc::POLL*`); returns the revents.
pub fn poll_now(fd: RawFd, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n <= 0 {
        0
    } else {
        p.revents
    }
}
