//! Datagram sockets, one frame per datagram: `-netdev socket,udp=|mcast=` and
//! `-netdev dgram` (UDP unicast, UDP multicast, Unix datagram sockets).
//!
//! A datagram is delivered whole or not at all by the kernel, so there is no framing and
//! no partial write. A send the kernel refuses (buffer full, peer not there yet) drops
//! that frame and counts it; a received datagram longer than the caller's buffer is
//! dropped and counted (detected with `MSG_TRUNC`, never cut).
//!
//! Multicast follows QEMU: the socket has `SO_REUSEADDR` and is bound to the group
//! address and port, joins the group (`IP_ADD_MEMBERSHIP`) on `localaddr` or any
//! interface, enables `IP_MULTICAST_LOOP` (so every member on this host, the sender too,
//! sees each frame) and sends through `localaddr` (`IP_MULTICAST_IF`) when given.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use super::addr::{self, SockTarget};
use super::stream::adopt_socket;
use crate::backend::{Counters, NetBackend};
use crate::opts::{check_keys, OptError};
use crate::sys::recv_datagram;

/// A datagram socket backend. See the [module documentation](self).
#[derive(Debug)]
pub struct DgramBackend {
    kind: &'static str,
    sock: Socket,
    dest: Option<SockAddr>,
    info: String,
    counters: Counters,
    admin_up: bool,
    unix_path: Option<PathBuf>,
}

impl DgramBackend {
    fn new(sock: Socket, dest: Option<SockAddr>, info: String) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        Ok(DgramBackend {
            kind: "dgram",
            sock,
            dest,
            info,
            counters: Counters::default(),
            admin_up: true,
            unix_path: None,
        })
    }

    /// UDP unicast: bound to `local` (with `SO_REUSEADDR`), sending to `remote`; frames
    /// from any source are received.
    pub fn udp(local: SocketAddr, remote: SocketAddr) -> io::Result<Self> {
        let domain = if local.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let s = Socket::new(domain, Type::DGRAM.cloexec(), None)?;
        s.set_reuse_address(true)?;
        s.bind(&local.into())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {local}: {e}")))?;
        Self::new(s, Some(remote.into()), format!("udp={remote}"))
    }

    /// UDP multicast on `group` (must be a multicast address), optionally pinned to the
    /// interface holding `localaddr`.
    pub fn mcast(group: SocketAddrV4, localaddr: Option<Ipv4Addr>) -> io::Result<Self> {
        if !group.ip().is_multicast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a multicast address (224.0.0.0/4)", group.ip()),
            ));
        }
        let s = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), None)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::V4(group).into())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {group}: {e}")))?;
        let iface = localaddr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        s.join_multicast_v4(group.ip(), &iface).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot join {} on {iface}: {e}", group.ip()),
            )
        })?;
        s.set_multicast_loop_v4(true)?;
        if let Some(a) = localaddr {
            s.set_multicast_if_v4(&a)?;
        }
        Self::new(
            s,
            Some(SocketAddr::V4(group).into()),
            format!("mcast={group}"),
        )
    }

    /// Unix datagram socket bound to `local` (a stale socket file there is replaced and
    /// the file is removed on drop), sending to `remote`.
    pub fn unix(local: &Path, remote: &Path) -> io::Result<Self> {
        let s = Socket::new(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
        super::stream::remove_stale_socket(local);
        s.bind(&SockAddr::unix(local)?).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind {}: {e}", local.display()))
        })?;
        let mut b = Self::new(
            s,
            Some(SockAddr::unix(remote)?),
            format!("unix {} -> {}", local.display(), remote.display()),
        )?;
        b.unix_path = Some(local.to_path_buf());
        Ok(b)
    }

    /// An already open datagram socket (QEMU's `fd=`); without `dest` it must be
    /// connected, as sends go to its default destination.
    pub fn from_fd(fd: RawFd, dest: Option<SockAddr>) -> io::Result<Self> {
        let s = adopt_socket(fd, Type::DGRAM)?;
        Self::new(s, dest, format!("fd={fd}"))
    }

    /// Reports itself as QEMU client type `kind` ("socket" or "dgram").
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// The bound local address (to learn a port chosen by the kernel).
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.sock.local_addr()
    }
}

