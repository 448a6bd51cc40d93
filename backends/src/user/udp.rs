//! UDP NAT: one host socket per guest source port, closed after an idle timeout; DNS
//! queries to the virtual DNS address are forwarded to the host's resolvers; `hostfwd=udp`
//! forwards datagrams from a host port into the guest.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use smoltcp::wire::IpProtocol;

use super::config::{loopback_like, Dest};
use super::icmp::{unreachable, Unreachable};
use super::tcp::{fwd_guest, fwd_source};
use super::{sock, Connection, Ctx, FwdProto, Verdict};

/// epoll token kind of a UDP NAT flow.
pub(crate) const TOKEN_FLOW: u64 = 3 << 32;
/// epoll token kind of a `hostfwd=udp` socket.
pub(crate) const TOKEN_FWD: u64 = 4 << 32;
/// Datagrams read from one socket per readiness event.
const READS_PER_EVENT: usize = 64;

#[derive(Debug)]
struct Flow {
    guest: SocketAddr,
    sock: UdpSocket,
    dns: bool,
    last: Instant,
    idle: Duration,
    /// The last host address the guest sent to (for the table).
    remote: SocketAddr,
    /// The address the guest sent to last; DNS answers and ICMP errors come from it.
    guest_dst: SocketAddr,
}

#[derive(Debug)]
struct Fwd {
    sock: UdpSocket,
    /// The guest endpoint (`[::]:port`: the guest's learned IPv6 address).
    guest: SocketAddr,
    /// The last host peer that sent through this forward; guest replies go there.
    peer: Option<SocketAddr>,
}

/// The UDP half of the NAT.
#[derive(Debug, Default)]
pub(crate) struct UdpNat {
    flows: Vec<Option<Flow>>,
    free: Vec<usize>,
    index: HashMap<(SocketAddr, bool), usize>,
    fwds: Vec<Fwd>,
}

/// Tells the guest its datagram from `guest` to `dst` found no listener.
fn port_unreachable(cx: &mut Ctx, guest: SocketAddr, dst: SocketAddr) {
    // The first 8 bytes of its UDP header (the length and checksum are not known any more
    // and are quoted as zero).
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&guest.port().to_be_bytes());
    quoted[2..4].copy_from_slice(&dst.port().to_be_bytes());
    unreachable(cx, Unreachable::Port, IpProtocol::Udp, guest, dst, &quoted);
}

/// How the guest at `guest` sees the host address `from`: the host's loopback is the
/// virtual host of the guest's family; `None` when the guest cannot address it.
fn guest_view(cx: &Ctx, guest: SocketAddr, from: SocketAddr) -> Option<SocketAddr> {
    let ip = match (guest.ip(), from.ip()) {
        (IpAddr::V4(_), IpAddr::V4(a)) if a.is_loopback() => cx.cfg.host.into(),
        (IpAddr::V4(_), IpAddr::V4(a)) => a.into(),
        (IpAddr::V4(_), IpAddr::V6(a)) if a.is_loopback() => cx.cfg.host.into(),
        (IpAddr::V4(_), IpAddr::V6(a)) => a.to_ipv4_mapped()?.into(),
        (IpAddr::V6(_), IpAddr::V6(a)) if a.is_loopback() => cx.cfg.ipv6_host.into(),
        (IpAddr::V6(_), IpAddr::V6(a)) if cx.cfg.v6_routable(a) => a.into(),
        (IpAddr::V6(_), IpAddr::V4(a)) if a.is_loopback() => cx.cfg.ipv6_host.into(),
        (IpAddr::V6(_), _) => return None,
    };
    Some(SocketAddr::new(ip, from.port()))
}

/// Where a guest datagram to `dst` goes on the host (`true`: it is a DNS query to the
/// virtual DNS address), or `None` when nothing serves it. A broadcast reaches the host's
/// loopback, like the gateway: the limited one as libslirp's `sotranslate_out4` sends it
/// there, and the network's directed one too (which libslirp would send out unchanged).
fn host_target(cx: &Ctx, dst: SocketAddr) -> Option<(SocketAddr, bool)> {
    let port = dst.port();
    if dst.ip() == IpAddr::V4(cx.cfg.broadcast()) || dst.ip() == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Some(((Ipv4Addr::LOCALHOST, port).into(), false));
    }
    match cx.cfg.dest(dst.ip()) {
        Dest::Host => Some((SocketAddr::new(loopback_like(dst.ip()), port), false)),
        // Only the DNS port: libslirp refuses (EPERM) anything else to the DNS address,
        // as the TCP side here does too.
        Dest::Dns if port == 53 => {
            let r = cx.cfg.dns_resolvers.first()?;
            Some((*r, true))
        }
        Dest::Dns => None,
        Dest::Local => None,
        Dest::Outside => Some((dst, false)),
    }
}

