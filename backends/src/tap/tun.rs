//! The Linux TUN/TAP interface: opening `/dev/net/tun`, the `TUNSET*` ioctls, and
//! interface flags through `SIOC*` ioctls.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// The clone device.
pub const TUN_PATH: &str = "/dev/net/tun";

/// `IFF_TAP`: Ethernet frames, not IP packets.
pub const IFF_TAP: u16 = 0x0002;
/// `IFF_NO_PI`: no 4-byte packet-information prefix.
pub const IFF_NO_PI: u16 = 0x1000;
/// `IFF_VNET_HDR`: every frame carries a virtio-net header.
pub const IFF_VNET_HDR: u16 = 0x4000;
/// `IFF_MULTI_QUEUE`: several descriptors share one interface.
pub const IFF_MULTI_QUEUE: u16 = 0x0100;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
const TUNGETFEATURES: libc::c_ulong = 0x8004_54cf;
const TUNSETSNDBUF: libc::c_ulong = 0x4004_54d4;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// `struct ifreq` with the union parts this module uses.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    /// `ifr_flags` (short) or `ifr_ifindex` (int), then padding to the union's size.
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<Self> {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        if name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name '{name}' is longer than 15 bytes or has a NUL"),
            ));
        }
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(r)
    }

    fn name(&self) -> String {
        CStr::from_bytes_until_nul(&self.name)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn set_flags(&mut self, f: u16) {
        self.data[..2].copy_from_slice(&f.to_ne_bytes());
    }

    fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
}

fn ioctl_ptr<T>(fd: RawFd, req: libc::c_ulong, arg: *mut T) -> io::Result<()> {
    // SAFETY: every caller passes a request whose argument is the pointed-to type.
    if unsafe { libc::ioctl(fd, req, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Explains an `open("/dev/net/tun")` failure and what to do.
pub fn explain_open_error(e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
            "the tun driver is missing: load it with 'modprobe tun' (or create the node: mknod /dev/net/tun c 10 200)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "creating a tap needs CAP_NET_ADMIN: run as root, use a tap created for your user ('ip tuntap add mode tap user $USER'), pass fd=, or use -netdev bridge with qemu-bridge-helper"
        }
        _ => "",
    };
    if hint.is_empty() {
        format!("could not open {TUN_PATH}: {e}")
    } else {
        format!("could not open {TUN_PATH}: {e}; {hint}")
    }
}

/// Opens one tap queue named `ifname` (`%d` lets the kernel pick a number). Returns the
/// file (non-blocking, close-on-exec) and the interface's real name.
pub fn open_tap(ifname: &str, vnet_hdr: bool, multi_queue: bool) -> io::Result<(File, String)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_PATH)
        .map_err(|e| io::Error::new(e.kind(), explain_open_error(&e)))?;
    let mut req = IfReq::new(ifname)?;
    let mut flags = IFF_TAP | IFF_NO_PI;
    if vnet_hdr {
        flags |= IFF_VNET_HDR;
    }
    if multi_queue {
        flags |= IFF_MULTI_QUEUE;
    }
    req.set_flags(flags);
    ioctl_ptr(file.as_raw_fd(), TUNSETIFF, &mut req).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) => {
                "; creating or attaching a tap needs CAP_NET_ADMIN (or a tap owned by your user)"
            }
            Some(libc::EBUSY) => {
                "; the interface is in use (or exists without IFF_MULTI_QUEUE/with other flags)"
            }
            Some(libc::EINVAL) if multi_queue => {
                "; the kernel or the existing interface does not support multiqueue"
            }
            _ => "",
        };
        io::Error::new(
            e.kind(),
            format!("could not configure {TUN_PATH} (TUNSETIFF {ifname}): {e}{hint}"),
        )
    })?;
    if vnet_hdr {
        let mut sz: libc::c_int = crate::vnet::VirtioNetHdr::LEN as libc::c_int;
        ioctl_ptr(file.as_raw_fd(), TUNSETVNETHDRSZ, &mut sz)?;
    }
    Ok((file, req.name()))
}

/// True when this kernel's tun driver offers `IFF_VNET_HDR`.
pub fn supports_vnet_hdr() -> bool {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(TUN_PATH)
    else {
        return false;
    };
    let mut features: libc::c_uint = 0;
    ioctl_ptr(f.as_raw_fd(), TUNGETFEATURES, &mut features).is_ok()
        && features & IFF_VNET_HDR as libc::c_uint != 0
}

/// What an already open tap descriptor is: its name and `IFF_*` flags.
pub fn query(fd: RawFd) -> io::Result<(String, u16)> {
    let mut req = IfReq::new("")?;
    ioctl_ptr(fd, TUNGETIFF, &mut req).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("fd {fd} is not a tap device (TUNGETIFF: {e})"),
        )
    })?;
    if req.flags() & IFF_TAP == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is a tun (IP) device, not a tap"),
        ));
    }
    Ok((req.name(), req.flags()))
}

/// Sets the per-queue send buffer (QEMU's `sndbuf=`; `i32::MAX` means unlimited).
pub fn set_sndbuf(fd: RawFd, bytes: i32) -> io::Result<()> {
    let mut v: libc::c_int = bytes;
    ioctl_ptr(fd, TUNSETSNDBUF, &mut v)
}

/// Sets the virtio-net header size on an open tap.
pub fn set_vnet_hdr_len(fd: RawFd, len: i32) -> io::Result<()> {
    let mut v: libc::c_int = len;
    ioctl_ptr(fd, TUNSETVNETHDRSZ, &mut v)
}

fn control_socket() -> io::Result<File> {
    // SAFETY: socket() returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Brings interface `name` up (`SIOCSIFFLAGS` with `IFF_UP`).
pub fn set_up(name: &str) -> io::Result<()> {
    let s = control_socket()?;
    let mut req = IfReq::new(name)?;
    ioctl_ptr(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    let flags = req.flags() | libc::IFF_UP as u16;
    req.set_flags(flags);
    ioctl_ptr(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
}

/// Enslaves interface `port` to bridge `bridge` (`SIOCBRADDIF`).
pub fn bridge_add(bridge: &str, port: &str) -> io::Result<()> {
    let s = control_socket()?;
    let cname = std::ffi::CString::new(port)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: a valid NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut req = IfReq::new(bridge)?;
    req.set_int(index as i32);
    ioctl_ptr(s.as_raw_fd(), SIOCBRADDIF, &mut req).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot add {port} to bridge {bridge}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_layout_and_names() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        let mut r = IfReq::new("tap%d").unwrap();
        r.set_flags(IFF_TAP | IFF_NO_PI);
        assert_eq!(r.name(), "tap%d");
        assert_eq!(r.flags(), 0x1002);
        assert!(IfReq::new("a-very-long-name0").is_err());
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert!(explain_open_error(&e).contains("modprobe tun"));
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert!(explain_open_error(&e).contains("CAP_NET_ADMIN"));
    }
}
