//! Stream sockets with QEMU's length framing: `-netdev socket,listen=|connect=` and
//! `-netdev stream` (TCP or Unix, server or client).
//!
//! - A **server** keeps its link down until a peer connects, serves one peer at a time
//!   (others wait in the kernel's backlog, as in QEMU) and accepts the next one after EOF.
//! - A **client** connects without blocking; a refused or failed connection is an error
//!   from the constructor when the kernel reports it at once. After the peer goes away the
//!   link stays down, unless a reconnect interval is set (QEMU 8's `reconnect=`): then the
//!   backend retries at that interval and logs each attempt.
//! - Frames sent while the link is down are dropped and counted. A frame the socket does
//!   not take at once waits in a bounded [`TxBuffer`] and goes out before any later one;
//!   when the bound is hit, whole frames are dropped, never cut.
//! - A frame announcing more than [`MAX_FRAME_LEN`] bytes, a read error or a peer that
//!   closes mid-frame closes that connection with a logged error; the partial frame is
//!   discarded, never delivered.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::addr;
use super::addr::SockTarget;
use super::framing::{Deframer, Fill, Queued, TxBuffer, DEFAULT_TX_BOUND};
use crate::backend::{Counters, NetBackend, MAX_FRAME_LEN};
use crate::opts::{check_keys, get, parse_bool, OptError};
use crate::sys::{poll_now, Readiness, IN, OUT};

/// How long opening a client waits for the kernel to accept or refuse the connection.
pub const CONNECT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
enum Role {
    /// Listening; the path is removed on drop for Unix sockets we created.
    Server {
        listener: Socket,
        path: Option<PathBuf>,
    },
    /// Connecting to `target` (or was given a connected descriptor: `target` is `None`).
    Client { target: Option<SockTarget> },
}

/// A stream socket backend. See the [module documentation](self).
#[derive(Debug)]
pub struct StreamBackend {
    kind: &'static str,
    role: Role,
    conn: Option<Socket>,
    connecting: bool,
    conn_events: u32,
    peer: String,
    readiness: Readiness,
    rx: Deframer,
    tx: TxBuffer,
    counters: Counters,
    admin_up: bool,
    reconnect: Option<Duration>,
    retry_at: Option<Instant>,
}

fn domain_of(target: &SockTarget) -> Domain {
    match target {
        SockTarget::Inet(a) if a.is_ipv6() => Domain::IPV6,
        SockTarget::Inet(_) => Domain::IPV4,
        _ => Domain::UNIX,
    }
}

fn sockaddr_of(target: &SockTarget) -> io::Result<SockAddr> {
    match target {
        SockTarget::Inet(a) => Ok(SockAddr::from(*a)),
        SockTarget::Unix(p) => SockAddr::unix(p),
        SockTarget::Fd(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a descriptor has no address",
        )),
    }
}

fn describe(addr: &SockAddr) -> String {
    if let Some(a) = addr.as_socket() {
        a.to_string()
    } else if let Some(p) = addr.as_pathname() {
        p.display().to_string()
    } else {
        "unix peer".to_string()
    }
}

/// Takes ownership of a descriptor after checking it is a socket of `ty`.
pub(crate) fn adopt_socket(fd: RawFd, ty: Type) -> io::Result<Socket> {
    // SAFETY: the caller hands the descriptor over (QEMU's fd= semantics); from here the
    // backend owns and eventually closes it.
    let s = unsafe { Socket::from_raw_fd(fd) };
    match s.r#type() {
        Ok(t) if t == ty => Ok(s),
        Ok(_) => {
            // Not ours to close: give it back.
            std::mem::forget(s);
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {fd} is not a socket of the expected type"),
            ))
        }
        Err(e) => {
            std::mem::forget(s);
            Err(e)
        }
    }
}

