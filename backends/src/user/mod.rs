//! `-netdev user`: a user-mode network in safe Rust, the role libslirp plays for QEMU.
//!
//! The guest sees a virtual network (default 10.0.2.0/24) with a gateway (.2) that is
//! also the DHCP server and reaches the host's loopback, and a DNS server (.3) that
//! forwards to the host's resolvers. Guest TCP connections and UDP flows become ordinary
//! host sockets (no privileges needed). Packets are parsed and emitted with smoltcp's
//! wire module; every guest frame is validated (lengths, checksums) before use, and every
//! rejected frame is counted in [`UserStats`].
//!
//! When the peer takes GSO frames (a tap with `vnet_hdr=on`, told through
//! [`NetBackend::set_peer_accepts_gso`]), TCP data towards the guest goes out in frames
//! of up to 64 KiB handed out by [`NetBackend::recv_gso`], cut at the guest's MSS by the
//! tap's kernel (or not at all: a receiver in the tap's namespace takes them whole);
//! [`NetBackend::recv`] still returns only ordinary frames.
//!
//! All host sockets are registered in one epoll set, exposed through
//! [`NetBackend::poll_fd`]; the event loop calls [`NetBackend::poll`] when it is readable or
//! [`NetBackend::next_deadline`] has passed, and [`NetBackend::recv`] while
//! [`NetBackend::has_pending`] is true.

mod arp;
mod config;
mod dhcp;
mod dns;
mod frag;
mod guestfwd;
mod icmp;
mod ipv6;
mod out;
mod ping;
mod poller;
mod smb;
mod sock;
mod tcp;
mod tftp;
mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::time::Instant;

use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, UdpPacket,
    DHCP_SERVER_PORT,
};

use crate::backend::{Counters, NetBackend};
use crate::opts::OptError;
use crate::queue::FrameQueue;
use crate::vnet::VirtioNetHdr;

pub use config::{parse_hostfwd, parse_redir, FwdProto, HostFwd, Limits, UserConfig, KEYS};
pub use dns::{parse_resolv_conf, system_resolvers};
pub use guestfwd::{parse_guestfwd, FwdTarget, GuestFwd};
pub use out::virtual_mac;

use dhcp::DhcpServer;
use out::Output;
use poller::{Event, Poller};
use tcp::TcpNat;
use udp::UdpNat;

/// The NAT tables, borrowed apart from [`Ctx`].
#[derive(Debug, Default)]
pub(crate) struct Nat {
    pub tcp: TcpNat,
    pub udp: UdpNat,
    pub tftp: tftp::TftpServer,
    pub ping: ping::PingNat,
}

impl Nat {
    fn flows(&self) -> usize {
        self.tcp.len() + self.udp.len() + self.ping.len()
    }
}

/// What the protocol handlers need from the backend for one call.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a UserConfig,
    /// The guest forwards in force: `guestfwd=` rules and those `smb=` adds.
    pub forwards: &'a [GuestFwd],
    pub out: &'a mut Output,
    pub poller: &'a Poller,
    pub now: Instant,
    /// Flows open now (TCP and UDP), against [`Limits::max_flows`].
    pub flows: usize,
}

/// Events taken from epoll per `poll` call.
const EVENTS_PER_POLL: usize = 256;

/// What became of one guest frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answered or forwarded.
    Handled,
    /// Well formed but nothing here serves it.
    Ignored,
    /// Failed validation (truncated, bad length, bad checksum): dropped.
    Malformed,
    /// Refused by policy or a resource bound (restrict=on, flow limit, pool exhausted).
    Refused,
}

/// Counts of what the user network did with guest frames, beyond [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserStats {
    /// Frames dropped because they failed validation.
    pub malformed: u64,
    /// Well-formed frames nothing served (unknown protocol, other destination).
    pub ignored: u64,
    /// Frames or flows refused by policy or a resource bound.
    pub refused: u64,
    /// IPv4 and IPv6 fragments received (reassembled; inconsistent ones, and those past
    /// the reassembly bounds, are also `refused`).
    pub fragments: u64,
}

