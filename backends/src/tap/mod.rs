//! QEMU's TAP backends: `-netdev tap` and `-netdev bridge`.
//!
//! A tap is opened through `/dev/net/tun` with `IFF_TAP | IFF_NO_PI`, non-blocking.
//! - `ifname=` (default `tap%d`: the kernel picks the number), `script=`/`downscript=`
//!   (defaults `/etc/qemu-ifup` and `/etc/qemu-ifdown`, `$1` = interface name, no other
//!   descriptor inherited, `no` disables; see [`script`]).
//! - `vnet_hdr=on|off` (default: on when the kernel supports it): every frame carries the
//!   10-byte virtio-net header, so [`NetBackend::send_gso`] can hand checksum and
//!   segmentation work to the host kernel instead of the device model doing it, and the
//!   tap [accepts GSO frames](NetBackend::accepts_gso) from a peer backend: one write
//!   carries a TCP segment of up to 64 KiB (the user network's host→guest data).
//! - `queues=N` opens N descriptors with `IFF_MULTI_QUEUE`; frames are sent on queue 0 and
//!   received from every queue (the kernel spreads flows over them), behind one pollable
//!   descriptor.
//! - `fd=N` / `fds=N:M:..` adopt pre-opened taps; `sndbuf=` sets `TUNSETSNDBUF` (default
//!   unlimited, as QEMU).
//! - `helper=` / `-netdev bridge,br=,helper=`: see [`bridge`].
//!
//! A frame the kernel does not take (queue full, interface down) is dropped and counted;
//! a frame longer than the receive buffer is dropped and counted, never cut.

pub mod bridge;
pub mod script;
pub mod tun;

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::PathBuf;

use crate::backend::{Counters, NetBackend, MAX_FRAME_LEN};
use crate::opts::{check_keys, get, parse_bool, parse_fd, OptError};
use crate::sys::{Readiness, IN};
use crate::vnet::VirtioNetHdr;

/// Keys `-netdev tap` accepts (besides the generic `id`/`vlan`/`name`).
pub const KEYS: &[&str] = &[
    "ifname",
    "fd",
    "fds",
    "script",
    "downscript",
    "br",
    "helper",
    "sndbuf",
    "vnet_hdr",
    "queues",
];

/// How to create a tap (the typed form of the `-netdev tap` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name; `%d` is replaced by the kernel. Default `tap%d`.
    pub ifname: String,
    /// Run after the tap exists, with the name as `$1`. `None` = `script=no`.
    pub script: Option<PathBuf>,
    /// Run before the tap is closed. `None` = `downscript=no`.
    pub downscript: Option<PathBuf>,
    /// `Some(true)`: virtio-net header required; `Some(false)`: off; `None`: when supported.
    pub vnet_hdr: Option<bool>,
    /// Number of queues (`IFF_MULTI_QUEUE` when more than 1).
    pub queues: usize,
    /// `TUNSETSNDBUF` value; `None` = unlimited.
    pub sndbuf: Option<i32>,
}

impl Default for TapConfig {
    /// QEMU's defaults.
    fn default() -> Self {
        TapConfig {
            ifname: "tap%d".into(),
            script: Some(script::DEFAULT_SCRIPT.into()),
            downscript: Some(script::DEFAULT_DOWNSCRIPT.into()),
            vnet_hdr: None,
            queues: 1,
            sndbuf: None,
        }
    }
}

/// A tap interface with one or more queues. See the [module documentation](self).
#[derive(Debug)]
pub struct TapBackend {
    name: String,
    queues: Vec<File>,
    vnet_hdr: bool,
    readiness: Option<Readiness>,
    downscript: Option<PathBuf>,
    counters: Counters,
    admin_up: bool,
    next_rx: usize,
    /// Absorbs the tail of a frame longer than the caller's buffer so it can be detected
    /// and dropped instead of being delivered cut.
    scratch: Vec<u8>,
    info: String,
}

/// The largest frame a tap can hand us (64 KiB MTU plus Ethernet header), and more.
const SCRATCH_LEN: usize = MAX_FRAME_LEN;

impl TapBackend {
    fn from_queues(
        name: String,
        queues: Vec<File>,
        vnet_hdr: bool,
        info: String,
    ) -> io::Result<Self> {
        let readiness = if queues.len() > 1 {
            let r = Readiness::new()?;
            for q in &queues {
                r.add(q.as_raw_fd(), IN)?;
            }
            Some(r)
        } else {
            None
        };
        Ok(TapBackend {
            name,
            queues,
            vnet_hdr,
            readiness,
            downscript: None,
            counters: Counters::default(),
            admin_up: true,
            next_rx: 0,
            scratch: Vec::new(),
            info,
        })
    }

