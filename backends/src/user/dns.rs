//! DNS: where queries to the virtual DNS address are forwarded.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::opts::OptError;

/// The file the host's resolvers are read from.
pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How often, at most, the file is checked for a change (libslirp: once a second).
const RECHECK: Duration = Duration::from_secs(1);

/// Where queries go: the `dns-upstream=ADDR[:PORT]` options in order (a vm-nic extension,
/// not a QEMU option; port 53 when none is given, `[v6]:port` for IPv6). Tests and hosts
/// without a usable /etc/resolv.conf use it. Empty when none is given, which means the
/// host's resolvers, followed as /etc/resolv.conf changes.
pub fn resolvers_from_opts(o: &[(String, String)]) -> Result<Vec<SocketAddr>, OptError> {
    o.iter()
        .filter(|(k, _)| k == "dns-upstream")
        .map(|(_, v)| parse_upstream(v))
        .collect()
}

/// Follows a resolv.conf the way libslirp does: at most once a second, a `stat` of the
/// file; when its device, inode, size or modification time changed, it is read again.
#[derive(Debug)]
pub(crate) struct ResolvConf {
    path: PathBuf,
    stamp: Option<(u64, u64, u64, i64, i64)>,
    checked: Option<Instant>,
}

impl ResolvConf {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ResolvConf {
            path: path.into(),
            stamp: None,
            checked: None,
        }
    }

    fn stamp(&self) -> Option<(u64, u64, u64, i64, i64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
    }

    /// The resolvers when the file changed since the last call (or on the first call),
    /// `None` when it did not or the last check is less than a second old. A file with
    /// no nameserver, or none at all, means 127.0.0.1:53 (what glibc assumes too).
    pub fn refresh(&mut self, now: Instant) -> Option<Vec<SocketAddr>> {
        if self
            .checked
            .is_some_and(|t| now.saturating_duration_since(t) < RECHECK)
        {
            return None;
        }
        self.checked = Some(now);
        let stamp = self.stamp();
        if self.stamp == stamp && stamp.is_some() {
            return None;
        }
        self.stamp = stamp;
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let found = parse_resolv_conf(&text);
        let list = if found.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 53))]
        } else {
            found
        };
        log::debug!("user: DNS forwarded to {list:?} ({})", self.path.display());
        Some(list)
    }
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
    ResolvConf::new(RESOLV_CONF)
        .refresh(Instant::now())
        .unwrap_or_default()
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
        assert!(
            resolvers_from_opts(&[]).unwrap().is_empty(),
            "follow the system"
        );
        let e = resolvers_from_opts(&o(&["resolver.example"])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dns-upstream"));
    }

    #[test]
    fn resolv_conf_is_followed_when_it_changes() {
        let path = std::env::temp_dir().join(format!("vm-nic-resolv-{}", std::process::id()));
        std::fs::write(&path, "nameserver 192.0.2.1\n").unwrap();
        let mut r = ResolvConf::new(&path);
        let t0 = Instant::now();
        assert_eq!(r.refresh(t0), Some(vec!["192.0.2.1:53".parse().unwrap()]));
        // Unchanged: nothing new, whenever asked.
        assert_eq!(r.refresh(t0 + RECHECK), None);
        // Changed (another size): seen, but not before a second has passed.
        std::fs::write(&path, "nameserver 192.0.2.22\nnameserver ::1\n").unwrap();
        assert_eq!(r.refresh(t0 + RECHECK + Duration::from_millis(500)), None);
        let want: Vec<SocketAddr> = vec![
            "192.0.2.22:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
        ];
        assert_eq!(r.refresh(t0 + 3 * RECHECK), Some(want));
        // Gone, or without nameservers: glibc's default.
        std::fs::remove_file(&path).unwrap();
        let local = vec![SocketAddr::from(([127, 0, 0, 1], 53))];
        assert_eq!(r.refresh(t0 + 5 * RECHECK), Some(local.clone()));
        assert_eq!(
            r.refresh(t0 + 7 * RECHECK),
            Some(local),
            "missing stays re-checked"
        );
    }
}
