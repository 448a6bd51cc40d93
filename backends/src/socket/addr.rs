//! Addresses as QEMU's socket options spell them: `host:port` (socket backend) and the
//! `addr.*` / `local.*` / `remote.*` key groups of `-netdev stream` / `-netdev dgram`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::opts::{get, parse_fd, OptError};

/// Where a socket backend connects, listens or sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockTarget {
    /// An IP address and port.
    Inet(SocketAddr),
    /// A Unix-domain socket path.
    Unix(PathBuf),
    /// An already open socket descriptor, owned by the backend from then on.
    Fd(RawFd),
}

impl std::fmt::Display for SockTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockTarget::Inet(a) => write!(f, "{a}"),
            SockTarget::Unix(p) => write!(f, "{}", p.display()),
            SockTarget::Fd(fd) => write!(f, "fd={fd}"),
        }
    }
}

/// Parses QEMU's `host:port` for the socket backend (IPv4; an empty host means any
/// address, as for `listen=:1234`).
pub fn parse_host_port(key: &str, s: &str) -> Result<SocketAddrV4, OptError> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| {
        OptError::at(key, format!("'{s}' is not host:port (e.g. 127.0.0.1:1234)"))
    })?;
    let port: u16 = port
        .parse()
        .map_err(|_| OptError::at(key, format!("'{port}' is not a port number")))?;
    if host.is_empty() {
        return Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    }
    resolve_v4(key, host, port)
}

fn resolve_v4(key: &str, host: &str, port: u16) -> Result<SocketAddrV4, OptError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(ip, port));
    }
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| OptError::at(key, format!("cannot resolve host '{host}': {e}")))?;
    addrs
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| OptError::at(key, format!("host '{host}' has no IPv4 address")))
}

/// Parses an IPv4 address for `localaddr=` without a port (mcast interface).
pub fn parse_ipv4(key: &str, s: &str) -> Result<Ipv4Addr, OptError> {
    Ok(*resolve_v4(key, s, 0)?.ip())
}

/// Parses a `SocketAddress` key group such as `addr.type=inet,addr.host=H,addr.port=P`,
/// `addr.type=unix,addr.path=P` or `addr.type=fd,addr.str=N`. `None` when no key of the
/// group (`prefix` = `"addr"`, `"local"`, `"remote"`) is present. An empty inet host is
/// the any-address (servers) and loopback is never guessed.
pub fn parse_group(
    opts: &[(String, String)],
    prefix: &str,
) -> Result<Option<SockTarget>, OptError> {
    let key = |k: &str| format!("{prefix}.{k}");
    let present = opts
        .iter()
        .any(|(k, _)| k.starts_with(&format!("{prefix}.")));
    if !present {
        return Ok(None);
    }
    let type_key = key("type");
    let ty = get(opts, &type_key)
        .ok_or_else(|| OptError::whole(format!("{type_key} is required (inet, unix or fd)")))?;
    let target = match ty {
        "inet" => {
            let host = get(opts, &key("host")).unwrap_or("");
            let port_key = key("port");
            let port = get(opts, &port_key).ok_or_else(|| {
                OptError::whole(format!("{port_key} is required with {type_key}=inet"))
            })?;
            let port: u16 = port
                .parse()
                .map_err(|_| OptError::at(&port_key, format!("'{port}' is not a port number")))?;
            let host_key = key("host");
            let ip = if host.is_empty() {
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
            } else if let Ok(ip6) = host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>() {
                return Ok(Some(SockTarget::Inet(SocketAddr::new(ip6.into(), port))));
            } else {
                resolve_v4(&host_key, host, port)?
            };
            SockTarget::Inet(ip.into())
        }
        "unix" => {
            let path_key = key("path");
            let path = get(opts, &path_key).ok_or_else(|| {
                OptError::whole(format!("{path_key} is required with {type_key}=unix"))
            })?;
            SockTarget::Unix(PathBuf::from(path))
        }
        "fd" => {
            let str_key = key("str");
            let s = get(opts, &str_key).ok_or_else(|| {
                OptError::whole(format!("{str_key} is required with {type_key}=fd"))
            })?;
            SockTarget::Fd(parse_fd(&str_key, s)?)
        }
        other => {
            return Err(OptError::at(
                &type_key,
                format!("'{other}' is not an address type; use inet, unix or fd"),
            ))
        }
    };
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("listen", ":1234").unwrap(),
            "0.0.0.0:1234".parse().unwrap()
        );
        assert_eq!(
            parse_host_port("connect", "127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            parse_host_port("connect", "localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            parse_host_port("udp", "1.2.3.4")
                .unwrap_err()
                .key
                .as_deref(),
            Some("udp")
        );
        assert_eq!(
            parse_host_port("udp", "1.2.3.4:x")
                .unwrap_err()
                .key
                .as_deref(),
            Some("udp")
        );
    }

    #[test]
    fn key_groups() {
        let g = parse_group(
            &o(&[
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", "5"),
            ]),
            "addr",
        );
        assert_eq!(
            g.unwrap(),
            Some(SockTarget::Inet("127.0.0.1:5".parse().unwrap()))
        );
        let g = parse_group(&o(&[("local.type", "unix"), ("local.path", "/x")]), "local");
        assert_eq!(g.unwrap(), Some(SockTarget::Unix("/x".into())));
        assert_eq!(parse_group(&o(&[("server", "on")]), "addr").unwrap(), None);
        let e = parse_group(&o(&[("addr.type", "vsock")]), "addr").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("addr.type"));
        assert!(parse_group(&o(&[("addr.type", "inet")]), "addr").is_err());
        assert!(crate::opts::parse_fd("fd", "999999").is_err());
    }
}