impl StreamBackend {
    fn new(kind: &'static str, role: Role) -> io::Result<Self> {
        Ok(StreamBackend {
            kind,
            role,
            conn: None,
            connecting: false,
            conn_events: 0,
            peer: String::new(),
            readiness: Readiness::new()?,
            rx: Deframer::new(),
            tx: TxBuffer::new(DEFAULT_TX_BOUND),
            counters: Counters::default(),
            admin_up: true,
            reconnect: None,
            retry_at: None,
        })
    }

    /// Listens on `target` (TCP address, Unix path, or an already listening descriptor).
    /// A stale Unix socket file at the path is replaced, as QEMU does.
    pub fn listen(target: &SockTarget) -> io::Result<Self> {
        let (listener, path) = match target {
            SockTarget::Fd(fd) => (adopt_socket(*fd, Type::STREAM)?, None),
            _ => {
                let s = Socket::new(domain_of(target), Type::STREAM.cloexec(), None)?;
                let path = match target {
                    SockTarget::Unix(p) => {
                        remove_stale_socket(p);
                        Some(p.clone())
                    }
                    _ => {
                        s.set_reuse_address(true)?;
                        None
                    }
                };
                s.bind(&sockaddr_of(target)?)?;
                s.listen(1)?;
                (s, path)
            }
        };
        listener.set_nonblocking(true)?;
        let b = Self::new("stream", Role::Server { listener, path })?;
        if let Role::Server { listener, .. } = &b.role {
            b.readiness.add(listener.as_raw_fd(), IN)?;
        }
        Ok(b)
    }

    /// Connects to `target` without blocking. An immediate failure (refused, no such
    /// socket file) is returned; a connection still in progress completes in
    /// [`NetBackend::poll`].
    pub fn connect(target: &SockTarget) -> io::Result<Self> {
        if let SockTarget::Fd(fd) = target {
            let s = adopt_socket(*fd, Type::STREAM)?;
            let mut b = Self::new("stream", Role::Client { target: None })?;
            b.attach(s, false, format!("fd={fd}"))?;
            return Ok(b);
        }
        let mut b = Self::new(
            "stream",
            Role::Client {
                target: Some(target.clone()),
            },
        )?;
        b.start_connect(true)?;
        Ok(b)
    }

    /// A client that keeps trying: connects to `target` like [`StreamBackend::connect`],
    /// but a failure (now or later) is logged and retried every `interval` (QEMU 8's
    /// `reconnect=`) instead of being an error. Only socket creation errors fail here.
    pub fn connect_retrying(target: &SockTarget, interval: Duration) -> io::Result<Self> {
        if let SockTarget::Fd(_) = target {
            return Ok(Self::connect(target)?.with_reconnect(interval));
        }
        let mut b = Self::new(
            "stream",
            Role::Client {
                target: Some(target.clone()),
            },
        )?
        .with_reconnect(interval);
        if let Err(e) = b.start_connect(true) {
            log::warn!("{}: {e}; retrying in {}s", b.kind, interval.as_secs_f32());
            b.peer = target.to_string();
            b.retry_at = Some(Instant::now() + interval);
        }
        Ok(b)
    }

    /// Retries a lost or failed client connection every `interval` (QEMU 8's
    /// `reconnect=`). Without it a client whose peer left stays down.
    pub fn with_reconnect(mut self, interval: Duration) -> Self {
        self.reconnect = Some(interval);
        self
    }

    /// Bounds the bytes waiting for a slow peer (at least one maximal frame).
    pub fn with_tx_bound(mut self, bytes: usize) -> Self {
        self.tx = TxBuffer::new(bytes);
        self
    }

    /// Reports itself as QEMU client type `kind` ("socket" or "stream").
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// The address a server listens on (to learn a port chosen by the kernel).
    pub fn local_addr(&self) -> Option<SockAddr> {
        match &self.role {
            Role::Server { listener, .. } => listener.local_addr().ok(),
            Role::Client { .. } => self.conn.as_ref().and_then(|c| c.local_addr().ok()),
        }
    }