impl Drop for DgramBackend {
    fn drop(&mut self) {
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Errors that only mean "this datagram did not go out": the peer is not there yet,
/// the kernel buffer is full. The frame is dropped; the backend stays usable.
fn transient(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
        || matches!(
            e.raw_os_error(),
            Some(
                libc::ENOBUFS
                    | libc::ECONNREFUSED
                    | libc::ENOENT
                    | libc::EHOSTUNREACH
                    | libc::ENETUNREACH
                    | libc::EINTR
            )
        )
}

impl NetBackend for DgramBackend {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn info(&self) -> String {
        self.info.clone()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let len: usize = iov.iter().map(|s| s.len()).sum();
        self.counters.count_sent(len);
        if !self.admin_up {
            self.counters.count_drop();
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = iov.iter().map(|s| IoSlice::new(s)).collect();
        let r = match &self.dest {
            Some(d) => self.sock.send_to_vectored(&slices, d),
            None => self.sock.send_vectored(&slices),
        };
        match r {
            Ok(n) if n == len => Ok(()),
            Ok(n) => {
                // Datagram sockets send all or nothing; anything else is a kernel oddity.
                self.counters.count_drop();
                Err(io::Error::other(format!("short datagram write {n}/{len}")))
            }
            Err(e) if transient(&e) => {
                log::debug!("{}: frame dropped: {e}", self.kind);
                self.counters.count_drop();
                Ok(())
            }
            Err(e) => {
                self.counters.count_drop();
                Err(e)
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        for _ in 0..64 {
            let n = match recv_datagram(self.sock.as_raw_fd(), buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(None),
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            if n == 0 || n > buf.len() || !self.admin_up {
                if n > buf.len() {
                    log::debug!(
                        "{}: {n}-byte datagram longer than the buffer; dropped",
                        self.kind
                    );
                }
                self.counters.count_drop();
                continue;
            }
            self.counters.count_received(n);
            return Ok(Some(n));
        }
        Ok(None)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.sock.as_raw_fd())
    }

    fn link_up(&self) -> bool {
        self.admin_up
    }

    fn set_link(&mut self, up: bool) {
        self.admin_up = up;
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

/// Keys `-netdev dgram` accepts (QEMU 7.2).
pub const KEYS: &[&str] = &[
    "local.type",
    "local.host",
    "local.port",
    "local.path",
    "local.str",
    "remote.type",
    "remote.host",
    "remote.port",
    "remote.path",
];

/// Opens `-netdev dgram,local.*=...,remote.*=...`. A multicast `remote` needs no
/// `local` (its `local.host` picks the interface); unicast inet and unix need both;
/// `local.type=fd` needs no remote (the socket must be connected).
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("dgram", opts, KEYS)?;
    let local = addr::parse_group(opts, "local")?;
    let remote = addr::parse_group(opts, "remote")?;
    let err = |e| super::io_err("local.type", e);
    let b = match (local, remote) {
        (Some(SockTarget::Fd(fd)), None) => DgramBackend::from_fd(fd, None).map_err(err)?,
        (Some(SockTarget::Fd(_)), Some(_)) => {
            return Err(OptError::at(
                "remote.type",
                "remote= is not allowed with local.type=fd",
            ))
        }
        (local, Some(SockTarget::Inet(SocketAddr::V4(group)))) if group.ip().is_multicast() => {
            let iface = match local {
                None => None,
                Some(SockTarget::Inet(SocketAddr::V4(l))) => {
                    Some(*l.ip()).filter(|ip| !ip.is_unspecified())
                }
                Some(_) => {
                    return Err(OptError::at(
                        "local.type",
                        "a multicast remote needs local.type=inet",
                    ))
                }
            };
            DgramBackend::mcast(group, iface).map_err(err)?
        }
        (Some(SockTarget::Inet(l)), Some(SockTarget::Inet(r))) => {
            DgramBackend::udp(l, r).map_err(err)?
        }
        (Some(SockTarget::Unix(l)), Some(SockTarget::Unix(r))) => {
            DgramBackend::unix(&l, &r).map_err(err)?
        }
        (None, _) => {
            return Err(OptError::whole(
                "dgram needs local.type= and its address keys",
            ))
        }
        (_, None) => {
            return Err(OptError::whole(
                "dgram needs remote.type= and its address keys",
            ))
        }
        _ => {
            return Err(OptError::whole(
                "local and remote must both be inet or both be unix",
            ))
        }
    };
    Ok(Box::new(b))
}