/// One row of the `info usernet` connection table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// TCP or UDP.
    pub proto: FwdProto,
    /// QEMU's state word: `ESTABLISHED`, `SYN_SENT`, `HOST_FORWARD`, or for UDP the
    /// seconds left before the idle timeout (`236 sec`).
    pub state: String,
    /// The guest's address and port (`[::]:port` for a forward to the guest's learned
    /// IPv6 address).
    pub guest: SocketAddr,
    /// The host-side peer (the listening address for a `hostfwd`; for a `guestfwd` to a
    /// command or Unix socket, or `smb=`, the forward's virtual address).
    pub host: SocketAddr,
    /// `info usernet`'s Source column, oriented as libslirp orients it: the guest for a
    /// flow the guest opened; the host socket's own address for a `hostfwd` listener or
    /// a connection it accepted.
    pub source: SocketAddr,
    /// `info usernet`'s Dest. column: for a flow the guest opened, the address the guest
    /// sent to (`10.0.2.2:80` for the host's loopback, not `127.0.0.1:80`); for a
    /// `hostfwd` listener or a connection it accepted, the guest.
    pub dest: SocketAddr,
    /// Bytes from the guest not yet written to the host.
    pub recv_q: usize,
    /// Bytes from the host not yet acknowledged by the guest.
    pub send_q: usize,
}

/// The user-mode network backend. Build it from a typed [`UserConfig`] with
/// [`UserNet::new`], or from QEMU-style options with [`open`].
#[derive(Debug)]
pub struct UserNet {
    cfg: UserConfig,
    out: Output,
    dhcp: DhcpServer,
    poller: Poller,
    nat: Nat,
    reasm: frag::Reassembler,
    stats: UserStats,
    counters: Counters,
    link_up: bool,
    events: Vec<Event>,
    read_buf: Vec<u8>,
    /// `cfg.guestfwd` and the forwards of `smb`.
    forwards: Vec<GuestFwd>,
    /// The `smb=` share, kept for its `Drop` (which removes its directory); declared
    /// after `nat`, so smbd children are gone first.
    _smb: Option<smb::SmbServer>,
    /// When the next unsolicited router advertisement is due (IPv6 on).
    ra_next: Option<Instant>,
    ra_seed: u64,
    /// The host's resolv.conf, followed when `dns_resolvers` was not given.
    resolv: Option<dns::ResolvConf>,
}

/// Opens `-netdev user` from QEMU-style options (see [`KEYS`]).
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    let cfg = UserConfig::from_opts(opts)?;
    Ok(Box::new(UserNet::new(cfg).map_err(|e| {
        // The start-up errors name their option first (`tftp=DIR: ...`, `smb=: ...`,
        // `hostfwd ADDR: ...`): point at that key.
        let msg = e.to_string();
        let key = msg.split(['=', ' ']).next().unwrap_or_default();
        let msg = format!("cannot start the user network: {msg}");
        if ["tftp", "smb", "hostfwd"].contains(&key) && opts.iter().any(|(k, _)| k == key) {
            OptError::at(key, msg)
        } else {
            OptError::whole(msg)
        }
    })?))
}

