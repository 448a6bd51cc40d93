//! `-netdev user` options: QEMU's names and defaults, parsed into a typed [`UserConfig`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use super::guestfwd::{parse_guestfwd, GuestFwd};
use crate::opts::{self, OptError};

/// The keys `-netdev user` accepts (QEMU's names, without `id`).
pub const KEYS: &[&str] = &[
    "ipv4",
    "ipv6",
    "net",
    "ip",
    "host",
    "dhcpstart",
    "dns",
    "restrict",
    "hostname",
    "domainname",
    "dnssearch",
    "ipv6-net",
    "ipv6-prefix",
    "ipv6-prefixlen",
    "ipv6-host",
    "ipv6-dns",
    "tftp",
    "tftp-server-name",
    "bootfile",
    "hostfwd",
    "guestfwd",
    "smb",
    "smbserver",
    "dns-upstream",
];

/// Transport protocol of a forwarding rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwdProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One `hostfwd=` rule: connections to `host` on the host side reach `guest` in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFwd {
    /// TCP or UDP.
    pub proto: FwdProto,
    /// Host address and port to listen on (QEMU's default address is 0.0.0.0; an IPv6
    /// address is written in brackets, `[::1]:2222`).
    pub host: SocketAddr,
    /// Guest address and port the traffic is delivered to: IPv4, or IPv6 (`[::]` meaning
    /// the guest's address learned from its traffic, as libslirp resolves it lazily).
    pub guest: SocketAddr,
}

/// Resource bounds of the user-mode network. Exceeding one refuses new work cleanly
/// and counts it in [`super::UserStats`]. Worst-case buffer memory is
/// `max_flows × 2 × tcp_buffer` (1 GiB with the defaults, reached only if every flow's
/// both directions are stalled full) plus the guest queue (`queue_bytes`), 16 × 64 KiB
/// of IPv4 reassembly and 32 frames waiting for ARP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum concurrent TCP and UDP flows together.
    pub max_flows: usize,
    /// Bytes buffered per TCP flow and direction (towards the host, the in-order buffer
    /// and the out-of-order queue together); the window advertised to the guest never
    /// exceeds what is free here.
    pub tcp_buffer: usize,
    /// A UDP flow with no traffic for this long is closed (libslirp: 240 s).
    pub udp_idle: Duration,
    /// A DNS forwarding flow with no traffic for this long is closed (libslirp: 10 s).
    pub dns_idle: Duration,
    /// A TCP flow whose host connect has not completed after this long is refused.
    pub tcp_connect: Duration,
    /// Frames waiting for the guest.
    pub queue_frames: usize,
    /// Bytes waiting for the guest.
    pub queue_bytes: usize,
    /// Guest-forward commands (`guestfwd=...-cmd:`, smbd for `smb=`) running at once, one
    /// per guest connection; a connection beyond it is reset and counted. libslirp has no
    /// bound, so a guest could start a process per flow.
    pub max_commands: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 1024,
            tcp_buffer: 512 * 1024,
            udp_idle: Duration::from_secs(240),
            dns_idle: Duration::from_secs(10),
            tcp_connect: Duration::from_secs(75),
            queue_frames: 2048,
            queue_bytes: 8 << 20,
            max_commands: 64,
        }
    }
}

/// A guest packet's destination, as [`UserConfig::dest`] classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The virtual host (gateway): the host's loopback of the same family.
    Host,
    /// The virtual DNS server: forwarded to the host's resolvers.
    Dns,
    /// Another address of the virtual network, broadcast, multicast or unspecified.
    Local,
    /// Outside the virtual network: NAT'ed to itself.
    Outside,
}

/// True for an IPv6 link-local unicast address (fe80::/10).
pub(crate) fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The host's loopback address in the family of `a`.
pub(crate) fn loopback_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    }
}

/// Typed configuration of the user-mode network; [`Default`] is QEMU's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserConfig {
    /// Serve IPv4 (`ipv4=`).
    pub ipv4: bool,
    /// Serve IPv6 (`ipv6=`).
    pub ipv6: bool,
    /// Network address (`net=`, default 10.0.2.0).
    pub net: Ipv4Addr,
    /// Prefix length of `net` (default 24).
    pub prefix_len: u8,
    /// The virtual gateway / host address (`host=`, default .2). Reaches the host's
    /// 127.0.0.1 unless `restrict` is on.
    pub host: Ipv4Addr,
    /// The virtual DNS server (`dns=`, default .3).
    pub dns: Ipv4Addr,
    /// First address the DHCP server hands out (`dhcpstart=`, default .15).
    pub dhcp_start: Ipv4Addr,
    /// Isolate the guest from the host network except forwards (`restrict=`).
    pub restrict: bool,
    /// DHCP option 12 (`hostname=`).
    pub hostname: Option<String>,
    /// DHCP option 15 (`domainname=`).
    pub domainname: Option<String>,
    /// DHCP option 119 (`dnssearch=`, may be repeated).
    pub dnssearch: Vec<String>,
    /// IPv6 prefix (`ipv6-net=` / `ipv6-prefix=`, default fec0::).
    pub ipv6_prefix: Ipv6Addr,
    /// IPv6 prefix length (default 64).
    pub ipv6_prefix_len: u8,
    /// IPv6 virtual host (`ipv6-host=`, default prefix::2).
    pub ipv6_host: Ipv6Addr,
    /// IPv6 virtual DNS (`ipv6-dns=`, default prefix::3).
    pub ipv6_dns: Ipv6Addr,
    /// Root of the read-only TFTP server (`tftp=`).
    pub tftp: Option<PathBuf>,
    /// DHCP option 66 (`tftp-server-name=`).
    pub tftp_server_name: Option<String>,
    /// DHCP boot file name (`bootfile=`).
    pub bootfile: Option<String>,
    /// `hostfwd=` rules.
    pub hostfwd: Vec<HostFwd>,
    /// `guestfwd=` rules.
    pub guestfwd: Vec<GuestFwd>,
    /// Directory shared with the guest over SMB (`smb=`): smbd serves guest connections
    /// to `smb_server` ports 445 and 139.
    pub smb: Option<PathBuf>,
    /// The SMB server's virtual address (`smbserver=`, default the network's .4).
    pub smb_server: Ipv4Addr,
    /// Where DNS queries to `dns` are forwarded (`dns-upstream=`, not a QEMU option).
    /// Empty (the default) means the nameservers of /etc/resolv.conf, 127.0.0.1:53 when
    /// it has none, re-read when the file changes (checked at most once a second, as
    /// libslirp does); [`super::UserNet::config`] shows the list in force.
    pub dns_resolvers: Vec<SocketAddr>,
    /// Resource bounds. Not a QEMU option.
    pub limits: Limits,
}