    /// Creates the tap described by `cfg`, runs its up script, and remembers the down
    /// script for drop.
    pub fn open(cfg: &TapConfig) -> io::Result<Self> {
        let vnet = match cfg.vnet_hdr {
            Some(v) => v,
            None => tun::supports_vnet_hdr(),
        };
        let queues = cfg.queues.max(1);
        let (first, name) = tun::open_tap(&cfg.ifname, vnet, queues > 1)?;
        let mut files = vec![first];
        for _ in 1..queues {
            let (f, _) = tun::open_tap(&name, vnet, true)?;
            files.push(f);
        }
        let sndbuf = cfg.sndbuf.unwrap_or(i32::MAX);
        for f in &files {
            if let Err(e) = tun::set_sndbuf(f.as_raw_fd(), sndbuf) {
                if cfg.sndbuf.is_some() {
                    return Err(io::Error::new(e.kind(), format!("TUNSETSNDBUF: {e}")));
                }
                log::debug!("tap {name}: TUNSETSNDBUF unlimited failed: {e}");
            }
        }
        let path_or_no = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("no".to_string(), |p| p.display().to_string())
        };
        let info = format!(
            "ifname={name},script={},downscript={}",
            path_or_no(&cfg.script),
            path_or_no(&cfg.downscript)
        );
        let mut b = Self::from_queues(name, files, vnet, info)?;
        if let Some(s) = &cfg.script {
            script::run(s, &b.name).map_err(io::Error::other)?;
        }
        b.downscript = cfg.downscript.clone();
        Ok(b)
    }

    /// Adopts pre-opened tap descriptors (QEMU's `fd=`/`fds=`), all queues of one
    /// interface. The backend owns and closes them. The virtio-net header is used when the
    /// taps were opened with `IFF_VNET_HDR`; `vnet_hdr = Some(true)` insists on it.
    pub fn from_fds(fds: &[RawFd], vnet_hdr: Option<bool>) -> io::Result<Self> {
        let mut name = String::new();
        let mut has_vnet = false;
        for &fd in fds {
            let (n, flags) = tun::query(fd)?;
            name = n;
            has_vnet = flags & tun::IFF_VNET_HDR != 0;
        }
        if vnet_hdr == Some(true) && !has_vnet {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "vnet_hdr=on but the tap was opened without IFF_VNET_HDR",
            ));
        }
        if vnet_hdr == Some(false) && has_vnet {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "vnet_hdr=off but the tap was opened with IFF_VNET_HDR",
            ));
        }
        let mut files = Vec::new();
        for &fd in fds {
            if has_vnet {
                tun::set_vnet_hdr_len(fd, VirtioNetHdr::LEN as i32)?;
            }
            // SAFETY: QEMU's fd= semantics hand the descriptor over to the backend.
            let f = unsafe { File::from_raw_fd(fd) };
            set_nonblocking(f.as_raw_fd())?;
            files.push(f);
        }
        let info = format!(
            "fd={}",
            fds.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        Self::from_queues(name, files, has_vnet, info)
    }

    /// The interface name the kernel gave the tap.
    pub fn ifname(&self) -> &str {
        &self.name
    }

    /// Number of queues open.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    fn drop_counted(&mut self, why: &dyn std::fmt::Display) {
        log::debug!("tap {}: frame dropped: {why}", self.name);
        self.counters.count_drop();
    }

    fn write_frame(&mut self, slices: &[IoSlice<'_>], total: usize) -> io::Result<()> {
        let mut q = &self.queues[0];
        match q.write_vectored(slices) {
            Ok(n) if n == total => Ok(()),
            Ok(n) => {
                self.drop_counted(&format!("short write {n}/{total}"));
                Ok(())
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::EIO | libc::ENOBUFS | libc::EINTR)
                    ) =>
            {
                // Queue full or interface down: the kernel would drop it too.
                self.drop_counted(&e);
                Ok(())
            }
            Err(e) => {
                self.counters.count_drop();
                Err(e)
            }
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Drop for TapBackend {
    fn drop(&mut self) {
        if let Some(s) = &self.downscript {
            if let Err(e) = script::run(s, &self.name) {
                log::error!("tap {}: {e}", self.name);
            }
        }
    }
}

impl NetBackend for TapBackend {
    fn kind(&self) -> &'static str {
        "tap"
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
        let hdr = [0u8; VirtioNetHdr::LEN];
        let mut slices = Vec::with_capacity(iov.len() + 1);
        if self.vnet_hdr {
            slices.push(IoSlice::new(&hdr));
        }
        slices.extend(iov.iter().map(|s| IoSlice::new(s)));
        let total = len + if self.vnet_hdr { hdr.len() } else { 0 };
        self.write_frame(&slices, total)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.scratch.len() < SCRATCH_LEN {
            self.scratch.resize(SCRATCH_LEN, 0);
        }
        let nq = self.queues.len();
        let mut tries = 0;
        let mut idle_queues = 0;
        while idle_queues < nq && tries < 64 {
            tries += 1;
            let qi = self.next_rx % nq;
            let mut hdr = [0u8; VirtioNetHdr::LEN];
            let hdr_len = if self.vnet_hdr { hdr.len() } else { 0 };
            let mut slices = Vec::with_capacity(3);
            if self.vnet_hdr {
                slices.push(IoSliceMut::new(&mut hdr));
            }
            slices.push(IoSliceMut::new(buf));
            slices.push(IoSliceMut::new(&mut self.scratch));
            let r = (&self.queues[qi]).read_vectored(&mut slices);
            let n = match r {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.next_rx = qi + 1;
                    idle_queues += 1;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            idle_queues = 0;
            let Some(len) = n.checked_sub(hdr_len).filter(|l| *l > 0) else {
                self.drop_counted(&"empty read");
                continue;
            };
            if len > buf.len() || !self.admin_up {
                self.drop_counted(&format!("{len}-byte frame, {}-byte buffer", buf.len()));
                continue;
            }
            // Next time start at the following queue, so no queue starves.
            self.next_rx = qi + 1;
            self.counters.count_received(len);
            return Ok(Some(len));
        }
        Ok(None)
    }

    /// Frames come only from the queues' descriptors: `recv` keeps nothing back.
    fn recv_waits_for_fd(&self) -> bool {
        true
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(match &self.readiness {
            Some(r) => r.fd(),
            None => self.queues[0].as_raw_fd(),
        })
    }

    fn link_up(&self) -> bool {
        self.admin_up
    }

    fn set_link(&mut self, up: bool) {
        self.admin_up = up;
    }

    fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    fn accepts_gso(&self) -> bool {
        self.vnet_hdr
    }

    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this tap was opened with vnet_hdr=off",
            ));
        }
        self.counters.count_sent(frame.len());
        let h = hdr.to_bytes();
        let slices = [IoSlice::new(&h), IoSlice::new(frame)];
        // The kernel validates the header (EINVAL for an inconsistent one): that is an
        // error worth reporting to the device model, not a full queue.
        self.write_frame(&slices, h.len() + frame.len())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