impl UdpNat {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Adds a `hostfwd=udp` socket towards `guest` (`[::]:port`: the guest's learned IPv6
    /// address).
    pub fn listen(&mut self, cx: &Ctx, host: SocketAddr, guest: SocketAddr) -> io::Result<()> {
        let sock = UdpSocket::bind(host)?;
        sock.set_nonblocking(true)?;
        let token = TOKEN_FWD | self.fwds.len() as u64;
        cx.poller.add(sock.as_raw_fd(), token, true, false)?;
        self.fwds.push(Fwd {
            sock,
            guest,
            peer: None,
        });
        Ok(())
    }

    /// The local addresses of the forward sockets.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.fwds
            .iter()
            .filter_map(|f| f.sock.local_addr().ok())
            .collect()
    }

    /// A guest datagram from `src` to `dst` (not DHCP or TFTP, which are served inside),
    /// both of one family.
    pub fn input(
        &mut self,
        cx: &mut Ctx,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Verdict {
        // A reply from the guest side of a UDP forward goes back through it, with
        // restrict=on too: QEMU documents that restrict leaves explicit forwards alone
        // (libslirp's udp_input drops these replies, checking restrict first).
        if let Some(fwd) = self.fwds.iter().find(|f| {
            fwd_guest(cx, f.guest) == Some(src)
                && f.peer.is_some_and(|p| {
                    SocketAddr::new(fwd_source(cx, src.ip(), p.ip()), p.port()) == dst
                })
        }) {
            if let Some(peer) = fwd.peer {
                if let Err(e) = fwd.sock.send_to(payload, peer) {
                    log::debug!("user: UDP forward reply to {peer} failed: {e}");
                }
            }
            return Verdict::Handled;
        }
        // libslirp's rule: with restrict=on only DHCP and TFTP (served before this) and
        // forward replies pass; DNS to the virtual DNS address is dropped too, silently.
        if cx.cfg.restrict {
            log::debug!("user: restrict=on drops UDP to {dst}");
            return Verdict::Refused;
        }
        let Some((target, dns)) = host_target(cx, dst) else {
            return Verdict::Ignored;
        };
        let Some(id) = self.flow_for(cx, src, dns, target) else {
            return Verdict::Refused;
        };
        let Some(f) = self.flows[id].as_mut() else {
            return Verdict::Refused;
        };
        f.last = cx.now;
        f.remote = target;
        f.guest_dst = dst;
        match f.sock.send_to(payload, target) {
            Ok(_) => Verdict::Handled,
            Err(e) => {
                log::debug!("user: UDP send to {target} failed: {e}");
                Verdict::Refused
            }
        }
    }

    fn flow_for(
        &mut self,
        cx: &Ctx,
        guest: SocketAddr,
        dns: bool,
        target: SocketAddr,
    ) -> Option<usize> {
        if let Some(&id) = self.index.get(&(guest, dns)) {
            let same_family = self.flows[id]
                .as_ref()
                .and_then(|f| f.sock.local_addr().ok())
                .is_some_and(|a| a.is_ipv4() == target.is_ipv4());
            if same_family {
                return Some(id);
            }
            self.remove(cx, id);
        }
        if cx.flows >= cx.cfg.limits.max_flows {
            log::debug!("user: flow limit reached, UDP from {guest} refused");
            return None;
        }
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)
            .and_then(|s| s.set_nonblocking(true).map(|_| s))
            .map_err(|e| log::debug!("user: cannot open a UDP socket: {e}"))
            .ok()?;
        sock::set_recverr(&sock);
        let id = self.free.pop().unwrap_or_else(|| {
            self.flows.push(None);
            self.flows.len() - 1
        });
        if let Err(e) = cx
            .poller
            .add(sock.as_raw_fd(), TOKEN_FLOW | id as u64, true, false)
        {
            log::debug!("user: epoll refused a UDP socket: {e}");
            self.free.push(id);
            return None;
        }
        let idle = if dns {
            cx.cfg.limits.dns_idle
        } else {
            cx.cfg.limits.udp_idle
        };
        self.flows[id] = Some(Flow {
            guest,
            sock,
            dns,
            last: cx.now,
            idle,
            remote: target,
            guest_dst: target,
        });
        self.index.insert((guest, dns), id);
        Some(id)
    }