    /// Bytes of framed data still waiting for the peer to take them.
    pub fn tx_pending(&self) -> usize {
        self.tx.pending()
    }

    /// Starts a connect; `wait_briefly` (only while opening) gives it [`CONNECT_WAIT`]
    /// to be refused or accepted. Retries from [`NetBackend::poll`] never wait.
    fn start_connect(&mut self, wait_briefly: bool) -> io::Result<()> {
        let Role::Client {
            target: Some(target),
        } = &self.role
        else {
            return Ok(());
        };
        let addr = sockaddr_of(target)?;
        let s = Socket::new(domain_of(target), Type::STREAM.cloexec(), None)?;
        s.set_nonblocking(true)?;
        let desc = target.to_string();
        match s.connect(&addr) {
            Ok(()) => self.attach(s, false, desc),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                self.attach(s, true, desc)?;
                if wait_briefly {
                    self.wait_connect_briefly()?;
                }
                Ok(())
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot connect to {desc}: {e}"),
            )),
        }
    }

    /// Gives a connect under way [`CONNECT_WAIT`] to finish so a refused or unreachable
    /// peer is reported by the constructor, as a setup error. Only used while opening:
    /// a slower peer is left to finish in [`NetBackend::poll`].
    fn wait_connect_briefly(&mut self) -> io::Result<()> {
        let Some(s) = &self.conn else { return Ok(()) };
        let fd = s.as_raw_fd();
        let end = Instant::now() + CONNECT_WAIT;
        while self.connecting && Instant::now() < end {
            let ms = end.saturating_duration_since(Instant::now()).as_millis() as i32;
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the wait is bounded by `ms`.
            if unsafe { libc::poll(&mut p, 1, ms.max(1)) } == 0 {
                continue;
            }
            let Some(s) = &self.conn else { break };
            match s.take_error() {
                Ok(Some(e)) | Err(e) => {
                    let msg = format!("cannot connect to {}: {e}", self.peer);
                    self.detach("connect failed");
                    return Err(io::Error::new(e.kind(), msg));
                }
                Ok(None) => self.finish_connect(),
            }
        }
        Ok(())
    }

    /// Starts using `s` as the connection (`connecting`: the connect is still under way).
    fn attach(&mut self, s: Socket, connecting: bool, peer: String) -> io::Result<()> {
        s.set_nonblocking(true)?;
        if s.domain().map(|d| d != Domain::UNIX).unwrap_or(false) {
            // QEMU sets TCP_NODELAY: frames are latency-sensitive and already batched.
            let _ = s.set_nodelay(true);
        }
        if let Role::Server { listener, .. } = &self.role {
            self.readiness.remove(listener.as_raw_fd());
        }
        self.conn_events = if connecting { OUT } else { IN };
        self.readiness.add(s.as_raw_fd(), self.conn_events)?;
        self.rx.reset();
        self.tx.clear();
        self.connecting = connecting;
        if !connecting {
            log::info!("{}: connected to {peer}", self.kind);
        }
        self.peer = peer;
        self.conn = Some(s);
        Ok(())
    }

    /// Drops the connection; a server listens again, a client may schedule a retry.
    fn detach(&mut self, why: &str) {
        let Some(s) = self.conn.take() else {
            return;
        };
        self.readiness.remove(s.as_raw_fd());
        drop(s);
        if self.rx.buffered() > 0 {
            log::warn!(
                "{}: {} discarded {} bytes of an unfinished frame",
                self.kind,
                self.peer,
                self.rx.buffered()
            );
        }
        self.rx.reset();
        self.tx.clear();
        self.connecting = false;
        match &self.role {
            Role::Server { listener, .. } => {
                log::info!(
                    "{}: {}: {why}; waiting for the next peer",
                    self.kind,
                    self.peer
                );
                if let Err(e) = self.readiness.add(listener.as_raw_fd(), IN) {
                    log::error!("{}: cannot watch the listening socket: {e}", self.kind);
                }
            }
            Role::Client { .. } => match self.reconnect {
                Some(d) => {
                    log::warn!(
                        "{}: {}: {why}; reconnecting in {}s",
                        self.kind,
                        self.peer,
                        d.as_secs_f32()
                    );
                    self.retry_at = Some(Instant::now() + d);
                }
                None => log::warn!("{}: {}: {why}; link down", self.kind, self.peer),
            },
        }
    }

    fn set_interest(&mut self) {
        let Some(s) = &self.conn else { return };
        let want = if self.connecting {
            OUT
        } else if self.tx.pending() > 0 {
            IN | OUT
        } else {
            IN
        };
        if want != self.conn_events {
            match self.readiness.modify(s.as_raw_fd(), want) {
                Ok(()) => self.conn_events = want,
                Err(e) => log::error!("{}: epoll: {e}", self.kind),
            }
        }
    }

    fn is_connected(&self) -> bool {
        self.conn.is_some() && !self.connecting
    }

    fn finish_connect(&mut self) {
        let Some(s) = &self.conn else { return };
        let rev = poll_now(s.as_raw_fd(), libc::POLLOUT);
        if rev == 0 {
            return;
        }
        match s.take_error() {
            Ok(None) if rev & libc::POLLOUT != 0 => {
                self.connecting = false;
                log::info!("{}: connected to {}", self.kind, self.peer);
            }
            Ok(Some(e)) | Err(e) => self.detach(&format!("connect failed: {e}")),
            Ok(None) => self.detach("connect failed"),
        }
    }

    fn accept(&mut self) {
        let Role::Server { listener, .. } = &self.role else {
            return;
        };
        match listener.accept() {
            Ok((s, addr)) => {
                let peer = describe(&addr);
                if let Err(e) = self.attach(s, false, peer) {
                    log::error!("{}: cannot use accepted connection: {e}", self.kind);
                    self.detach("setup failed");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => log::warn!("{}: accept failed: {e}", self.kind),
        }
    }

    fn flush(&mut self) {
        let Some(s) = self.conn.as_mut() else { return };
        if self.connecting || self.tx.pending() == 0 {
            return;
        }
        if let Err(e) = self.tx.flush(s) {
            self.detach(&format!("write failed: {e}"));
        }
    }
}

pub(crate) fn remove_stale_socket(p: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        if let Role::Server {
            path: Some(path), ..
        } = &self.role
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl NetBackend for StreamBackend {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn info(&self) -> String {
        match (&self.role, self.is_connected()) {
            (_, true) => format!("connected to {}", self.peer),
            (Role::Server { listener, .. }, false) => match listener.local_addr() {
                Ok(a) => format!("listening on {}", describe(&a)),
                Err(_) => "listening".to_string(),
            },
            (Role::Client { target }, false) => match target {
                Some(t) => format!("connecting to {t}"),
                None => "disconnected".to_string(),
            },
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let len: usize = iov.iter().map(|s| s.len()).sum();
        self.counters.count_sent(len);
        if len > MAX_FRAME_LEN {
            self.counters.count_drop();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes is over the {MAX_FRAME_LEN}-byte limit"),
            ));
        }
        if !self.admin_up || !self.is_connected() {
            self.counters.count_drop();
            return Ok(());
        }
        let s = self.conn.as_mut().expect("connected");
        let r = self.tx.send_frame(s, iov);
        match r {
            Ok(Queued::Written) => {}
            Ok(Queued::Buffered) => self.set_interest(),
            Ok(Queued::Dropped) => {
                log::debug!("{}: peer not reading; frame dropped", self.kind);
                self.counters.count_drop();
            }
            Err(e) => {
                self.counters.count_drop();
                let msg = format!("write failed: {e}");
                self.detach(&msg);
                return Err(io::Error::new(e.kind(), msg));
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Each pass either returns, consumes a frame or reads new bytes; bounded anyway so
        // one busy peer cannot hold the event loop.
        for _ in 0..256 {
            match self.rx.next_frame() {
                Ok(Some(frame)) => {
                    let n = frame.len();
                    if n == 0 || n > buf.len() || !self.admin_up {
                        self.counters.count_drop();
                        continue;
                    }
                    buf[..n].copy_from_slice(frame);
                    self.counters.count_received(n);
                    return Ok(Some(n));
                }
                Ok(None) => {}
                Err(e) => {
                    log::error!(
                        "{}: {} announced a {}-byte frame (limit {MAX_FRAME_LEN}); closing the connection",
                        self.kind,
                        self.peer,
                        e.0
                    );
                    self.counters.count_drop();
                    self.detach("oversized frame");
                    return Ok(None);
                }
            }
            if !self.is_connected() {
                return Ok(None);
            }
            let s = self.conn.as_mut().expect("connected");
            match self.rx.fill(s) {
                Ok(Fill::Data(_)) => {}
                Ok(Fill::WouldBlock) => return Ok(None),
                Ok(Fill::Eof) => {
                    self.detach("peer closed the connection");
                    return Ok(None);
                }
                Err(e) => {
                    self.detach(&format!("read failed: {e}"));
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.readiness.fd())
    }

    fn has_pending(&self) -> bool {
        self.rx.has_frame()
    }

    fn link_up(&self) -> bool {
        self.admin_up && self.is_connected()
    }

    fn set_link(&mut self, up: bool) {
        self.admin_up = up;
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.retry_at
    }

    fn poll(&mut self, now: Instant) -> io::Result<()> {
        if self.connecting {
            self.finish_connect();
        }
        if self.conn.is_none() {
            if matches!(self.role, Role::Server { .. }) {
                self.accept();
            } else if self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
                if let Err(e) = self.start_connect(false) {
                    self.peer = match &self.role {
                        Role::Client { target: Some(t) } => t.to_string(),
                        _ => self.peer.clone(),
                    };
                    let d = self.reconnect.unwrap_or(Duration::from_secs(1));
                    log::warn!("{}: {e}; retrying in {}s", self.kind, d.as_secs_f32());
                    self.retry_at = Some(now + d);
                }
            }
        }
        self.flush();
        self.set_interest();
        Ok(())
    }
}

/// Keys `-netdev stream` accepts (QEMU 7.2, plus QEMU 8's `reconnect`).
pub const KEYS: &[&str] = &[
    "server",
    "reconnect",
    "addr.type",
    "addr.host",
    "addr.port",
    "addr.path",
    "addr.str",
];

/// Opens `-netdev stream,server=on|off,addr.type=inet|unix|fd,...[,reconnect=SECS]`.
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("stream", opts, KEYS)?;
    let target = addr::parse_group(opts, "addr")?
        .ok_or_else(|| OptError::whole("stream needs addr.type= and its address keys"))?;
    let server = get(opts, "server")
        .map(|v| parse_bool("server", v))
        .transpose()?
        .unwrap_or(false);
    let reconnect = match get(opts, "reconnect") {
        None | Some("0") => None,
        Some(v) => Some(Duration::from_secs(v.parse().map_err(|_| {
            OptError::at("reconnect", format!("'{v}' is not a number of seconds"))
        })?)),
    };
    if server && reconnect.is_some() {
        return Err(OptError::at(
            "reconnect",
            "reconnect= is only for server=off",
        ));
    }
    let b = match (server, reconnect) {
        (true, _) => StreamBackend::listen(&target),
        (false, None) => StreamBackend::connect(&target),
        (false, Some(d)) => StreamBackend::connect_retrying(&target, d),
    }
    .map_err(|e| super::io_err("addr.type", e))?;
    Ok(Box::new(b))
}
