//! Host sockets for the NAT: non-blocking connect, which std does not offer.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The `sockaddr` for `addr`, with its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Starts a non-blocking TCP connect. Returns the stream and whether it is already
/// connected; when not, the caller waits for writability and checks `take_error`.
pub(crate) fn tcp_connect(addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked and owned right away.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // The guest does its own segmentation: do not delay its small segments again.
    stream.set_nodelay(true)?;
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss/len describe a valid sockaddr of the right family.
    let r = unsafe { libc::connect(fd, &ss as *const _ as *const libc::sockaddr, len) };
    if r == 0 {
        return Ok((stream, true));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        // A connect to the loopback has usually completed by the time connect(2)
        // returns (the handshake runs inside it): then the guest is answered at once
        // instead of after a round through epoll. getpeername fails until established.
        let done = stream.peer_addr().is_ok();
        Ok((stream, done))
    } else {
        Err(e)
    }
}

/// Longest Unix socket path plus its terminating NUL (`sun_path`).
pub(crate) const UNIX_PATH_MAX: usize = 108;

/// Connects a Unix stream socket without blocking: a listener whose backlog is full
/// fails with `WouldBlock` instead of stalling the caller. The stream is non-blocking.
pub(crate) fn unix_connect(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= UNIX_PATH_MAX || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad Unix socket path",
        ));
    }
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked and owned right away.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let stream = std::os::unix::net::UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: sun is a valid sockaddr_un and len does not exceed its size.
    cvt(unsafe {
        libc::connect(
            fd,
            &sun as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
        )
    })?;
    Ok(stream)
}

/// Makes the next close of `s` send RST instead of FIN (SO_LINGER with zero timeout), so
/// a guest's reset reaches the host peer as a reset.
pub(crate) fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: l is a valid linger struct for the duration of the call.
    let _ = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Enables TCP keepalive on a NAT'ed host socket so dead peers are noticed.
pub(crate) fn set_keepalive(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: on is a valid int for the duration of the call.
    let _ = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Asks the kernel to queue ICMP errors (port unreachable ...) on an unconnected UDP
/// socket, where they are otherwise not reported.
pub(crate) fn set_recverr(s: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let (level, opt) = match s.local_addr() {
        Ok(SocketAddr::V6(_)) => (libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
        _ => (libc::IPPROTO_IP, libc::IP_RECVERR),
    };
    // SAFETY: on is a valid int for the duration of the call.
    let _ = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Drains the socket's error queue (at most `max` entries), returning the original
/// destination of each datagram the network refused with "port unreachable".
pub(crate) fn refused_destinations(s: &std::net::UdpSocket, max: usize) -> Vec<SocketAddr> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    for _ in 0..max {
        // SAFETY: zeroed sockaddr_storage/msghdr are valid; every pointer handed to
        // recvmsg points at a live buffer of the stated length.
        let (r, name, namelen, ctrl, ctrl_len) = unsafe {
            let mut name: libc::sockaddr_storage = std::mem::zeroed();
            let mut data = [0u8; 64];
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            let mut ctrl = [0u64; 64];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&ctrl);
            let r = libc::recvmsg(
                s.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            );
            (r, name, msg.msg_namelen, ctrl, msg.msg_controllen)
        };
        if r < 0 {
            break;
        }
        let refused = first_ee_errno(&ctrl, ctrl_len) == Some(libc::ECONNREFUSED as u32);
        if refused {
            if let Some(a) = from_sockaddr(&name, namelen) {
                out.push(a);
            }
        }
    }
    out
}

/// The `ee_errno` of the first `sock_extended_err` in a control buffer.
fn first_ee_errno(ctrl: &[u64; 64], len: usize) -> Option<u32> {
    let bytes: Vec<u8> = ctrl.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let len = len.min(bytes.len());
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    if len < hdr + 4 {
        return None;
    }
    // cmsg_len, then level and type; the data (sock_extended_err) starts after the header,
    // ee_errno being its first u32.
    let data = &bytes[hdr..hdr + 4];
    Some(u32::from_ne_bytes([data[0], data[1], data[2], data[3]]))
}

fn from_sockaddr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let family = libc::c_int::from(ss.ss_family);
    if family == libc::AF_INET && len as usize >= std::mem::size_of::<libc::sockaddr_in>() {
        // SAFETY: the family says the storage holds a sockaddr_in.
        let sin: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
    } else if family == libc::AF_INET6 && len as usize >= std::mem::size_of::<libc::sockaddr_in6>()
    {
        // SAFETY: the family says the storage holds a sockaddr_in6.
        let sin6: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        Some(SocketAddr::from((ip, u16::from_be(sin6.sin6_port))))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_connect_usually_completes_inside_connect() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // The handshake runs in connect(2) unless softirqs are deferred under load: one
        // attempt in twenty is plenty to see it reported as done.
        let mut done = 0;
        for _ in 0..20 {
            let (s, connected) = tcp_connect(addr).unwrap();
            if connected {
                assert!(s.peer_addr().is_ok());
                done += 1;
            }
            drop(l.accept().unwrap());
        }
        assert!(done > 0, "no connect reported complete at once");
    }
}
