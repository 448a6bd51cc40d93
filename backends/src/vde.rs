//! QEMU's `-netdev vde,sock=DIR[,port=N][,group=G][,mode=OCTAL]`: a port on a
//! `vde_switch`, spoken natively (no libvdeplug).
//!
//! The plug protocol (vde_switch's "v3" control request):
//! 1. connect a stream socket to the switch's control socket `DIR/ctl` (the default
//!    switches `/var/run/vde.ctl` and `/tmp/vde.ctl` when `sock=` is empty);
//! 2. bind a datagram socket of our own (in DIR, else /tmp), owned by `group` and with
//!    permissions `mode` (default 0700) so the switch can send to it;
//! 3. send the request: magic `0xfeedface`, version 3, type `port << 8` (0 = any port),
//!    our datagram socket's `sockaddr_un`, a description — all in host byte order;
//! 4. the switch answers with the `sockaddr_un` of its data socket for our port; connect
//!    the datagram socket to it and remove our socket's name.
//!
//! Frames then travel one per datagram. The control connection stays open: the switch
//! frees the port when it closes, and a switch that goes away closes it on its side —
//! the backend then reports its link down and drops frames (counted).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{Counters, NetBackend};
use crate::opts::{check_keys, get, OptError};
use crate::sys::{recv_datagram, Readiness, IN};

/// Keys `-netdev vde` accepts (besides the generic `id`/`vlan`/`name`).
pub const KEYS: &[&str] = &["sock", "port", "group", "mode"];

/// The switch protocol's magic number.
pub const SWITCH_MAGIC: u32 = 0xfeed_face;
/// The control request version spoken here.
pub const REQUEST_VERSION: u32 = 3;
/// The switches tried when `sock=` is empty, as libvdeplug does.
pub const DEFAULT_SWITCHES: &[&str] = &["/var/run/vde.ctl", "/tmp/vde.ctl"];
/// How long the switch may take to answer the control request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

const SUN_PATH_LEN: usize = 108;
const SOCKADDR_UN_LEN: usize = 2 + SUN_PATH_LEN;
const MAX_DESCRIPTION: usize = 128;

/// Where and how to plug in (the typed form of the `-netdev vde` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdeConfig {
    /// The switch directory (holding `ctl`), or empty for [`DEFAULT_SWITCHES`].
    pub sock: PathBuf,
    /// The switch port to ask for; 0 lets the switch choose.
    pub port: u32,
    /// Group to own our data socket, so a switch running as another user can write to it.
    pub group: Option<String>,
    /// Permissions of our data socket (QEMU's default 0700).
    pub mode: u32,
    /// Shown in the switch's port list.
    pub description: String,
}

impl Default for VdeConfig {
    fn default() -> Self {
        VdeConfig {
            sock: PathBuf::new(),
            port: 0,
            group: None,
            mode: 0o700,
            description: "vm-nic".into(),
        }
    }
}

/// A port on a VDE switch. See the [module documentation](self).
#[derive(Debug)]
pub struct VdeBackend {
    ctl: UnixStream,
    data: OwnedFd,
    readiness: Readiness,
    ctl_open: bool,
    admin_up: bool,
    counters: Counters,
    info: String,
}

fn sockaddr_un_bytes(path: &Path) -> io::Result<[u8; SOCKADDR_UN_LEN]> {
    let p = path.as_os_str().as_bytes();
    if p.len() >= SUN_PATH_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket path {} is too long", path.display()),
        ));
    }
    let mut b = [0u8; SOCKADDR_UN_LEN];
    b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    b[2..2 + p.len()].copy_from_slice(p);
    Ok(b)
}

/// The control request, laid out as the packed C struct the switch reads.
pub fn request_bytes(port: u32, our_sock: &Path, description: &str) -> io::Result<Vec<u8>> {
    let mut r = Vec::with_capacity(12 + SOCKADDR_UN_LEN + MAX_DESCRIPTION);
    r.extend_from_slice(&SWITCH_MAGIC.to_ne_bytes());
    r.extend_from_slice(&REQUEST_VERSION.to_ne_bytes());
    r.extend_from_slice(&(port << 8).to_ne_bytes());
    r.extend_from_slice(&sockaddr_un_bytes(our_sock)?);
    let d = description.as_bytes();
    r.extend_from_slice(&d[..d.len().min(MAX_DESCRIPTION - 1)]);
    Ok(r)
}

/// Parses the switch's answer: the `sockaddr_un` of our port's data socket.
pub fn parse_reply(b: &[u8]) -> Option<PathBuf> {
    if b.len() < 3 || u16::from_ne_bytes([b[0], b[1]]) != libc::AF_UNIX as u16 {
        return None;
    }
    let path = &b[2..b.len().min(SOCKADDR_UN_LEN)];
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    (end > 0).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&path[..end])))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn unix_addr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = sockaddr_un_bytes(path)?;
    // SAFETY: sockaddr_un is plain old data; zeroed is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(&bytes[2..]) {
        *d = *s as libc::c_char;
    }
    Ok((
        a,
        std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
    ))
}