impl UserNet {
    /// Starts the user network: validates `cfg`, checks the `tftp` directory, creates the
    /// epoll set, binds the `hostfwd` listeners and prepares the `smb` share (failing with
    /// "smb=: smbd not found; install samba" when Samba is missing).
    pub fn new(cfg: UserConfig) -> io::Result<UserNet> {
        cfg.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(root) = &cfg.tftp {
            tftp::check_root(root)?;
        }
        let smb = cfg.smb.as_deref().map(smb::SmbServer::start).transpose()?;
        let mut forwards = cfg.guestfwd.clone();
        if let Some(s) = &smb {
            forwards.extend(s.forwards(cfg.smb_server));
        }
        let queue = FrameQueue::with_bounds(cfg.limits.queue_frames, cfg.limits.queue_bytes);
        let now = Instant::now();
        // The RA jitter needs no secrecy, only to differ between instances.
        let mut ra_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32)
            | 1;
        let ra_next = cfg.ipv6.then(|| ipv6::next_ra(now, &mut ra_seed));
        let mut cfg = cfg;
        let resolv = cfg.dns_resolvers.is_empty().then(|| {
            let mut r = dns::ResolvConf::new(dns::RESOLV_CONF);
            cfg.dns_resolvers = r.refresh(now).unwrap_or_default();
            r
        });
        let mut n = UserNet {
            out: Output::new(queue, cfg.host),
            dhcp: DhcpServer::new(&cfg),
            poller: Poller::new()?,
            nat: Nat::default(),
            reasm: frag::Reassembler::default(),
            stats: UserStats::default(),
            counters: Counters::default(),
            link_up: true,
            events: Vec::with_capacity(EVENTS_PER_POLL),
            read_buf: vec![0; tcp::READ_CHUNK],
            forwards,
            _smb: smb,
            ra_next,
            ra_seed,
            resolv,
            cfg,
        };
        for fwd in n.cfg.hostfwd.clone() {
            let (cx, nat) = n.split(now);
            let r = match fwd.proto {
                FwdProto::Tcp => nat.tcp.listen(&cx, fwd.host, fwd.guest),
                FwdProto::Udp => nat.udp.listen(&cx, fwd.host, fwd.guest),
            };
            r.map_err(|e| io::Error::new(e.kind(), format!("hostfwd {}: {e}", fwd.host)))?;
        }
        Ok(n)
    }

    /// The context for protocol handlers, and the TCP NAT, borrowed apart.
    fn split(&mut self, now: Instant) -> (Ctx<'_>, &mut Nat) {
        let flows = self.nat.flows();
        (
            Ctx {
                cfg: &self.cfg,
                forwards: &self.forwards,
                out: &mut self.out,
                poller: &self.poller,
                now,
                flows,
            },
            &mut self.nat,
        )
    }

    /// The connection table: forwards, TCP flows and UDP flows.
    pub fn connections(&self) -> Vec<Connection> {
        let mut v = self.nat.tcp.entries();
        v.extend(self.nat.udp.entries(Instant::now()));
        v
    }

    /// The connection table in the layout of QEMU's `info usernet`.
    pub fn info_usernet(&self) -> String {
        let mut s = String::from(
            "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n",
        );
        for c in self.connections() {
            let proto = match c.proto {
                FwdProto::Tcp => "TCP",
                FwdProto::Udp => "UDP",
            };
            let head = format!("{proto}[{}]", c.state);
            // libslirp prints an unspecified source (a listener on every address) as `*`.
            let src = if c.source.ip().is_unspecified() {
                "*".to_string()
            } else {
                c.source.ip().to_string()
            };
            s.push_str(&format!(
                "  {head:<18} {:>3} {src:>15} {:>5} {:>15} {:>5} {:>5} {:>5}\n",
                "-",
                c.source.port(),
                c.dest.ip(),
                c.dest.port(),
                c.recv_q,
                c.send_q
            ));
        }
        s
    }

    /// The host addresses the `hostfwd` listeners are bound to (a port given as 0 shows
    /// the one the kernel chose).
    pub fn hostfwd_addrs(&self) -> Vec<SocketAddr> {
        let mut v = self.nat.tcp.listen_addrs();
        v.extend(self.nat.udp.listen_addrs());
        v
    }

    /// The configuration in force.
    pub fn config(&self) -> &UserConfig {
        &self.cfg
    }

    /// What happened to guest frames so far.
    pub fn stats(&self) -> UserStats {
        self.stats
    }

    fn account(&mut self, v: Verdict) {
        match v {
            Verdict::Handled => {}
            Verdict::Ignored => self.stats.ignored += 1,
            Verdict::Malformed => self.stats.malformed += 1,
            Verdict::Refused => self.stats.refused += 1,
        }
    }

    /// Handles one frame from the guest.
    fn input(&mut self, frame: &[u8], now: Instant) -> Verdict {
        if let Some(list) = self.resolv.as_mut().and_then(|r| r.refresh(now)) {
            self.cfg.dns_resolvers = list;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            log::debug!(
                "user: frame of {} bytes too short for Ethernet",
                frame.len()
            );
            return Verdict::Malformed;
        };
        let src_mac = eth.src_addr();
        if !src_mac.is_unicast() {
            log::debug!("user: frame from non-unicast source {src_mac} dropped");
            return Verdict::Malformed;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp if self.cfg.ipv4 => {
                arp::input(&self.cfg, &self.forwards, &mut self.out, eth.payload())
            }
            EthernetProtocol::Ipv4 if self.cfg.ipv4 => self.ipv4_input(src_mac, eth.payload(), now),
            EthernetProtocol::Ipv6 if self.cfg.ipv6 => self.ipv6_input(src_mac, eth.payload(), now),
            _ => Verdict::Ignored,
        }
    }

    fn ipv4_input(&mut self, src_mac: EthernetAddress, payload: &[u8], now: Instant) -> Verdict {
        let Ok(pkt) = Ipv4Packet::new_checked(payload) else {
            log::debug!("user: IPv4 header truncated or lengths inconsistent");
            return Verdict::Malformed;
        };
        if pkt.version() != 4 || !pkt.verify_checksum() {
            log::debug!("user: IPv4 packet with bad version or header checksum dropped");
            return Verdict::Malformed;
        }
        let whole;
        let data = if pkt.more_frags() || pkt.frag_offset() != 0 {
            self.stats.fragments += 1;
            match self.reasm.add(&pkt, now) {
                frag::Outcome::Complete(_, v) => {
                    whole = v;
                    &whole[..]
                }
                frag::Outcome::Pending => return Verdict::Handled,
                frag::Outcome::Dropped => return Verdict::Refused,
            }
        } else {
            pkt.payload()
        };
        let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
        if self.cfg.in_net(src) && src != self.cfg.host && src != self.cfg.dns {
            self.out.learn(src, src_mac);
        } else if !src.is_unspecified() {
            log::debug!("user: IPv4 from {src}, outside the virtual network, dropped");
            return Verdict::Ignored;
        }
        match pkt.next_header() {
            IpProtocol::Udp => self.udp_input(src, dst, data, now),
            IpProtocol::Icmp => {
                let (mut cx, nat) = self.split(now);
                icmp::input(&mut cx, &mut nat.ping, src, dst, data)
            }
            IpProtocol::Tcp => {
                let (mut cx, nat) = self.split(now);
                nat.tcp.input(&mut cx, src.into(), dst.into(), data)
            }
            _ => Verdict::Ignored,
        }
    }

    fn ipv6_input(&mut self, src_mac: EthernetAddress, payload: &[u8], now: Instant) -> Verdict {
        let ip = match ipv6::parse(payload) {
            Ok(ip) => ip,
            Err(v) => return v,
        };
        let (src, dst) = (ip.src, ip.dst);
        let link_local = config::is_link_local(src);
        let ours = self.cfg.is_v6_host(src) || src == self.cfg.ipv6_dns;
        if src.is_multicast() || ours {
            log::debug!("user: IPv6 from {src} (multicast or a virtual host's) dropped");
            return Verdict::Malformed;
        }
        if self.cfg.in_net6(src) || link_local {
            self.out.learn6(src, src_mac, self.cfg.in_net6(src));
        } else if !src.is_unspecified() {
            log::debug!("user: IPv6 from {src}, outside the virtual network, dropped");
            return Verdict::Ignored;
        }
        let whole;
        let ip = match ip.fragment {
            None => ip,
            Some(frag) => {
                self.stats.fragments += 1;
                let (nh, addrs) = (u8::from(ip.proto), (src, dst));
                match self.reasm.add6(addrs, frag, nh, ip.data, now) {
                    frag::Outcome::Complete(nh, v) => {
                        whole = v;
                        match ipv6::reassembled(&ip, nh, &whole) {
                            Ok(p) => p,
                            Err(v) => return v,
                        }
                    }
                    frag::Outcome::Pending => return Verdict::Handled,
                    frag::Outcome::Dropped => return Verdict::Refused,
                }
            }
        };
        match ip.proto {
            IpProtocol::Icmpv6 => {
                let (mut cx, nat) = self.split(now);
                ipv6::icmp6(&mut cx, &mut nat.ping, src_mac, &ip)
            }
            IpProtocol::Udp => self.udp6_input(src_mac, src, dst, ip.data, now),
            IpProtocol::Tcp => {
                let (mut cx, nat) = self.split(now);
                nat.tcp.input(&mut cx, src.into(), dst.into(), ip.data)
            }
            _ => Verdict::Ignored,
        }
    }

    fn udp6_input(
        &mut self,
        src_mac: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        data: &[u8],
        now: Instant,
    ) -> Verdict {
        let Ok(udp) = UdpPacket::new_checked(data) else {
            log::debug!("user: UDP/IPv6 header truncated or length field inconsistent");
            return Verdict::Malformed;
        };
        // A zero UDP checksum is not allowed over IPv6 (RFC 8200 8.1).
        if udp.checksum() == 0 || !udp.verify_checksum(&src.into(), &dst.into()) {
            log::debug!("user: UDP/IPv6 checksum bad or zero, datagram dropped");
            return Verdict::Malformed;
        }
        if src.is_unspecified() {
            return Verdict::Ignored;
        }
        if udp.dst_port() == ipv6::DHCP6_SERVER_PORT {
            let o = &mut self.out;
            return ipv6::dhcp6(&self.cfg, o, src_mac, udp.payload(), src, udp.src_port());
        }
        let (src, dst) = (
            SocketAddr::new(src.into(), udp.src_port()),
            SocketAddr::new(dst.into(), udp.dst_port()),
        );
        let (mut cx, nat) = self.split(now);
        if dst.port() == tftp::PORT && dst.ip() == IpAddr::V6(cx.cfg.ipv6_host) {
            return nat.tftp.input(&mut cx, dst.ip(), src, udp.payload());
        }
        nat.udp.input(&mut cx, src, dst, udp.payload())
    }

    /// Sends the periodic router advertisement when due, to all nodes.
    fn ra_timer(&mut self, now: Instant) {
        let Some(due) = self.ra_next else {
            return;
        };
        if due > now {
            return;
        }
        self.ra_next = Some(ipv6::next_ra(now, &mut self.ra_seed));
        if self.link_up {
            let all = ipv6::ALL_NODES;
            ipv6::router_advert(&self.cfg, &mut self.out, all, out::multicast_mac(all));
        }
    }

    fn udp_input(&mut self, src: Ipv4Addr, dst: Ipv4Addr, data: &[u8], now: Instant) -> Verdict {
        let Ok(udp) = UdpPacket::new_checked(data) else {
            log::debug!("user: UDP header truncated or length field inconsistent");
            return Verdict::Malformed;
        };
        if udp.checksum() != 0 && !udp.verify_checksum(&src.into(), &dst.into()) {
            log::debug!("user: UDP checksum bad, datagram dropped");
            return Verdict::Malformed;
        }
        let to_gateway = dst == self.cfg.host || dst.is_broadcast() || dst == self.cfg.broadcast();
        if udp.dst_port() == DHCP_SERVER_PORT && to_gateway {
            return self
                .dhcp
                .input(&self.cfg, &mut self.out, udp.payload(), now);
        }
        let (src, dst) = (
            SocketAddrV4::new(src, udp.src_port()),
            SocketAddrV4::new(dst, udp.dst_port()),
        );
        let (mut cx, nat) = self.split(now);
        if dst.port() == tftp::PORT && *dst.ip() == cx.cfg.host {
            let server = cx.cfg.host.into();
            return nat.tftp.input(&mut cx, server, src.into(), udp.payload());
        }
        nat.udp
            .input(&mut cx, src.into(), dst.into(), udp.payload())
    }
}