fn in_net(net: Ipv4Addr, prefix: u8, a: Ipv4Addr) -> bool {
    let mask = prefix_mask(prefix);
    u32::from(a) & mask == u32::from(net) & mask
}

/// The netmask for a prefix length 0..=32.
pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// libslirp's address for a forward given without one (guestfwd, smbserver): the network
/// address with host part 0.0.2.4 as far as the mask allows (10.0.2.4 in 10.0.2.0/24).
fn default_forward_server(net: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    with_low_bits(net, prefix, 0x0204)
}

/// `net` with the host part `low` as far as the mask allows: QEMU's way of placing the
/// host (0.0.2.2), DNS (.3), DHCP start (.15) and forward server (.4) in any network.
fn with_low_bits(net: Ipv4Addr, prefix: u8, low: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net) | (low & !prefix_mask(prefix)))
}

fn with_host(net: Ipv4Addr, host: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net) | host)
}

fn v6_with_host(prefix: Ipv6Addr, host: u16) -> Ipv6Addr {
    let mut s = prefix.segments();
    s[7] = host;
    Ipv6Addr::from(s)
}

impl Default for UserConfig {
    fn default() -> Self {
        let net = Ipv4Addr::new(10, 0, 2, 0);
        let v6 = Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0);
        UserConfig {
            ipv4: true,
            ipv6: true,
            net,
            prefix_len: 24,
            host: with_host(net, 2),
            dns: with_host(net, 3),
            dhcp_start: with_host(net, 15),
            restrict: false,
            hostname: None,
            domainname: None,
            dnssearch: Vec::new(),
            ipv6_prefix: v6,
            ipv6_prefix_len: 64,
            ipv6_host: v6_with_host(v6, 2),
            ipv6_dns: v6_with_host(v6, 3),
            tftp: None,
            tftp_server_name: None,
            bootfile: None,
            hostfwd: Vec::new(),
            guestfwd: Vec::new(),
            smb: None,
            smb_server: default_forward_server(net, 24),
            dns_resolvers: Vec::new(),
            limits: Limits::default(),
        }
    }
}

