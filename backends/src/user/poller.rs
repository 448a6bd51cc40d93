//! One epoll descriptor gathering every host socket of the user network, so the event
//! loop polls a single fd ([`crate::NetBackend::poll_fd`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Readiness reported for one registered socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
    /// Error or hang-up: the owner should look at the socket.
    pub error: bool,
}

/// The token of the poller's own wake-up eventfd.
pub(crate) const TOKEN_KICK: u64 = 7 << 32;

/// A level-triggered epoll set, plus an eventfd that makes it readable when deferred
/// work is waiting for `poll`.
#[derive(Debug)]
pub(crate) struct Poller {
    fd: OwnedFd,
    kick: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 has no memory arguments; the result is checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: eventfd has no memory arguments; the result is checked.
        let kick = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: kick is a fresh descriptor we own.
        let kick = unsafe { OwnedFd::from_raw_fd(kick) };
        let p = Poller { fd, kick };
        p.add(p.kick.as_raw_fd(), TOKEN_KICK, true, false)?;
        Ok(p)
    }

    /// Makes the epoll fd readable until [`Poller::clear_kick`].
    pub fn kick(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64; EAGAIN (counter full) is harmless.
        let _ = unsafe { libc::write(self.kick.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the wake-up eventfd.
    pub fn clear_kick(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (not kicked) is harmless.
        let _ = unsafe { libc::read(self.kick.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: RawFd,
        token: u64,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        let mut events = 0u32;
        if read {
            events |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        if write {
            events |= libc::EPOLLOUT as u32;
        }
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Watches `fd` for the given interests under `token`.
    pub fn add(&self, fd: RawFd, token: u64, read: bool, write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, read, write)
    }

    /// Changes the interests of a watched `fd`.
    pub fn modify(&self, fd: RawFd, token: u64, read: bool, write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, read, write)
    }

    /// Stops watching `fd` (closing it does so too).
    pub fn remove(&self, fd: RawFd) {
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        let _ = unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Collects ready events without waiting, at most `max`.
    pub fn ready(&self, out: &mut Vec<Event>, max: usize) -> io::Result<()> {
        out.clear();
        let mut evs: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; max];
        // SAFETY: evs has room for `max` events; timeout 0 never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                evs.as_mut_ptr(),
                max.min(i32::MAX as usize) as i32,
                0,
            )
        };
        let n = match cvt(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        for ev in &evs[..n] {
            let bits = ev.events;
            out.push(Event {
                token: ev.u64,
                readable: bits & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
                error: bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0,
            });
        }
        Ok(())
    }
}