fn parse_script(opts: &[(String, String)], key: &str, default: &str) -> Option<PathBuf> {
    match get(opts, key) {
        Some(v) if script::disabled(v) => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(PathBuf::from(default)),
    }
}

fn parse_fd_list(key: &str, v: &str) -> Result<Vec<RawFd>, OptError> {
    v.split(':').map(|s| parse_fd(key, s)).collect()
}

fn parse_vnet(opts: &[(String, String)]) -> Result<Option<bool>, OptError> {
    get(opts, "vnet_hdr")
        .map(|v| parse_bool("vnet_hdr", v))
        .transpose()
}

fn io_err(key: &str, e: io::Error) -> OptError {
    OptError::at(key, e.to_string())
}

/// Opens `-netdev tap,...` with QEMU's options and defaults.
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("tap", opts, KEYS)?;
    let vnet = parse_vnet(opts)?;
    let fd_key = ["fd", "fds"].into_iter().find(|k| get(opts, k).is_some());
    if let Some(fd_key) = fd_key {
        for k in [
            "fd",
            "fds",
            "ifname",
            "script",
            "downscript",
            "helper",
            "queues",
            "br",
        ] {
            if k != fd_key && get(opts, k).is_some() {
                return Err(OptError::at(k, format!("{k}= is invalid with {fd_key}=")));
            }
        }
        let fds = parse_fd_list(fd_key, get(opts, fd_key).unwrap_or_default())?;
        let b = TapBackend::from_fds(&fds, vnet).map_err(|e| io_err(fd_key, e))?;
        return Ok(Box::new(b));
    }
    if let Some(helper) = get(opts, "helper") {
        for k in ["ifname", "script", "downscript", "queues"] {
            if get(opts, k).is_some() {
                return Err(OptError::at(k, format!("{k}= is invalid with helper=")));
            }
        }
        let br = get(opts, "br").unwrap_or(bridge::DEFAULT_BRIDGE);
        return bridge::open_with_helper(helper, br, vnet).map(|b| Box::new(b) as _);
    }
    if get(opts, "br").is_some() {
        return Err(OptError::at(
            "br",
            "br= goes with helper= (or use -netdev bridge)",
        ));
    }
    let queues = match get(opts, "queues") {
        None => 1,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                OptError::at("queues", format!("'{v}' is not a queue count (1..256)"))
            })?,
    };
    let sndbuf = match get(opts, "sndbuf") {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map(|n| n.min(i32::MAX as u64) as i32)
                .map_err(|_| OptError::at("sndbuf", format!("'{v}' is not a byte count")))?,
        ),
    };
    let cfg = TapConfig {
        ifname: get(opts, "ifname").unwrap_or("tap%d").to_string(),
        script: parse_script(opts, "script", script::DEFAULT_SCRIPT),
        downscript: parse_script(opts, "downscript", script::DEFAULT_DOWNSCRIPT),
        vnet_hdr: vnet,
        queues,
        sndbuf,
    };
    let key = if get(opts, "ifname").is_some() {
        "ifname"
    } else {
        "script"
    };
    let b = TapBackend::open(&cfg).map_err(|e| {
        let k = if e.to_string().contains("network script") {
            "script"
        } else {
            key
        };
        io_err(k, e)
    })?;
    Ok(Box::new(b))
}