impl UserConfig {
    /// The subnet mask as an address.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_mask(self.prefix_len))
    }

    /// True when `a` lies inside the virtual network.
    pub fn in_net(&self, a: Ipv4Addr) -> bool {
        in_net(self.net, self.prefix_len, a)
    }

    /// True when `a` lies inside `ipv6-net`.
    pub fn in_net6(&self, a: Ipv6Addr) -> bool {
        let len = u32::from(self.ipv6_prefix_len.min(128));
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        u128::from(a) & mask == u128::from(self.ipv6_prefix) & mask
    }

    /// True when `a` is the IPv6 virtual host: `ipv6-host`, or the router's link-local
    /// address fe80::2 (both reach the host's ::1, as in libslirp).
    pub fn is_v6_host(&self, a: Ipv6Addr) -> bool {
        a == self.ipv6_host || a == super::ipv6::ROUTER_LINK_LOCAL
    }

    /// True when a guest packet to `a` may leave the virtual network: a unicast address
    /// outside `ipv6-net`, not link-local, loopback, or IPv4-mapped.
    pub fn v6_routable(&self, a: Ipv6Addr) -> bool {
        !(self.in_net6(a)
            || is_link_local(a)
            || a.is_multicast()
            || a.is_unspecified()
            || a.is_loopback()
            || a.to_ipv4_mapped().is_some())
    }

    /// What the destination `a` of a guest packet is: a virtual host, the virtual DNS
    /// server, another address of the virtual networks (or broadcast, multicast,
    /// unspecified), or the outside.
    pub(crate) fn dest(&self, a: IpAddr) -> Dest {
        match a {
            IpAddr::V4(a) if a == self.host => Dest::Host,
            // A `dns=` outside the network is a real server the guest reaches by NAT.
            IpAddr::V4(a) if a == self.dns && self.in_net(a) => Dest::Dns,
            IpAddr::V4(a)
                if self.in_net(a) || a.is_broadcast() || a.is_multicast() || a.is_unspecified() =>
            {
                Dest::Local
            }
            IpAddr::V6(a) if self.is_v6_host(a) => Dest::Host,
            IpAddr::V6(a) if a == self.ipv6_dns => Dest::Dns,
            IpAddr::V6(a) if !self.v6_routable(a) => Dest::Local,
            _ => Dest::Outside,
        }
    }

    /// True for an address no unicast transport may use as a peer: unspecified,
    /// multicast, or an IPv4 broadcast (limited or this network's directed one).
    pub(crate) fn is_group(&self, a: IpAddr) -> bool {
        a.is_unspecified()
            || a.is_multicast()
            || matches!(a, IpAddr::V4(b) if b.is_broadcast() || b == self.broadcast())
    }

    /// The directed broadcast address of the virtual network.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) | !prefix_mask(self.prefix_len))
    }

    /// QEMU's `info network` detail: `net=10.0.2.0,restrict=off`.
    pub fn info(&self) -> String {
        format!(
            "net={},restrict={}",
            self.net,
            if self.restrict { "on" } else { "off" }
        )
    }

    /// Checks the addresses are consistent the way QEMU does.
    pub fn validate(&self) -> Result<(), OptError> {
        if !self.ipv4 && !self.ipv6 {
            return Err(OptError::whole("ipv4 and ipv6 cannot both be off"));
        }
        if self.prefix_len == 0 || self.prefix_len > 30 {
            return Err(OptError::at(
                "net",
                format!(
                    "prefix length {} is not supported (1..30 leave room for the host, DNS \
                     and DHCP addresses)",
                    self.prefix_len
                ),
            ));
        }
        if u32::from(self.net) & !prefix_mask(self.prefix_len) != 0 {
            return Err(OptError::at("net", "host bits set in the network address"));
        }
        let special = |a: Ipv4Addr| a == self.net || a == self.broadcast();
        // QEMU lets the DNS address lie outside the network unless restrict=on: the
        // guest is then told that address and its queries are NAT'ed to it.
        let dns_outside = !self.restrict && !self.in_net(self.dns);
        if dns_outside
            && (self.dns.is_unspecified() || self.dns.is_broadcast() || self.dns.is_multicast())
        {
            return Err(OptError::at(
                "dns",
                format!("{} is not a unicast address", self.dns),
            ));
        }
        if self.dns == self.host {
            return Err(OptError::at(
                "dns",
                "the DNS address must differ from the host address",
            ));
        }
        for (key, a) in [
            ("host", self.host),
            ("dns", self.dns),
            ("dhcpstart", self.dhcp_start),
        ] {
            if key == "dns" && dns_outside {
                continue;
            }
            if !self.in_net(a) || special(a) {
                return Err(OptError::at(
                    key,
                    format!(
                        "{a} is not a usable address in {}/{}",
                        self.net, self.prefix_len
                    ),
                ));
            }
        }
        if self.dhcp_start == self.host || self.dhcp_start == self.dns {
            return Err(OptError::at(
                "dhcpstart",
                "the DHCP range must not start at the host or DNS address",
            ));
        }
        let smb = self.smb.as_ref().map(|_| self.smb_server);
        let mut taken = Vec::new();
        for (key, a) in self.guestfwd.iter().map(|g| ("guestfwd", g.addr)).chain(
            smb.into_iter()
                .flat_map(|a| super::smb::PORTS.map(|p| ("smbserver", SocketAddrV4::new(a, p)))),
        ) {
            let ip = *a.ip();
            if !self.in_net(ip) || special(ip) || ip == self.host || ip == self.dns {
                return Err(OptError::at(
                    key,
                    format!("{ip} must be a free address inside the virtual network"),
                ));
            }
            if taken.contains(&a) {
                return Err(OptError::at(key, format!("{a} is forwarded twice")));
            }
            taken.push(a);
        }
        if self.ipv6_prefix_len > 126 {
            return Err(OptError::at("ipv6-prefixlen", "must be 0..126"));
        }
        if !self.in_net6(self.ipv6_host) {
            return Err(OptError::at(
                "ipv6-host",
                format!(
                    "{} is not inside {}/{}",
                    self.ipv6_host, self.ipv6_prefix, self.ipv6_prefix_len
                ),
            ));
        }
        if self.restrict && !self.in_net6(self.ipv6_dns) {
            return Err(OptError::at(
                "ipv6-dns",
                format!(
                    "{} is not inside {}/{} (required with restrict=on)",
                    self.ipv6_dns, self.ipv6_prefix, self.ipv6_prefix_len
                ),
            ));
        }
        // QEMU's bounds on the DHCP strings; the boot file must fit BOOTP's 128-byte
        // `file` field with its NUL (libslirp aborts on a longer one).
        for (key, v, max) in [
            ("hostname", &self.hostname, 255),
            ("domainname", &self.domainname, 255),
            ("tftp-server-name", &self.tftp_server_name, 255),
            ("bootfile", &self.bootfile, 127),
        ] {
            match v {
                Some(v) if v.len() > max => {
                    return Err(OptError::at(
                        key,
                        format!("{} bytes; at most {max} fit", v.len()),
                    ))
                }
                Some(v) if v.is_empty() && key == "domainname" => {
                    return Err(OptError::at(key, "must not be empty"))
                }
                _ => {}
            }
        }
        for d in &self.dnssearch {
            super::dhcp::check_domain(d)
                .map_err(|e| OptError::at("dnssearch", format!("'{d}': {e}")))?;
        }
        super::dhcp::check_reply_fits(self).map_err(|e| OptError::at("dnssearch", e))?;
        for f in &self.hostfwd {
            let (v6, on) = (
                f.guest.is_ipv6(),
                if f.guest.is_ipv6() {
                    self.ipv6
                } else {
                    self.ipv4
                },
            );
            if !on {
                return Err(OptError::at(
                    "hostfwd",
                    format!(
                        "forward to {} needs {}=on",
                        f.guest,
                        if v6 { "ipv6" } else { "ipv4" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Parses QEMU-style `-netdev user` options (see [`KEYS`]).
    pub fn from_opts(o: &[(String, String)]) -> Result<UserConfig, OptError> {
        opts::check_keys("user", o, KEYS)?;
        let mut c = UserConfig::default();
        let v4 = opts::get(o, "ipv4")
            .map(|v| opts::parse_bool("ipv4", v))
            .transpose()?;
        let v6 = opts::get(o, "ipv6")
            .map(|v| opts::parse_bool("ipv6", v))
            .transpose()?;
        // QEMU: naming one family `on` without the other turns the other off
        // ("ipv6=on" alone is an IPv6-only network); both absent means both on.
        c.ipv4 = v4.unwrap_or(v6 != Some(true));
        c.ipv6 = v6.unwrap_or(v4 != Some(true));
        if let Some(v) = opts::get(o, "restrict") {
            c.restrict = opts::parse_bool("restrict", v)?;
        }
        // QEMU refuses addresses for a family it was told to leave off.
        let off_keys: &[(&str, bool)] = &[
            ("net", c.ipv4),
            ("ip", c.ipv4),
            ("host", c.ipv4),
            ("dns", c.ipv4),
            ("ipv6-net", c.ipv6),
            ("ipv6-prefix", c.ipv6),
            ("ipv6-host", c.ipv6),
            ("ipv6-dns", c.ipv6),
        ];
        for (key, on) in off_keys {
            if !on && opts::get(o, key).is_some() {
                let fam = if key.starts_with("ipv6") {
                    "ipv6"
                } else {
                    "ipv4"
                };
                return Err(OptError::at(
                    key,
                    format!("{key}= given but {fam} is off (ipv4=/ipv6= name the families served)"),
                ));
            }
        }
        // `ip=ADDR` is QEMU's legacy spelling of `net=ADDR/24`; `net=` wins.
        let net = match (opts::get(o, "net"), opts::get(o, "ip")) {
            (Some(v), _) => Some(("net", v.to_string())),
            (None, Some(v)) if !v.contains('/') => Some(("ip", format!("{v}/24"))),
            (None, Some(v)) => Some(("ip", v.to_string())),
            (None, None) => None,
        };
        if let Some((key, v)) = net {
            let (net, prefix) = parse_net(key, &v)?;
            c.prefix_len = prefix;
            c.net = Ipv4Addr::from(u32::from(net) & prefix_mask(prefix));
            // QEMU ORs 0.0.2.2 / .3 / .15 into the network as far as the mask allows
            // (10.9.2.2 in 10.9.0.0/16); host bits given in net= are dropped.
            c.host = with_low_bits(c.net, prefix, 0x0202);
            c.dns = with_low_bits(c.net, prefix, 0x0203);
            c.dhcp_start = with_low_bits(c.net, prefix, 0x020f);
        }
        for (key, slot) in [
            ("host", &mut c.host),
            ("dns", &mut c.dns),
            ("dhcpstart", &mut c.dhcp_start),
        ] {
            if let Some(v) = opts::get(o, key) {
                *slot = parse_v4(key, v)?;
            }
        }
        c.hostname = opts::get(o, "hostname").map(str::to_string);
        c.domainname = opts::get(o, "domainname").map(str::to_string);
        for (k, v) in o {
            if k == "dnssearch" {
                c.dnssearch.extend(
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_string()),
                );
            }
        }
        parse_v6_opts(o, &mut c)?;
        c.tftp = opts::get(o, "tftp").map(PathBuf::from);
        c.tftp_server_name = opts::get(o, "tftp-server-name").map(str::to_string);
        c.bootfile = opts::get(o, "bootfile").map(str::to_string);
        let fwd_server = default_forward_server(c.net, c.prefix_len);
        for (k, v) in o {
            if k == "hostfwd" {
                c.hostfwd.push(parse_hostfwd(v, c.dhcp_start)?);
            } else if k == "guestfwd" {
                c.guestfwd.push(parse_guestfwd(v, fwd_server)?);
            }
        }
        c.smb = opts::get(o, "smb").map(PathBuf::from);
        c.smb_server = match opts::get(o, "smbserver") {
            Some(v) => parse_v4("smbserver", v)?,
            None => fwd_server,
        };
        c.dns_resolvers = super::dns::resolvers_from_opts(o)?;
        c.validate()?;
        Ok(c)
    }
}

fn parse_v6_opts(o: &[(String, String)], c: &mut UserConfig) -> Result<(), OptError> {
    let net_key = ["ipv6-net", "ipv6-prefix"]
        .into_iter()
        .find(|k| opts::get(o, k).is_some());
    if let Some(key) = net_key {
        let v = opts::get(o, key).unwrap_or_default();
        let (addr, len) = match v.split_once('/') {
            Some((a, l)) => (
                a,
                Some(
                    l.parse::<u8>()
                        .map_err(|_| OptError::at(key, format!("bad prefix length '{l}'")))?,
                ),
            ),
            None => (v, None),
        };
        c.ipv6_prefix = addr
            .parse()
            .map_err(|_| OptError::at(key, format!("'{addr}' is not an IPv6 address")))?;
        if let Some(l) = len {
            c.ipv6_prefix_len = l;
        }
    }
    if let Some(v) = opts::get(o, "ipv6-prefixlen") {
        c.ipv6_prefix_len = v
            .parse()
            .map_err(|_| OptError::at("ipv6-prefixlen", format!("'{v}' is not a number")))?;
    }
    // QEMU takes a prefix length of 0 as "not given": 64.
    if c.ipv6_prefix_len == 0 {
        c.ipv6_prefix_len = 64;
    }
    // QEMU ORs ::2 and ::3 into the prefix as given (host bits included).
    let or_last = |a: Ipv6Addr, b: u8| {
        let mut o = a.octets();
        o[15] |= b;
        Ipv6Addr::from(o)
    };
    c.ipv6_host = or_last(c.ipv6_prefix, 2);
    c.ipv6_dns = or_last(c.ipv6_prefix, 3);
    for (key, slot) in [
        ("ipv6-host", &mut c.ipv6_host),
        ("ipv6-dns", &mut c.ipv6_dns),
    ] {
        if let Some(v) = opts::get(o, key) {
            *slot = v
                .parse()
                .map_err(|_| OptError::at(key, format!("'{v}' is not an IPv6 address")))?;
        }
    }
    Ok(())
}

fn parse_v4(key: &str, v: &str) -> Result<Ipv4Addr, OptError> {
    v.parse()
        .map_err(|_| OptError::at(key, format!("'{v}' is not an IPv4 address")))
}

/// `addr[/prefix|/mask]`, as QEMU's `net=`: without a mask QEMU takes the address's
/// classful one (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ...), so `net=10.0.2.0` is
/// 10.0.0.0/8 and `net=192.168.76.0` 192.168.0.0/16; a prefix length is 4..32.
fn parse_net(key: &str, v: &str) -> Result<(Ipv4Addr, u8), OptError> {
    let (a, m) = match v.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (v, None),
    };
    let addr = parse_v4(key, a)?;
    let prefix = match m {
        None => classful_prefix(addr),
        Some(m) if m.contains('.') => {
            let mask = u32::from(parse_v4(key, m)?);
            let len = mask.leading_ones();
            if prefix_mask(len as u8) != mask {
                return Err(OptError::at(
                    key,
                    format!("'{m}' is not a contiguous netmask"),
                ));
            }
            len as u8
        }
        Some(m) => m
            .parse::<u8>()
            .ok()
            .filter(|l| (4..=32).contains(l))
            .ok_or_else(|| {
                OptError::at(
                    key,
                    format!("'{m}' is not a prefix length (must be in range 4-32)"),
                )
            })?,
    };
    Ok((addr, prefix))
}

/// The netmask QEMU gives a `net=` address written without one.
fn classful_prefix(a: Ipv4Addr) -> u8 {
    let a = u32::from(a);
    if a & 0x8000_0000 == 0 {
        8
    } else if a & 0xfff0_0000 == 0xac10_0000 {
        12
    } else if a & 0xc000_0000 == 0x8000_0000 || a & 0xffff_0000 == 0xc0a8_0000 {
        16
    } else if a & 0xffff_0000 == 0xc612_0000 {
        15
    } else if a & 0xe000_0000 == 0xe000_0000 {
        24
    } else {
        28
    }
}

/// Splits `s` at the colons outside brackets; `None` when the brackets do not pair up.
fn split_fields(s: &str) -> Option<Vec<&str>> {
    let mut v = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return None,
            ':' if depth == 0 => {
                v.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    v.push(&s[start..]);
    (depth == 0).then_some(v)
}

/// An address field of a forward: IPv4 as is, IPv6 in brackets (`[fec0::15]`).
fn parse_fwd_addr(a: &str) -> Result<IpAddr, String> {
    if let Some(inner) = a.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("'{inner}' is not an IPv6 address"));
    }
    a.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
        if a.parse::<Ipv6Addr>().is_ok() {
            format!("IPv6 address '{a}' must be written in brackets: [{a}]")
        } else {
            format!("'{a}' is not an IPv4 address or a bracketed IPv6 address")
        }
    })
}

/// `[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`, with IPv6 addresses in brackets
/// as libslirp writes them (`tcp:[::1]:2222-[fec0::15]:22`). An empty guest address is
/// `default_guest`; `[::]` is the guest's IPv6 address learned from its traffic.
pub fn parse_hostfwd(v: &str, default_guest: Ipv4Addr) -> Result<HostFwd, OptError> {
    let bad = |why: &str| OptError::at("hostfwd", format!("'{v}': {why}"));
    let (host_part, guest_part) = v
        .split_once('-')
        .ok_or_else(|| bad("expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport"))?;
    let fields = split_fields(host_part).unwrap_or_default();
    let (proto, haddr, hport) = match fields.as_slice() {
        [p, a, port] => (*p, *a, *port),
        [a, port] => ("tcp", *a, *port),
        _ => return Err(bad("bad host part")),
    };
    let proto = match proto {
        "" | "tcp" => FwdProto::Tcp,
        "udp" => FwdProto::Udp,
        p => return Err(bad(&format!("unknown protocol '{p}'"))),
    };
    let haddr = if haddr.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        parse_fwd_addr(haddr).map_err(|e| bad(&format!("bad host address: {e}")))?
    };
    let hport: u16 = hport.parse().map_err(|_| bad("bad host port"))?;
    let [gaddr, gport] = split_fields(guest_part).unwrap_or_default()[..] else {
        return Err(bad("bad guest part"));
    };
    let gaddr = if gaddr.is_empty() {
        IpAddr::V4(default_guest)
    } else {
        parse_fwd_addr(gaddr).map_err(|e| bad(&format!("bad guest address: {e}")))?
    };
    if let IpAddr::V6(a) = gaddr {
        if a.is_multicast() || a.is_loopback() {
            return Err(bad(
                "the guest address must be the guest's unicast address or [::]",
            ));
        }
    }
    let gport: u16 = gport
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("bad guest port"))?;
    Ok(HostFwd {
        proto,
        host: SocketAddr::new(haddr, hport),
        guest: SocketAddr::new(gaddr, gport),
    })
}

