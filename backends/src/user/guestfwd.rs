//! `guestfwd=[tcp]:[server]:port-dev`: a guest connection to a virtual address is served
//! on the host, per connection, by
//! - `cmd:command`: a command run by `/bin/sh -c`, its stdin and stdout on a loopback
//!   TCP connection (libslirp does the same: inetd-style servers such as smbd look at
//!   their peer's address, which a Unix socket pair does not have);
//! - `tcp:host:port`: a connection to that host address, made when the guest connects;
//! - `unix:path`: a connection to that Unix socket.
//!
//! QEMU hands anything after the dash other than `cmd:` to its character-device layer
//! (`qemu_chr_new`), which opens one device at start-up shared by all guest connections.
//! vm-nic has no character devices: it supports the two socket forms and opens one host
//! connection per guest connection, so a refused or missing target resets just that
//! guest connection. Other devices (`file:`, `pty`, `stdio`, `udp:`, ids...) are refused
//! with an error naming what is supported.
//!
//! This module also holds the host side of a TCP flow in general ([`HostStream`]).

use std::io::{self, Read, Write};
use std::net::{
    Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, ToSocketAddrs,
};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::opts::OptError;

/// What serves a `guestfwd=` rule's connections on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FwdTarget {
    /// `cmd:command`: a shell command per connection, the connection on its stdin/stdout.
    Cmd(String),
    /// `tcp:host:port`: a TCP connection per guest connection.
    Tcp(SocketAddr),
    /// `unix:path`: a Unix stream socket connection per guest connection.
    Unix(PathBuf),
}

/// One `guestfwd=` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFwd {
    /// The virtual address and port the guest connects to.
    pub addr: SocketAddrV4,
    /// What serves each connection.
    pub target: FwdTarget,
}

/// What the error message lists as supported.
const SUPPORTED: &str = "supported: cmd:COMMAND, tcp:HOST:PORT, unix:PATH";

/// Parses `[tcp]:[server]:port-dev`; an empty server is `default_server` (libslirp: the
/// network address with host part .4, e.g. 10.0.2.4).
pub fn parse_guestfwd(v: &str, default_server: Ipv4Addr) -> Result<GuestFwd, OptError> {
    let bad = |why: &str| OptError::at("guestfwd", format!("'{v}': {why}"));
    let (left, dev) = v
        .split_once('-')
        .ok_or_else(|| bad("expected [tcp]:[server]:port-dev"))?;
    let fields: Vec<&str> = left.split(':').collect();
    let (addr, port) = match fields.as_slice() {
        ["" | "tcp", a, p] => (*a, *p),
        [_, _, _] => return Err(bad("only tcp forwards are supported")),
        _ => return Err(bad("expected [tcp]:[server]:port before the '-'")),
    };
    let addr = if addr.is_empty() {
        default_server
    } else {
        addr.parse().map_err(|_| bad("bad server address"))?
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("bad port"))?;
    let target = parse_target(dev).map_err(|why| bad(&why))?;
    Ok(GuestFwd {
        addr: SocketAddrV4::new(addr, port),
        target,
    })
}

/// The device after the dash.
fn parse_target(dev: &str) -> Result<FwdTarget, String> {
    if let Some(cmd) = dev.strip_prefix("cmd:") {
        if cmd.trim().is_empty() {
            return Err("cmd: needs a command".into());
        }
        return Ok(FwdTarget::Cmd(cmd.to_string()));
    }
    if let Some(rest) = dev
        .strip_prefix("tcp:")
        .or_else(|| dev.strip_prefix("unix:"))
    {
        if let Some((_, opts)) = rest.split_once(',') {
            return Err(format!(
                "character device options (',{opts}') are not supported; {SUPPORTED}"
            ));
        }
    }
    if let Some(hp) = dev.strip_prefix("tcp:") {
        return parse_tcp_target(hp).map(FwdTarget::Tcp);
    }
    if let Some(path) = dev.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a socket path".into());
        }
        if path.len() >= super::sock::UNIX_PATH_MAX {
            return Err(format!("unix:{path}: socket path is too long"));
        }
        return Ok(FwdTarget::Unix(PathBuf::from(path)));
    }
    let kind = dev.split([':', ',']).next().unwrap_or(dev);
    Err(format!(
        "character device '{kind}' is not supported (vm-nic has no character devices); \
         {SUPPORTED}"
    ))
}

