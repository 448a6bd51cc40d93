//! Small host-I/O helpers shared by the host backends (always built, crate-private).
//!
//! [`Readiness`] is a private epoll set that gives a backend one stable pollable
//! descriptor while the sockets behind it change (listener, connection being set up,
//! connection). Nothing ever waits on it inside the backend: the event loop polls it,
//! sees it readable when any member is ready, and calls the backend, which then tries
//! its sockets non-blockingly.
#![allow(dead_code)] // each backend feature uses a different subset

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

/// One non-blocking `recv` of a datagram into `buf`.
///
/// `Ok(Some(n))` gives the datagram's real length, which is larger than `buf` when the
/// datagram was truncated (MSG_TRUNC): callers drop those. `Ok(None)` when nothing is
/// waiting. EINTR is returned as an error of kind `Interrupted` for the caller's bounded
/// retry loop.
pub fn recv_datagram(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `buf` is valid for writes of its length; MSG_TRUNC makes the kernel report
    // the datagram's real length without writing past `buf`.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(n as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn recv_datagram_reports_real_length_and_empty() {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(recv_datagram(b.as_raw_fd(), &mut buf).unwrap(), None);
        a.send(b"0123456789").unwrap();
        assert_eq!(recv_datagram(b.as_raw_fd(), &mut buf).unwrap(), Some(10));
        assert_eq!(&buf, b"0123");
        a.send(b"ab").unwrap();
        assert_eq!(recv_datagram(b.as_raw_fd(), &mut buf).unwrap(), Some(2));
    }
}