impl UserNet {
    /// The next frame for the guest after owed ACKs went out; whole with its header when
    /// `gso` (a GSO frame), else always an ordinary frame.
    fn take(&mut self, buf: &mut [u8], gso: bool) -> Option<(VirtioNetHdr, usize)> {
        if self.nat.tcp.has_output() {
            let (mut cx, nat) = self.split(Instant::now());
            nat.tcp.flush_all(&mut cx);
        }
        let got = if gso {
            self.out.queue.pop_gso_into(buf)
        } else {
            let n = self.out.queue.pop_into(buf);
            n.map(|n| (VirtioNetHdr::default(), n))
        };
        if let Some((_, n)) = got {
            self.counters.count_received(n);
        }
        got
    }
}

impl NetBackend for UserNet {
    fn kind(&self) -> &'static str {
        "user"
    }

    fn info(&self) -> String {
        self.cfg.info()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.counters.count_sent(frame.len());
        if !self.link_up {
            self.counters.count_drop();
            return Ok(());
        }
        let v = self.input(frame, Instant::now());
        self.account(v);
        if self.nat.tcp.has_output() {
            // ACKs and host writes wait for the end of the burst: make sure `poll` runs.
            self.poller.kick();
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.take(buf, false).map(|(_, n)| n))
    }

    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        Ok(self.take(buf, true))
    }

    fn set_peer_accepts_gso(&mut self, on: bool) {
        self.out.gso = on;
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.poller.fd())
    }

    fn has_pending(&self) -> bool {
        !self.out.queue.is_empty() || self.nat.tcp.has_output()
    }

    fn link_up(&self) -> bool {
        self.link_up
    }

    fn set_link(&mut self, up: bool) {
        self.link_up = up;
    }

    fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.dropped += self.out.queue.dropped() + self.out.lost + self.stats.malformed;
        c
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.nat.tcp.next_deadline(),
            self.nat.udp.next_deadline(),
            self.nat.tftp.next_deadline(),
            self.nat.ping.next_deadline(),
            self.reasm.next_deadline(),
            self.ra_next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll(&mut self, now: Instant) -> io::Result<()> {
        let mut events = std::mem::take(&mut self.events);
        let mut buf = std::mem::take(&mut self.read_buf);
        let r = self.poller.ready(&mut events, EVENTS_PER_POLL);
        self.poller.clear_kick();
        for ev in &events {
            let (mut cx, nat) = self.split(now);
            match ev.token & !0xffff_ffff {
                tcp::TOKEN_FLOW | tcp::TOKEN_LISTEN => {
                    nat.tcp
                        .event(&mut cx, ev.token, ev.writable, ev.error, &mut buf)
                }
                udp::TOKEN_FLOW | udp::TOKEN_FWD => {
                    nat.udp.event(&mut cx, ev.token, ev.error, &mut buf)
                }
                ping::TOKEN_PING | ping::TOKEN_RAW => nat.ping.event(&mut cx, ev.token, &mut buf),
                _ => {}
            }
        }
        self.reasm.expire(now);
        self.ra_timer(now);
        let (mut cx, nat) = self.split(now);
        nat.tcp.timers(&mut cx);
        nat.udp.timers(&mut cx);
        nat.tftp.timers(now);
        nat.ping.timers(&cx);
        nat.tcp.flush_all(&mut cx);
        self.events = events;
        self.read_buf = buf;
        r
    }
}