fn group_id(group: &str) -> io::Result<libc::gid_t> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    let name = CString::new(group).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: getgrnam_r with a caller-owned buffer and result slots.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        );
        if r != 0 || out.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no group named '{group}'"),
            ));
        }
        Ok(grp.gr_gid)
    }
}

/// A datagram socket bound to a fresh name in `dir`; returns it and the name.
fn bind_data_socket(dir: &Path) -> io::Result<(OwnedFd, PathBuf)> {
    // SAFETY: socket() returns a new descriptor or -1.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let pid = std::process::id();
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for candidate_dir in [dir, Path::new("/tmp")] {
        for n in 0..1000 {
            let path = candidate_dir.join(format!(".vmnic-{pid:05}-{n:05}"));
            let (a, len) = unix_addr(&path)?;
            // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
            let r =
                unsafe { libc::bind(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len) };
            if r == 0 {
                return Ok((fd, path));
            }
            last = io::Error::last_os_error();
            if last.raw_os_error() != Some(libc::EADDRINUSE) {
                break;
            }
        }
    }
    Err(io::Error::new(
        last.kind(),
        format!("cannot bind a VDE data socket: {last}"),
    ))
}

fn connect_ctl(cfg: &VdeConfig) -> io::Result<(UnixStream, PathBuf)> {
    let candidates: Vec<PathBuf> = if cfg.sock.as_os_str().is_empty() {
        DEFAULT_SWITCHES.iter().map(PathBuf::from).collect()
    } else {
        vec![cfg.sock.clone()]
    };
    let mut last = None;
    for dir in candidates {
        // A switch is a directory holding `ctl`; very old switches were the socket itself.
        let ctl = if dir.is_dir() {
            dir.join("ctl")
        } else {
            dir.clone()
        };
        match UnixStream::connect(&ctl) {
            Ok(s) => {
                let dir = if dir.is_dir() {
                    std::fs::canonicalize(&dir)?
                } else {
                    PathBuf::from("/tmp")
                };
                return Ok((s, dir));
            }
            Err(e) => last = Some((ctl, e)),
        }
    }
    let (ctl, e) = last.expect("at least one candidate");
    Err(io::Error::new(
        e.kind(),
        format!(
            "cannot connect to the VDE switch at {}: {e}; start one with 'vde_switch -s {}' or give sock=DIR",
            ctl.display(),
            ctl.parent().unwrap_or(Path::new("/tmp")).display()
        ),
    ))
}

impl VdeBackend {
    /// Plugs into the switch described by `cfg`.
    pub fn connect(cfg: &VdeConfig) -> io::Result<Self> {
        let (mut ctl, dir) = connect_ctl(cfg)?;
        let (data, our_path) = bind_data_socket(&dir)?;
        let result = Self::handshake(cfg, &mut ctl, &data, &our_path);
        // Once connected (or failed), our socket's name is no longer needed.
        let _ = std::fs::remove_file(&our_path);
        let switch_data = result?;
        ctl.set_nonblocking(true)?;
        let readiness = Readiness::new()?;
        for fd in [data.as_raw_fd(), ctl.as_raw_fd()] {
            readiness.add(fd, IN)?;
        }
        let info = format!(
            "sock={},fd={} (switch port {})",
            dir.display(),
            data.as_raw_fd(),
            switch_data.display()
        );
        Ok(VdeBackend {
            ctl,
            data,
            readiness,
            ctl_open: true,
            admin_up: true,
            counters: Counters::default(),
            info,
        })
    }

    fn handshake(
        cfg: &VdeConfig,
        ctl: &mut UnixStream,
        data: &OwnedFd,
        our_path: &Path,
    ) -> io::Result<PathBuf> {
        let cpath = c_path(our_path)?;
        if let Some(g) = &cfg.group {
            let gid = group_id(g)?;
            // SAFETY: valid path; uid -1 keeps the owner.
            cvt(unsafe { libc::chown(cpath.as_ptr(), u32::MAX, gid) })?;
        }
        // SAFETY: valid path.
        cvt(unsafe { libc::chmod(cpath.as_ptr(), cfg.mode as libc::mode_t) })?;
        ctl.write_all(&request_bytes(cfg.port, our_path, &cfg.description)?)?;
        ctl.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let mut reply = [0u8; SOCKADDR_UN_LEN];
        let n = match ctl.read(&mut reply) {
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                // vde_switch ignores a request for a port it does not have.
                let msg = if cfg.port != 0 {
                    format!(
                        "the VDE switch did not answer the request for port {} (beyond its port count?)",
                        cfg.port
                    )
                } else {
                    "the VDE switch did not answer".to_string()
                };
                return Err(io::Error::new(io::ErrorKind::TimedOut, msg));
            }
            Err(e) => return Err(e),
        };
        let switch_data = parse_reply(&reply[..n]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                if cfg.port != 0 {
                    format!(
                        "the VDE switch refused port {} (in use or beyond its port count?)",
                        cfg.port
                    )
                } else {
                    "the VDE switch refused the connection (no free port?)".to_string()
                },
            )
        })?;
        let (a, len) = unix_addr(&switch_data)?;
        // SAFETY: valid socket and sockaddr_un.
        cvt(unsafe {
            libc::connect(
                data.as_raw_fd(),
                (&a as *const libc::sockaddr_un).cast(),
                len,
            )
        })
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot reach the switch's data socket {}: {e}",
                    switch_data.display()
                ),
            )
        })?;
        Ok(switch_data)
    }

    /// Notices the switch closing the control connection.
    fn check_ctl(&mut self) {
        if !self.ctl_open {
            return;
        }
        let mut b = [0u8; 256];
        loop {
            match self.ctl.read(&mut b) {
                Ok(0) => {
                    log::warn!("vde: the switch closed the control connection; link down");
                    self.ctl_open = false;
                    return;
                }
                Ok(_) => continue, // The switch sends nothing else; ignore.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("vde: control connection failed: {e}; link down");
                    self.ctl_open = false;
                    return;
                }
            }
        }
    }
}