/// `host:port` or `[v6]:port`; an empty host is the loopback address, a name is
/// resolved now (QEMU resolves it when it opens the device at start-up).
fn parse_tcp_target(hp: &str) -> Result<SocketAddr, String> {
    let (host, port) = hp
        .rsplit_once(':')
        .ok_or_else(|| format!("tcp:{hp}: expected tcp:HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("tcp:{hp}: bad port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("tcp:{hp}: cannot resolve '{host}'"))
}

/// The host end of a TCP flow: a TCP socket (also the loopback connection to a guestfwd
/// command), or a Unix socket (`guestfwd=...-unix:path`).
#[derive(Debug)]
pub(crate) enum HostStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl HostStream {
    pub fn shutdown_write(&self) {
        let _ = match self {
            HostStream::Tcp(s) => s.shutdown(Shutdown::Write),
            HostStream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            HostStream::Tcp(s) => s.take_error(),
            HostStream::Unix(s) => s.take_error(),
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
            HostStream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for HostStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            HostStream::Tcp(s) => s.read(buf),
            HostStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for HostStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            HostStream::Tcp(s) => s.write(buf),
            HostStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Accepts at most this many strangers on the short-lived loopback listener before
/// giving up on a pair.
const PAIR_STRANGERS: usize = 16;

/// A connected loopback TCP pair (ours, theirs). Another local process could race to
/// connect to the short-lived listener: only the connection whose peer is our own
/// socket is taken.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let ours = TcpStream::connect(listener.local_addr()?)?;
    let me = ours.local_addr()?;
    // Loopback connects complete at once: ours is already in the accept queue.
    listener.set_nonblocking(true)?;
    for _ in 0..PAIR_STRANGERS {
        let (theirs, peer) = listener.accept()?;
        if peer == me {
            theirs.set_nonblocking(false)?;
            return Ok((ours, theirs));
        }
        log::debug!("user: guestfwd: unexpected connection from {peer} refused");
    }
    Err(io::Error::other(
        "loopback pair: too many foreign connections",
    ))
}

/// Starts `command` under `/bin/sh -c` with its stdin and stdout on one end of a
/// loopback TCP connection; returns the other end (non-blocking) and the child. The
/// child gets its own process group, as libslirp's setsid: smbd signals its whole
/// group when it exits, which must not reach us.
pub(crate) fn spawn(command: &str) -> io::Result<(HostStream, Child)> {
    let (ours, theirs) = loopback_pair()?;
    ours.set_nonblocking(true)?;
    ours.set_nodelay(true)?;
    let theirs_out: OwnedFd = theirs.try_clone()?.into();
    let theirs_in: OwnedFd = theirs.into();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::from(theirs_in))
        .stdout(Stdio::from(theirs_out))
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    Ok((HostStream::Tcp(ours), child))
}

/// Opens the host side of a guest connection to a command or Unix socket forward
/// (a `tcp:` forward is connected like any NAT flow, without blocking, by the caller).
pub(crate) fn open_local(target: &FwdTarget) -> io::Result<(HostStream, Option<Child>)> {
    match target {
        FwdTarget::Cmd(command) => spawn(command).map(|(s, c)| (s, Some(c))),
        FwdTarget::Unix(path) => {
            super::sock::unix_connect(path).map(|s| (HostStream::Unix(s), None))
        }
        FwdTarget::Tcp(a) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{a} is not a local forward"),
        )),
    }
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

    const DEF: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 4);

    fn parse(v: &str) -> Result<GuestFwd, OptError> {
        parse_guestfwd(v, DEF)
    }

    #[test]
    fn guestfwd_cmd_forms() {
        let f = parse("tcp:10.0.2.100:1234-cmd:cat").unwrap();
        assert_eq!(f.addr, "10.0.2.100:1234".parse().unwrap());
        assert_eq!(f.target, FwdTarget::Cmd("cat".into()));
        let f = parse(":10.0.2.100:80-cmd:nc 127.0.0.1 8080").unwrap();
        assert_eq!(f.target, FwdTarget::Cmd("nc 127.0.0.1 8080".into()));
        // libslirp: an empty server is the network's .4.
        let f = parse("tcp::4321-cmd:cat").unwrap();
        assert_eq!(f.addr, SocketAddrV4::new(DEF, 4321));
    }

    #[test]
    fn guestfwd_socket_devices() {
        let f = parse("tcp:10.0.2.100:1234-tcp:127.0.0.1:4321").unwrap();
        assert_eq!(f.target, FwdTarget::Tcp("127.0.0.1:4321".parse().unwrap()));
        let f = parse("tcp:10.0.2.100:1234-tcp:[::1]:4321").unwrap();
        assert_eq!(f.target, FwdTarget::Tcp("[::1]:4321".parse().unwrap()));
        let f = parse("tcp:10.0.2.100:1234-tcp::4321").unwrap();
        assert_eq!(f.target, FwdTarget::Tcp("127.0.0.1:4321".parse().unwrap()));
        let f = parse("tcp:10.0.2.100:1234-tcp:localhost:4321").unwrap();
        let FwdTarget::Tcp(a) = f.target else {
            panic!("{:?}", f.target)
        };
        assert!(a.ip().is_loopback() && a.port() == 4321, "{a}");
        let f = parse("tcp:10.0.2.100:1234-unix:/run/x.sock").unwrap();
        assert_eq!(f.target, FwdTarget::Unix("/run/x.sock".into()));
    }

    #[test]
    fn guestfwd_rejects_what_it_cannot_serve() {
        for (bad, says) in [
            ("udp:10.0.2.100:1-cmd:x", "only tcp"),
            ("tcp:10.0.2.100:1-chardev0", "'chardev0' is not supported"),
            ("tcp:10.0.2.100:1-file:/tmp/x", "'file' is not supported"),
            ("tcp:10.0.2.100:1-pty", "'pty' is not supported"),
            ("tcp:10.0.2.100:1-stdio", "'stdio' is not supported"),
            ("tcp:10.0.2.100:1-udp:127.0.0.1:5", "'udp' is not supported"),
            ("tcp:10.0.2.100:1-tcp:127.0.0.1:5,server=on", "options"),
            ("tcp:10.0.2.100:1-tcp:127.0.0.1", "expected tcp:HOST:PORT"),
            ("tcp:10.0.2.100:1-tcp:127.0.0.1:x", "bad port"),
            ("tcp:10.0.2.100:1-tcp:127.0.0.1:0", "bad port"),
            ("tcp:10.0.2.100:1-unix:", "path"),
            ("tcp:bogus:1-cmd:x", "server address"),
            ("tcp:10.0.2.100:0-cmd:x", "bad port"),
            ("tcp:10.0.2.100:1-cmd: ", "needs a command"),
            ("tcp:10.0.2.100:1", "expected"),
            // QEMU requires the protocol field, if empty.
            ("10.0.2.100:1-cmd:x", "expected [tcp]:[server]:port"),
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("guestfwd") && e.contains(says), "{bad}: {e}");
        }
        let e = parse("tcp:10.0.2.100:1-pty").unwrap_err().to_string();
        assert!(e.contains(SUPPORTED), "{e}");
    }
}
