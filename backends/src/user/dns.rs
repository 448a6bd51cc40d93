//! DNS: where queries to the virtual DNS address are forwarded.

use std::net::{IpAddr, SocketAddr};

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
}
