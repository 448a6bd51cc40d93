//! `-netdev bridge` and `tap,helper=`: a tap attached to a Linux bridge, either by a
//! qemu-bridge-helper-compatible helper (run as `HELPER --use-vnet --fd=N --br=BR`, the
//! tap descriptor comes back over a socketpair with `SCM_RIGHTS`) or, when running with
//! CAP_NET_ADMIN, directly (create the tap, `SIOCBRADDIF`, bring it up).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use super::tun;
use crate::backend::NetBackend;
use crate::opts::{check_keys, get, OptError};

/// QEMU's default helper path on Debian.
pub const DEFAULT_HELPER: &str = "/usr/lib/qemu/qemu-bridge-helper";
/// QEMU's default bridge.
pub const DEFAULT_BRIDGE: &str = "br0";
/// How long a helper may take to hand back the descriptor.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0 as RawFd; 2];
    // SAFETY: socketpair writes two new descriptors into `sv`.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

/// Receives one descriptor sent with `SCM_RIGHTS` on `sock`, waiting at most `timeout`.
fn recv_fd(sock: &OwnedFd, timeout: Duration) -> io::Result<Option<OwnedFd>> {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd with a bounded timeout.
    if unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) } <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the helper sent no descriptor in time",
        ));
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one int of ancillary data, aligned as cmsghdr requires.
    let mut cbuf = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; fields set below point into live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
                return Ok(Some(OwnedFd::from_raw_fd(fd)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(None)
}

/// Runs `helper` for bridge `bridge` and returns the tap it opened. A helper path with
/// spaces is run through `/bin/sh -c`, as QEMU does.
pub fn run_helper(helper: &str, bridge: &str, use_vnet: bool) -> io::Result<File> {
    let (ours, theirs) = socketpair()?;
    let child_fd = theirs.as_raw_fd();
    let mut args: Vec<String> = Vec::new();
    if use_vnet {
        args.push("--use-vnet".into());
    }
    args.push(format!("--fd={child_fd}"));
    args.push(format!("--br={bridge}"));
    let mut cmd = if helper.contains(' ') {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(format!("{helper} {}", args.join(" ")));
        c
    } else {
        let mut c = Command::new(helper);
        c.args(&args);
        c
    };
    // SAFETY: only fcntl, async-signal-safe: the helper's end of the socketpair stays
    // open across exec, nothing else does.
    unsafe {
        cmd.pre_exec(move || {
            super::script::close_other_fds()?;
            if libc::fcntl(child_fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("could not launch bridge helper {helper}: {e}"),
        )
    })?;
    drop(theirs);
    let got = recv_fd(&ours, HELPER_TIMEOUT);
    if got.is_err() {
        // Do not wait forever on a stuck helper: it is ours, end it by its PID.
        let _ = child.kill();
    }
    let status = child.wait()?;
    let fd = got?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "bridge helper {helper} failed ({status}); check that {bridge} exists and that /etc/qemu/bridge.conf has 'allow {bridge}'"
        )));
    }
    let fd = fd.ok_or_else(|| {
        io::Error::other(format!(
            "bridge helper {helper} exited without sending a tap descriptor"
        ))
    })?;
    Ok(File::from(fd))
}

/// Creates tap `ifname` and attaches it to `bridge` directly (needs CAP_NET_ADMIN).
pub fn builtin(bridge: &str, ifname: &str, vnet_hdr: bool) -> io::Result<(File, String)> {
    let (file, name) = tun::open_tap(ifname, vnet_hdr, false)?;
    tun::bridge_add(bridge, &name)?;
    tun::set_up(&name)?;
    Ok((file, name))
}

/// True when this process may create and attach taps itself.
pub fn can_do_it_ourselves() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Keys `-netdev bridge` accepts (besides the generic `id`/`vlan`/`name`).
pub const KEYS: &[&str] = &["br", "helper"];

/// Opens a tap on `bridge` through `helper` (header per `vnet`: `None` = when supported).
pub fn open_with_helper(
    helper: &str,
    bridge: &str,
    vnet: Option<bool>,
) -> Result<super::TapBackend, OptError> {
    let use_vnet = vnet.unwrap_or_else(tun::supports_vnet_hdr);
    let file =
        run_helper(helper, bridge, use_vnet).map_err(|e| OptError::at("helper", e.to_string()))?;
    let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
    let mut b = super::TapBackend::from_fds(&[fd], vnet)
        .map_err(|e| OptError::at("helper", e.to_string()))?;
    b.info = format!("helper={helper},br={bridge}");
    Ok(b)
}

/// Opens `-netdev bridge,br=BR[,helper=PATH]`: with `helper=` (or when not running as
/// root) through the helper (default [`DEFAULT_HELPER`]), otherwise by creating a tap
/// and attaching it to the bridge directly.
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("bridge", opts, KEYS)?;
    let br = get(opts, "br").unwrap_or(DEFAULT_BRIDGE);
    if let Some(helper) = get(opts, "helper") {
        return open_with_helper(helper, br, None).map(|b| Box::new(b) as _);
    }
    if !can_do_it_ourselves() {
        return open_with_helper(DEFAULT_HELPER, br, None).map(|b| Box::new(b) as _);
    }
    let vnet = tun::supports_vnet_hdr();
    let (file, name) = builtin(br, "tap%d", vnet).map_err(|e| OptError::at("br", e.to_string()))?;
    let mut b = super::TapBackend::from_queues(name, vec![file], vnet, format!("br={br}"))
        .map_err(|e| OptError::at("br", e.to_string()))?;
    b.info = format!("br={br}");
    Ok(Box::new(b))
}
