//! `guestfwd=tcp:server:port-cmd:command`: a guest connection to a virtual address is
//! served by a host command (run by `/bin/sh -c` per connection, its stdin/stdout
//! connected to the flow), and the host side of a TCP flow in general.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use crate::opts::OptError;

/// One `guestfwd=` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFwd {
    /// The virtual address and port the guest connects to.
    pub addr: SocketAddrV4,
    /// The shell command that serves each connection on its stdin/stdout.
    pub command: String,
}

/// Parses `[tcp]:server:port-cmd:command`.
pub fn parse_guestfwd(v: &str) -> Result<GuestFwd, OptError> {
    let bad = |why: &str| OptError::at("guestfwd", format!("'{v}': {why}"));
    let (left, dev) = v
        .split_once('-')
        .ok_or_else(|| bad("expected [tcp]:server:port-cmd:command"))?;
    let fields: Vec<&str> = left.split(':').collect();
    let (addr, port) = match fields.as_slice() {
        ["" | "tcp", a, p] | [a, p] => (*a, *p),
        _ => return Err(bad("only tcp forwards with server:port are supported")),
    };
    let addr = addr.parse().map_err(|_| bad("bad server address"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("bad port"))?;
    let command = dev
        .strip_prefix("cmd:")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| bad("only the cmd:command form is supported (no character devices)"))?;
    Ok(GuestFwd {
        addr: SocketAddrV4::new(addr, port),
        command: command.to_string(),
    })
}

/// The host end of a TCP flow: a socket, or the pipe to a guestfwd command.
#[derive(Debug)]
pub(crate) enum HostStream {
    Tcp(TcpStream),
    Cmd(UnixStream),
}

impl HostStream {
    pub fn shutdown_write(&self) {
        let _ = match self {
            HostStream::Tcp(s) => s.shutdown(Shutdown::Write),
            HostStream::Cmd(s) => s.shutdown(Shutdown::Write),
        };
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            HostStream::Tcp(s) => s.take_error(),
            HostStream::Cmd(s) => s.take_error(),
        }
    }

    /// Makes closing send a reset (TCP only).
    pub fn reset_on_close(&self) {
        if let HostStream::Tcp(s) = self {
            super::sock::set_linger_zero(s);
        }
    }
}

impl AsRawFd for HostStream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            HostStream::Tcp(s) => s.as_raw_fd(),
            HostStream::Cmd(s) => s.as_raw_fd(),
        }
    }
}

impl Read for HostStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            HostStream::Tcp(s) => s.read(buf),
            HostStream::Cmd(s) => s.read(buf),
        }
    }
}

impl Write for HostStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            HostStream::Tcp(s) => s.write(buf),
            HostStream::Cmd(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts `command` with its stdin and stdout on one end of a socket pair; returns the
/// other end (non-blocking) and the child.
pub(crate) fn spawn(command: &str) -> io::Result<(HostStream, Child)> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let theirs_out: OwnedFd = theirs.try_clone()?.into();
    let theirs_in: OwnedFd = theirs.into();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::from(theirs_in))
        .stdout(Stdio::from(theirs_out))
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok((HostStream::Cmd(ours), child))
}

/// Children of finished guestfwd connections, reaped without blocking.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    children: Vec<Child>,
}

/// Children kept waiting to exit before the oldest is killed.
const MAX_CHILDREN: usize = 64;

impl Reaper {
    /// Takes a child whose connection ended; it exits on its own once it sees EOF.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
        if self.children.len() > MAX_CHILDREN {
            let mut oldest = self.children.remove(0);
            let _ = oldest.kill();
            let _ = oldest.wait();
        }
        self.reap();
    }

    /// Collects children that have exited.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guestfwd_forms() {
        let f = parse_guestfwd("tcp:10.0.2.100:1234-cmd:cat").unwrap();
        assert_eq!(f.addr, "10.0.2.100:1234".parse().unwrap());
        assert_eq!(f.command, "cat");
        let f = parse_guestfwd(":10.0.2.100:80-cmd:nc 127.0.0.1 8080").unwrap();
        assert_eq!(f.command, "nc 127.0.0.1 8080");
        for bad in [
            "udp:10.0.2.100:1-cmd:x",
            "tcp:10.0.2.100:1-chardev0",
            "tcp:bogus:1-cmd:x",
            "tcp:10.0.2.100:0-cmd:x",
            "tcp:10.0.2.100:1-cmd: ",
        ] {
            assert!(parse_guestfwd(bad).is_err(), "{bad}");
        }
    }
}
