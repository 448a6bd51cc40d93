//! DNS: where queries to the virtual DNS address are forwarded.

use std::net::{IpAddr, SocketAddr};

use crate::opts::OptError;

/// Where queries go: the `dns-upstream=ADDR[:PORT]` options in order (a vm-nic extension,
/// not a QEMU option; port 53 when none is given, `[v6]:port` for IPv6), or when there is
/// none, [`system_resolvers`]. Tests and hosts without a usable /etc/resolv.conf use it.
pub fn resolvers_from_opts(o: &[(String, String)]) -> Result<Vec<SocketAddr>, OptError> {
    let given: Vec<SocketAddr> = o
        .iter()
        .filter(|(k, _)| k == "dns-upstream")
        .map(|(_, v)| parse_upstream(v))
        .collect::<Result<_, _>>()?;
    Ok(if given.is_empty() {
        system_resolvers()
    } else {
        given
    })
}

fn parse_upstream(v: &str) -> Result<SocketAddr, OptError> {
    v.parse::<SocketAddr>()
        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| {
            OptError::at(
                "dns-upstream",
                format!("'{v}' is not an address or address:port"),
            )
        })
}

/// The host's resolvers from /etc/resolv.conf, each on port 53; 127.0.0.1:53 when the file
/// names none (what glibc assumes too).
pub fn system_resolvers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let found = parse_resolv_conf(&text);
    if found.is_empty() {
        vec![SocketAddr::from(([127, 0, 0, 1], 53))]
    } else {
        found
    }
}

/// The `nameserver` lines of a resolv.conf text (at most 3, as glibc reads).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                // Scoped IPv6 addresses (fe80::1%eth0) cannot be used without the scope.
                .and_then(|a| a.parse::<IpAddr>().ok())
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# c\nsearch x\nnameserver 192.0.2.1\nnameserver  ::1 \nnameserver bad\n\
                 nameserver 192.0.2.2\nnameserver 192.0.2.3\n";
        let v = parse_resolv_conf(t);
        assert_eq!(
            v,
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "192.0.2.2:53".parse().unwrap()
            ]
        );
        assert!(!system_resolvers().is_empty());
    }

    #[test]
    fn dns_upstream_overrides_resolv_conf() {
        let o = |v: &[&str]| -> Vec<(String, String)> {
            v.iter()
                .map(|v| ("dns-upstream".to_string(), v.to_string()))
                .collect()
        };
        let v = resolvers_from_opts(&o(&["127.0.0.1:5353", "192.0.2.9", "[::1]:54"])).unwrap();
        assert_eq!(
            v,
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "192.0.2.9:53".parse().unwrap(),
                "[::1]:54".parse().unwrap()
            ]
        );
        assert_eq!(resolvers_from_opts(&[]).unwrap(), system_resolvers());
        let e = resolvers_from_opts(&o(&["resolver.example"])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dns-upstream"));
    }
}