/// Opens `-netdev vde,sock=DIR[,port=N][,group=G][,mode=OCTAL]` (defaults: the default
/// switches, any port, no group, mode 0700).
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("vde", opts, KEYS)?;
    let port = match get(opts, "port") {
        None => 0,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 0x00ff_ffff)
            .ok_or_else(|| OptError::at("port", format!("'{v}' is not a switch port number")))?,
    };
    let mode = match get(opts, "mode") {
        None => 0o700,
        Some(v) => u32::from_str_radix(v, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| OptError::at("mode", format!("'{v}' is not an octal mode like 0700")))?,
    };
    let cfg = VdeConfig {
        sock: PathBuf::from(get(opts, "sock").unwrap_or("")),
        port,
        group: get(opts, "group").map(str::to_string),
        mode,
        ..VdeConfig::default()
    };
    let b = VdeBackend::connect(&cfg).map_err(|e| {
        let key = match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::TimedOut if port != 0 => "port",
            io::ErrorKind::NotFound if cfg.group.is_some() && e.to_string().contains("group") => {
                "group"
            }
            _ => "sock",
        };
        OptError::at(key, e.to_string())
    })?;
    Ok(Box::new(b))
}

impl NetBackend for VdeBackend {
    fn kind(&self) -> &'static str {
        "vde"
    }

    fn info(&self) -> String {
        self.info.clone()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.counters.count_sent(frame.len());
        if !self.admin_up || !self.ctl_open {
            self.counters.count_drop();
            return Ok(());
        }
        // SAFETY: `frame` is valid for reads of its length.
        let n = unsafe {
            libc::send(
                self.data.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.counters.count_drop();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(()),
                Some(libc::ECONNREFUSED | libc::ENOENT | libc::ENOTCONN) => {
                    log::warn!("vde: the switch's data socket is gone ({e}); link down");
                    self.ctl_open = false;
                    Ok(())
                }
                _ => Err(e),
            };
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        for _ in 0..64 {
            let n = match recv_datagram(self.data.as_raw_fd(), buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 || n > buf.len() || !self.admin_up {
                self.counters.count_drop();
                continue;
            }
            self.counters.count_received(n);
            return Ok(Some(n));
        }
        Ok(None)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.readiness.fd())
    }

    fn link_up(&self) -> bool {
        self.admin_up && self.ctl_open
    }

    fn set_link(&mut self, up: bool) {
        self.admin_up = up;
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn poll(&mut self, _now: std::time::Instant) -> io::Result<()> {
        self.check_ctl();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_the_packed_c_struct() {
        let r = request_bytes(5, Path::new("/tmp/sw/.x"), "vm-nic").unwrap();
        assert_eq!(r.len(), 4 + 4 + 4 + 110 + 6);
        assert_eq!(&r[0..4], &0xfeed_faceu32.to_ne_bytes());
        assert_eq!(&r[4..8], &3u32.to_ne_bytes());
        assert_eq!(&r[8..12], &(5u32 << 8).to_ne_bytes());
        assert_eq!(&r[12..14], &(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(&r[14..24], b"/tmp/sw/.x");
        assert!(r[24..122].iter().all(|&b| b == 0));
        assert_eq!(&r[122..], b"vm-nic");
    }

    #[test]
    fn reply_parsing_rejects_garbage() {
        let mut b = sockaddr_un_bytes(Path::new("/tmp/sw/.01"))
            .unwrap()
            .to_vec();
        assert_eq!(parse_reply(&b), Some(PathBuf::from("/tmp/sw/.01")));
        b[0] ^= 0xff;
        assert_eq!(parse_reply(&b), None);
        assert_eq!(parse_reply(&[]), None);
        assert_eq!(
            parse_reply(&sockaddr_un_bytes(Path::new("")).unwrap()),
            None
        );
    }

    #[test]
    fn option_errors() {
        let o = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            open(&o("mode", "999")).err().unwrap().key.as_deref(),
            Some("mode")
        );
        assert_eq!(
            open(&o("port", "x")).err().unwrap().key.as_deref(),
            Some("port")
        );
        let e = open(&o("sock", "/nonexistent/vde")).err().unwrap();
        assert_eq!(e.key.as_deref(), Some("sock"));
        assert!(e.message.contains("vde_switch -s"), "{e}");
    }
}