    fn remove(&mut self, cx: &Ctx, id: usize) {
        if let Some(f) = self.flows.get_mut(id).and_then(Option::take) {
            cx.poller.remove(f.sock.as_raw_fd());
            self.index.remove(&(f.guest, f.dns));
            self.free.push(id);
        }
    }

    /// Datagrams arrived on a host socket.
    pub fn event(&mut self, cx: &mut Ctx, token: u64, error: bool, buf: &mut [u8]) {
        let slot = (token & 0xffff_ffff) as usize;
        if token & !0xffff_ffff == TOKEN_FWD {
            self.fwd_event(cx, slot, buf);
            return;
        }
        let Some(f) = self.flows.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if error {
            // A queued ICMP error keeps the socket in EPOLLERR until the queue is read.
            Self::report_errors(cx, f);
        }
        for _ in 0..READS_PER_EVENT {
            let (n, from) = match f.sock.recv_from(buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    Self::report_errors(cx, f);
                    continue;
                }
                Err(e) => {
                    // Other ICMP errors for earlier datagrams surface here; the flow lives on.
                    log::debug!("user: UDP receive for {} failed: {e}", f.guest);
                    break;
                }
            };
            f.last = cx.now;
            let src = if f.dns {
                f.guest_dst
            } else {
                match guest_view(cx, f.guest, from) {
                    Some(a) => a,
                    None => continue,
                }
            };
            cx.out.udp(src, f.guest, &buf[..n]);
        }
    }

    /// Reads the socket's ICMP errors and tells the guest about refused datagrams,
    /// naming the destination as the guest saw it.
    fn report_errors(cx: &mut Ctx, f: &Flow) {
        let _ = f.sock.take_error();
        for dst in sock::refused_destinations(&f.sock, READS_PER_EVENT) {
            let seen = if f.dns {
                Some(f.guest_dst)
            } else {
                guest_view(cx, f.guest, dst)
            };
            if let Some(seen) = seen {
                port_unreachable(cx, f.guest, seen);
            }
        }
    }

    fn fwd_event(&mut self, cx: &mut Ctx, idx: usize, buf: &mut [u8]) {
        let Some(fwd) = self.fwds.get_mut(idx) else {
            return;
        };
        for _ in 0..READS_PER_EVENT {
            let (n, from) = match fwd.sock.recv_from(buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("user: UDP forward receive failed: {e}");
                    break;
                }
            };
            let Some(guest) = fwd_guest(cx, fwd.guest) else {
                log::debug!("user: UDP forward: the guest's IPv6 address is not known yet");
                continue;
            };
            let src = SocketAddr::new(fwd_source(cx, guest.ip(), from.ip()), from.port());
            fwd.peer = Some(from);
            cx.out.udp(src, guest, &buf[..n]);
        }
    }

    /// The earliest idle timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.flows.iter().flatten().map(|f| f.last + f.idle).min()
    }

    /// Closes flows idle past their timeout.
    pub fn timers(&mut self, cx: &mut Ctx) {
        for id in 0..self.flows.len() {
            if self.flows[id]
                .as_ref()
                .is_some_and(|f| f.last + f.idle <= cx.now)
            {
                self.remove(cx, id);
            }
        }
    }

    /// The connection table rows.
    pub fn entries(&self, now: Instant) -> Vec<Connection> {
        let mut v: Vec<Connection> = self
            .fwds
            .iter()
            .filter_map(|f| {
                let host = f.sock.local_addr().ok()?;
                Some(Connection {
                    proto: FwdProto::Udp,
                    state: "HOST_FORWARD".into(),
                    guest: f.guest,
                    host,
                    source: host,
                    dest: f.guest,
                    recv_q: 0,
                    send_q: 0,
                })
            })
            .collect();
        v.extend(self.flows.iter().flatten().map(|f| Connection {
            proto: FwdProto::Udp,
            state: format!(
                "{} sec",
                (f.last + f.idle).saturating_duration_since(now).as_secs()
            ),
            guest: f.guest,
            host: f.remote,
            source: f.guest,
            dest: f.guest_dst,
            recv_q: 0,
            send_q: 0,
        }));
        v
    }
}
