//! QEMU's socket family: `-netdev socket` (`listen=`, `connect=`, `mcast=`, `udp=`,
//! `fd=`), `-netdev stream` and `-netdev dgram` (QEMU 7.2 option names).
//!
//! Stream sockets carry each frame behind a 4-byte big-endian length (see [`framing`]);
//! datagram sockets carry one frame per datagram. The option entry points are [`open`]
//! (`socket`), [`stream::open`] (`stream`) and [`dgram::open`] (`dgram`); Rust users can build
//! [`StreamBackend`]s and [`DgramBackend`]s directly.
//!
//! ```text
//! -netdev socket,id=n0,listen=127.0.0.1:5555        -netdev socket,id=n0,connect=127.0.0.1:5555
//! -netdev socket,id=n0,mcast=230.0.0.1:1234,localaddr=127.0.0.1
//! -netdev socket,id=n0,udp=127.0.0.1:6000,localaddr=127.0.0.1:6001
//! -netdev stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=5555
//! -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/n0.sock
//! -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=6001,remote.type=inet,remote.host=127.0.0.1,remote.port=6000
//! ```

pub mod addr;
pub mod dgram;
pub mod framing;
pub mod stream;

use socket2::Type;

pub use addr::SockTarget;
pub use dgram::DgramBackend;
pub use stream::StreamBackend;

use crate::backend::NetBackend;
use crate::opts::{check_keys, get, OptError};

/// Keys `-netdev socket` accepts (besides the generic `id`/`vlan`/`name`).
pub const KEYS: &[&str] = &["fd", "listen", "connect", "mcast", "udp", "localaddr"];

fn io_err(key: &str, e: std::io::Error) -> OptError {
    OptError::at(key, e.to_string())
}

/// Opens `-netdev socket,...`: exactly one of `fd=`, `listen=`, `connect=`, `mcast=`,
/// `udp=`; `localaddr=` goes with `mcast=` (interface address) or `udp=` (mandatory,
/// `host:port` to bind).
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("socket", opts, KEYS)?;
    let modes: Vec<&str> = ["fd", "listen", "connect", "mcast", "udp"]
        .into_iter()
        .filter(|k| get(opts, k).is_some())
        .collect();
    if modes.len() != 1 {
        return Err(OptError::whole(
            "exactly one of fd=, listen=, connect=, mcast= or udp= is required",
        ));
    }
    let key = modes[0];
    let value = get(opts, key).unwrap_or_default();
    let localaddr = get(opts, "localaddr");
    if localaddr.is_some() && !matches!(key, "mcast" | "udp") {
        return Err(OptError::at(
            "localaddr",
            "localaddr= is only valid with mcast= or udp=",
        ));
    }
    let b: Box<dyn NetBackend> = match key {
        "fd" => {
            let fd = crate::opts::parse_fd("fd", value)?;
            let mut ty: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_TYPE writes one int into `ty`.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&mut ty as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if r < 0 {
                return Err(OptError::at("fd", format!("fd {fd} is not a socket")));
            }
            if Type::from(ty) == Type::STREAM {
                Box::new(
                    StreamBackend::connect(&SockTarget::Fd(fd))
                        .map_err(|e| io_err("fd", e))?
                        .with_kind("socket"),
                )
            } else {
                Box::new(
                    DgramBackend::from_fd(fd, None)
                        .map_err(|e| io_err("fd", e))?
                        .with_kind("socket"),
                )
            }
        }
        "listen" => {
            let a = addr::parse_host_port(key, value)?;
            Box::new(
                StreamBackend::listen(&SockTarget::Inet(a.into()))
                    .map_err(|e| io_err(key, e))?
                    .with_kind("socket"),
            )
        }
        "connect" => {
            let a = addr::parse_host_port(key, value)?;
            Box::new(
                StreamBackend::connect(&SockTarget::Inet(a.into()))
                    .map_err(|e| io_err(key, e))?
                    .with_kind("socket"),
            )
        }
        "mcast" => {
            let group = addr::parse_host_port(key, value)?;
            let local = localaddr
                .map(|l| addr::parse_ipv4("localaddr", l))
                .transpose()?;
            Box::new(
                DgramBackend::mcast(group, local)
                    .map_err(|e| io_err(key, e))?
                    .with_kind("socket"),
            )
        }
        _ => {
            let remote = addr::parse_host_port(key, value)?;
            let local = localaddr
                .ok_or_else(|| OptError::at("udp", "udp= needs localaddr=host:port to bind"))?;
            let local = addr::parse_host_port("localaddr", local)?;
            Box::new(
                DgramBackend::udp(local.into(), remote.into())
                    .map_err(|e| io_err("localaddr", e))?
                    .with_kind("socket"),
            )
        }
    };
    Ok(b)
}