/// The old `-redir [tcp|udp]:hostport:[guestaddr]:guestport` form (host address 0.0.0.0),
/// as a [`HostFwd`].
pub fn parse_redir(v: &str, default_guest: Ipv4Addr) -> Result<HostFwd, OptError> {
    let bad = || {
        OptError::at(
            "redir",
            format!("'{v}': expected [tcp|udp]:hostport:[guestaddr]:guestport"),
        )
    };
    let f: Vec<&str> = v.split(':').collect();
    let (proto, rest) = match f.as_slice() {
        [p @ ("tcp" | "udp"), rest @ ..] => (*p, rest),
        rest => ("tcp", rest),
    };
    let [hport, gaddr, gport] = rest else {
        return Err(bad());
    };
    parse_hostfwd(&format!("{proto}::{hport}-{gaddr}:{gport}"), default_guest).map_err(|_| bad())
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
    fn defaults_are_qemus() {
        let c = UserConfig::from_opts(&[]).unwrap();
        assert_eq!(c.net, Ipv4Addr::new(10, 0, 2, 0));
        assert_eq!(c.host, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(c.dns, Ipv4Addr::new(10, 0, 2, 3));
        assert_eq!(c.dhcp_start, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.ipv6_host, "fec0::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c.info(), "net=10.0.2.0,restrict=off");
    }

    #[test]
    fn net_moves_the_defaults_and_masks_parse() {
        let c = UserConfig::from_opts(&o(&[("net", "192.168.76.0/255.255.255.0")])).unwrap();
        assert_eq!(c.host, Ipv4Addr::new(192, 168, 76, 2));
        assert_eq!(c.dhcp_start, Ipv4Addr::new(192, 168, 76, 15));
        let c = UserConfig::from_opts(&o(&[("net", "10.9.0.0/16"), ("restrict", "on")])).unwrap();
        assert_eq!(c.prefix_len, 16);
        // QEMU ORs 0.0.2.3 into the network as far as the mask allows.
        assert_eq!(c.dns, Ipv4Addr::new(10, 9, 2, 3));
        assert_eq!(c.host, Ipv4Addr::new(10, 9, 2, 2));
        assert_eq!(c.info(), "net=10.9.0.0,restrict=on");
        let e = UserConfig::from_opts(&o(&[("host", "10.0.3.2")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("host"));
        let e = UserConfig::from_opts(&o(&[("net", "10.0.2.0/255.0.255.0")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("net"));
        assert!(UserConfig::from_opts(&o(&[("bogus", "1")])).is_err());
        let c = UserConfig::from_opts(&o(&[("guestfwd", "tcp:10.0.2.100:80-cmd:cat")])).unwrap();
        assert_eq!(c.guestfwd.len(), 1);
        let e = UserConfig::from_opts(&o(&[("guestfwd", "tcp:10.0.2.2:80-cmd:cat")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("guestfwd"));
    }

    #[test]
    fn net_without_mask_is_classful_like_qemu() {
        for (net, want, prefix, host) in [
            ("10.0.2.0", "10.0.0.0", 8, "10.0.2.2"),
            ("172.20.5.0", "172.16.0.0", 12, "172.16.2.2"),
            ("192.168.76.0", "192.168.0.0", 16, "192.168.2.2"),
            ("150.1.0.0", "150.1.0.0", 16, "150.1.2.2"),
            ("198.18.7.0", "198.18.0.0", 15, "198.18.2.2"),
        ] {
            let c = UserConfig::from_opts(&o(&[("net", net)])).unwrap();
            assert_eq!(
                (c.net, c.prefix_len, c.host),
                (want.parse().unwrap(), prefix, host.parse().unwrap()),
                "net={net}"
            );
        }
        // Host bits in net= are dropped, not taken as the host (QEMU masks them off).
        let c = UserConfig::from_opts(&o(&[("net", "10.0.2.77/24")])).unwrap();
        assert_eq!(
            (c.net, c.host),
            (Ipv4Addr::new(10, 0, 2, 0), Ipv4Addr::new(10, 0, 2, 2))
        );
        // The legacy ip= is net=ADDR/24.
        let c = UserConfig::from_opts(&o(&[("ip", "10.7.7.0")])).unwrap();
        assert_eq!((c.prefix_len, c.dns), (24, Ipv4Addr::new(10, 7, 7, 3)));
        for bad in ["10.0.2.0/3", "10.0.2.0/33", "10.0.2.0/x"] {
            let e = UserConfig::from_opts(&o(&[("net", bad)])).unwrap_err();
            assert!(e.to_string().contains("4-32"), "{bad}: {e}");
        }
    }

    #[test]
    fn ipv4_and_ipv6_follow_qemus_rules() {
        let fam = |opts: &[(&str, &str)]| {
            UserConfig::from_opts(&o(opts))
                .map(|c| (c.ipv4, c.ipv6))
                .map_err(|e| e.key)
        };
        assert_eq!(fam(&[]), Ok((true, true)));
        // Naming one family on alone turns the other off.
        assert_eq!(fam(&[("ipv6", "on")]), Ok((false, true)));
        assert_eq!(fam(&[("ipv4", "on")]), Ok((true, false)));
        assert_eq!(fam(&[("ipv4", "on"), ("ipv6", "on")]), Ok((true, true)));
        assert_eq!(fam(&[("ipv4", "off")]), Ok((false, true)));
        assert_eq!(fam(&[("ipv6", "off")]), Ok((true, false)));
        assert!(fam(&[("ipv4", "off"), ("ipv6", "off")]).is_err());
        // Addresses of a family that is off are refused, naming the key.
        for (opts, key) in [
            (&[("ipv4", "off"), ("net", "10.1.0.0/16")][..], "net"),
            (&[("ipv6", "on"), ("dns", "10.0.2.3")][..], "dns"),
            (
                &[("ipv6", "off"), ("ipv6-net", "fd00::/64")][..],
                "ipv6-net",
            ),
            (&[("ipv4", "on"), ("ipv6-host", "fec0::2")][..], "ipv6-host"),
        ] {
            assert_eq!(fam(opts), Err(Some(key.to_string())), "{opts:?}");
        }
    }

    #[test]
    fn ipv6_prefix_like_qemu() {
        let c = UserConfig::from_opts(&o(&[("ipv6-net", "fd00:1::/48")])).unwrap();
        assert_eq!(c.ipv6_prefix_len, 48);
        assert_eq!(c.ipv6_host, "fd00:1::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c.ipv6_dns, "fd00:1::3".parse::<Ipv6Addr>().unwrap());
        // A length of 0 is QEMU's "not given": 64, not a prefix matching everything.
        for opts in [
            &[("ipv6-prefixlen", "0")][..],
            &[("ipv6-net", "fd00::/0")][..],
        ] {
            assert_eq!(UserConfig::from_opts(&o(opts)).unwrap().ipv6_prefix_len, 64);
        }
        let c = UserConfig::from_opts(&o(&[("ipv6-prefix", "fd00::"), ("ipv6-prefixlen", "56")]))
            .unwrap();
        assert_eq!(c.ipv6_prefix_len, 56);
        assert!(!c.v6_routable("fd00::99".parse().unwrap()));
        assert!(c.v6_routable("2001:db8::1".parse().unwrap()));
        let e = UserConfig::from_opts(&o(&[("ipv6-prefixlen", "127")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("ipv6-prefixlen"));
    }

    #[test]
    fn addresses_and_strings_are_checked_like_qemu() {
        let key = |opts: &[(&str, &str)]| UserConfig::from_opts(&o(opts)).unwrap_err().key;
        // A DNS server outside the network is allowed (NAT'ed to it) unless restrict=on.
        let c = UserConfig::from_opts(&o(&[("dns", "192.0.2.53")])).unwrap();
        assert_eq!(c.dest("192.0.2.53".parse().unwrap()), Dest::Outside);
        assert_eq!(c.dest("10.0.2.3".parse().unwrap()), Dest::Local);
        assert_eq!(
            key(&[("dns", "192.0.2.53"), ("restrict", "on")]).as_deref(),
            Some("dns")
        );
        assert_eq!(key(&[("dns", "10.0.2.2")]).as_deref(), Some("dns"));
        assert_eq!(key(&[("dns", "224.0.0.1")]).as_deref(), Some("dns"));
        assert_eq!(
            key(&[("ipv6-host", "fd00::2")]).as_deref(),
            Some("ipv6-host")
        );
        assert!(UserConfig::from_opts(&o(&[("ipv6-dns", "fd00::3")])).is_ok());
        assert_eq!(
            key(&[("ipv6-dns", "fd00::3"), ("restrict", "on")]).as_deref(),
            Some("ipv6-dns")
        );
        let long = "h".repeat(256);
        for k in ["hostname", "domainname", "tftp-server-name"] {
            assert_eq!(key(&[(k, &long)]).as_deref(), Some(k));
        }
        assert_eq!(key(&[("domainname", "")]).as_deref(), Some("domainname"));
        assert_eq!(
            key(&[("bootfile", &"b".repeat(128))]).as_deref(),
            Some("bootfile")
        );
        assert!(UserConfig::from_opts(&o(&[("bootfile", &"b".repeat(127))])).is_ok());
        let e = UserConfig::from_opts(&o(&[("dnssearch", "a..example")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dnssearch"));
        assert!(e.to_string().contains("a..example"), "{e}");
    }

    #[test]
    fn hostfwd_forms() {
        let g = Ipv4Addr::new(10, 0, 2, 15);
        let f = parse_hostfwd("tcp::2222-:22", g).unwrap();
        assert_eq!(f.proto, FwdProto::Tcp);
        assert_eq!(f.host, "0.0.0.0:2222".parse().unwrap());
        assert_eq!(f.guest, SocketAddr::new(g.into(), 22));
        let f = parse_hostfwd("udp:127.0.0.1:5555-10.0.2.20:53", g).unwrap();
        assert_eq!(f.proto, FwdProto::Udp);
        assert_eq!(f.guest, "10.0.2.20:53".parse().unwrap());
        let r = parse_redir("tcp:5555::22", g).unwrap();
        assert_eq!(
            (r.host, r.guest),
            (
                "0.0.0.0:5555".parse().unwrap(),
                SocketAddr::new(g.into(), 22)
            )
        );
        let r = parse_redir("udp:5353:10.0.2.20:53", g).unwrap();
        assert_eq!((r.proto, r.guest.port()), (FwdProto::Udp, 53));
        assert_eq!(parse_redir("2222::22", g).unwrap().proto, FwdProto::Tcp);
        assert!(parse_redir("tcp:1:2", g).is_err());
        for bad in ["sctp::1-:2", "tcp::x-:2", "tcp::1-:0", "tcp::1", ":1-:"] {
            assert!(parse_hostfwd(bad, g).is_err(), "{bad}");
        }
        let c = UserConfig::from_opts(&o(&[
            ("hostfwd", "tcp::2222-:22"),
            ("hostfwd", "udp::3333-:33"),
            ("dnssearch", "a.example"),
            ("dnssearch", "b.example"),
        ]))
        .unwrap();
        assert_eq!(c.hostfwd.len(), 2);
        assert_eq!(c.dnssearch, vec!["a.example", "b.example"]);
    }

    #[test]
    fn forward_servers_default_to_dot_4_and_must_not_collide() {
        let c =
            UserConfig::from_opts(&o(&[("smb", "/srv"), ("guestfwd", "::80-cmd:cat")])).unwrap();
        assert_eq!(c.smb.as_deref(), Some(std::path::Path::new("/srv")));
        assert_eq!(c.smb_server, Ipv4Addr::new(10, 0, 2, 4));
        assert_eq!(c.guestfwd[0].addr, "10.0.2.4:80".parse().unwrap());
        // libslirp ORs 0.0.2.4 into the network as far as the mask allows.
        let c = UserConfig::from_opts(&o(&[("net", "10.9.0.0/16"), ("guestfwd", "::80-cmd:x")]))
            .unwrap();
        assert_eq!(c.guestfwd[0].addr, "10.9.2.4:80".parse().unwrap());
        let c = UserConfig::from_opts(&o(&[("smb", "/srv"), ("smbserver", "10.0.2.9")])).unwrap();
        assert_eq!(c.smb_server, Ipv4Addr::new(10, 0, 2, 9));
        for (opts, key) in [
            (
                &[("smb", "/srv"), ("smbserver", "10.0.2.3")][..],
                "smbserver",
            ),
            (
                &[("smb", "/srv"), ("smbserver", "10.1.2.4")][..],
                "smbserver",
            ),
            (&[("smb", "/srv"), ("smbserver", "bogus")][..], "smbserver"),
            (
                &[("smb", "/srv"), ("guestfwd", "::445-cmd:x")][..],
                "smbserver",
            ),
            (
                &[
                    ("guestfwd", "::80-cmd:x"),
                    ("guestfwd", ":10.0.2.4:80-cmd:y"),
                ][..],
                "guestfwd",
            ),
        ] {
            let e = UserConfig::from_opts(&o(opts)).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{opts:?}: {e}");
        }
        // smbserver alone, without smb=, forwards nothing and is not checked further.
        assert!(UserConfig::from_opts(&o(&[("smbserver", "10.0.2.4")])).is_ok());
    }

    #[test]
    fn hostfwd_ipv6_in_brackets() {
        let g = Ipv4Addr::new(10, 0, 2, 15);
        let f = parse_hostfwd("tcp:[::1]:2222-[fec0::15]:22", g).unwrap();
        assert_eq!(f.host, "[::1]:2222".parse().unwrap());
        assert_eq!(f.guest, "[fec0::15]:22".parse().unwrap());
        // An IPv6 host side may forward to the IPv4 guest, and the other way round.
        let f = parse_hostfwd("[::]:2222-:22", g).unwrap();
        assert_eq!(
            (f.proto, f.host),
            (FwdProto::Tcp, "[::]:2222".parse().unwrap())
        );
        assert_eq!(f.guest, SocketAddr::new(g.into(), 22));
        let f = parse_hostfwd("udp:127.0.0.1:0-[::]:53", g).unwrap();
        assert_eq!(f.guest, "[::]:53".parse().unwrap());
        for (bad, why) in [
            ("tcp:::1:2222-:22", "bad host part"),
            ("tcp:[::1:2222-:22", "bad host part"),
            ("tcp:[::1]:2222-fec0::15:22", "bad guest part"),
            ("tcp:[::1]:2222-[fec0::15:22", "bad guest part"),
            ("tcp:[10.0.2.2]:2222-:22", "is not an IPv6 address"),
            ("tcp::2222-[ff02::1]:22", "unicast"),
            ("tcp::2222-[::1]:22", "unicast"),
        ] {
            let e = parse_hostfwd(bad, g).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("hostfwd"));
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = parse_fwd_addr("fec0::15").unwrap_err();
        assert!(e.contains("must be written in brackets"), "{e}");
        let e = UserConfig::from_opts(&o(&[
            ("ipv6", "off"),
            ("hostfwd", "tcp::2222-[fec0::15]:22"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("ipv6=on"), "{e}");
    }
}
