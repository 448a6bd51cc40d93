//! ICMP and ICMPv6 echo to destinations outside the virtual network.
//!
//! First choice is an unprivileged ping socket (`SOCK_DGRAM` with `IPPROTO_ICMP` or
//! `IPPROTO_ICMPV6`, allowed for both families by `net.ipv4.ping_group_range`), one per
//! guest, echo identifier and destination. When the host forbids those, a raw socket of
//! the family is used if the process may open one. When neither is possible the guest
//! gets "destination administratively prohibited" and the reason is logged once per
//! family: the fallback is visible, never a silent black hole.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use smoltcp::wire::{Icmpv4Repr, Icmpv6Repr, IpProtocol, Ipv4Packet};

use super::icmp::{unreachable_quoting, Unreachable};
use super::{Ctx, Verdict};

/// epoll token kind of a ping socket.
pub(crate) const TOKEN_PING: u64 = 5 << 32;
/// epoll token kind of the raw sockets (slot 0: ICMP, 1: ICMPv6).
pub(crate) const TOKEN_RAW: u64 = 6 << 32;
/// A ping flow (or an outstanding raw echo) with no reply for this long is dropped.
const PING_IDLE: Duration = Duration::from_secs(10);
/// Outstanding echoes tracked on the raw sockets.
const MAX_RAW_PENDING: usize = 256;
/// Replies read from one socket per readiness event.
const READS_PER_EVENT: usize = 64;

/// The IP family of an echo, and what differs between ICMP and ICMPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(a: IpAddr) -> Family {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// Index into [`PingNat::modes`] and the raw socket's token slot.
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "ICMP",
            Family::V6 => "ICMPv6",
        }
    }

    /// The type byte of an echo reply (RFC 792, RFC 4443 4.2).
    fn echo_reply_type(self) -> u8 {
        match self {
            Family::V4 => 0,
            Family::V6 => 129,
        }
    }

    fn protocol(self) -> IpProtocol {
        match self {
            Family::V4 => IpProtocol::Icmp,
            Family::V6 => IpProtocol::Icmpv6,
        }
    }

    /// Makes the kernel hand a raw socket only echo replies: a raw socket otherwise gets
    /// a copy of every ICMP (or ICMPv6, neighbour discovery included) message the host
    /// receives. Best effort: unfiltered, the replies are still picked out.
    fn filter_echo_replies(self, raw: &UdpSocket) {
        // Linux ICMP_FILTER (SOL_RAW): a 32-bit mask of types to drop. ICMP6_FILTER
        // (IPPROTO_ICMPV6): 256 bits, a set bit blocks the type (RFC 3542 3.2).
        const ICMP_FILTER: libc::c_int = 1;
        const ICMP6_FILTER: libc::c_int = 1;
        let reply = u32::from(self.echo_reply_type());
        let mut v6 = [u32::MAX; 8];
        v6[(reply >> 5) as usize] &= !(1 << (reply & 31));
        let v4 = !(1u32 << reply.min(31));
        let (level, opt, val, len) = match self {
            Family::V4 => (libc::SOL_RAW, ICMP_FILTER, (&v4 as *const u32).cast(), 4),
            Family::V6 => (libc::IPPROTO_ICMPV6, ICMP6_FILTER, v6.as_ptr().cast(), 32),
        };
        // SAFETY: val points at `len` readable bytes for the duration of the call.
        let r = unsafe { libc::setsockopt(raw.as_raw_fd(), level, opt, val, len) };
        if r != 0 {
            log::debug!(
                "user: raw {} filter not set: {}",
                self.name(),
                io::Error::last_os_error()
            );
        }
    }

    /// A non-blocking `kind` (`SOCK_DGRAM` or `SOCK_RAW`) socket of the family's ICMP.
    fn socket(self, kind: libc::c_int) -> io::Result<UdpSocket> {
        let (domain, proto) = match self {
            Family::V4 => (libc::AF_INET, libc::IPPROTO_ICMP),
            Family::V6 => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
        };
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let fd = unsafe {
            libc::socket(
                domain,
                kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                proto,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is fresh and owned by nobody else.
        Ok(UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

#[derive(Debug)]
enum Mode {
    /// Not tried yet.
    Unknown,
    Dgram,
    Raw(UdpSocket),
    Unavailable,
}

#[derive(Debug)]
struct Flow {
    guest: IpAddr,
    ident: u16,
    dst: IpAddr,
    sock: UdpSocket,
    last: Instant,
}

#[derive(Debug)]
struct RawEcho {
    guest: IpAddr,
    dst: IpAddr,
    ident: u16,
    seq: u16,
    sent: Instant,
}

/// The ICMP and ICMPv6 echo NAT.
#[derive(Debug)]
pub(crate) struct PingNat {
    /// How echoes leave the host, per [`Family::index`].
    modes: [Mode; 2],
    flows: Vec<Option<Flow>>,
    raw_pending: Vec<RawEcho>,
}

impl Default for PingNat {
    fn default() -> Self {
        PingNat {
            modes: [Mode::Unknown, Mode::Unknown],
            flows: Vec::new(),
            raw_pending: Vec::new(),
        }
    }
}

/// (identifier, sequence number, data) of an echo reply of `family` (both ICMPs lay
/// the echo out alike), or `None` for anything else.
fn echo_reply(family: Family, icmp: &[u8]) -> Option<(u16, u16, &[u8])> {
    if icmp.len() < 8 || icmp[0] != family.echo_reply_type() || icmp[1] != 0 {
        return None;
    }
    let ident = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((ident, seq, &icmp[8..]))
}

impl PingNat {
    pub fn len(&self) -> usize {
        self.flows.iter().flatten().count()
    }

    /// Decides once per family how echoes leave the host.
    fn mode(&mut self, cx: &Ctx, family: Family) -> &Mode {
        let mode = &mut self.modes[family.index()];
        if matches!(mode, Mode::Unknown) {
            let name = family.name();
            *mode = match family.socket(libc::SOCK_DGRAM) {
                Ok(_) => Mode::Dgram,
                Err(e) => match family.socket(libc::SOCK_RAW) {
                    Ok(raw) => {
                        family.filter_echo_replies(&raw);
                        log::info!(
                            "user: {name} ping sockets unavailable ({e}); using a raw socket"
                        );
                        let token = TOKEN_RAW | family.index() as u64;
                        match cx.poller.add(raw.as_raw_fd(), token, true, false) {
                            Ok(()) => Mode::Raw(raw),
                            Err(_) => Mode::Unavailable,
                        }
                    }
                    Err(_) => {
                        log::warn!(
                            "user: {name} ping sockets unavailable ({e}) and no raw socket: guest \
                             pings to the outside are answered 'administratively prohibited'; \
                             allow them with sysctl net.ipv4.ping_group_range (both families)"
                        );
                        Mode::Unavailable
                    }
                },
            };
        }
        mode
    }

    /// A guest echo request (`icmp`, the whole ICMP or ICMPv6 message) from `guest` to
    /// `dst` outside the virtual network, both of one family.
    pub fn echo(
        &mut self,
        cx: &mut Ctx,
        guest: IpAddr,
        dst: IpAddr,
        ident: u16,
        seq: u16,
        icmp: &[u8],
    ) -> Verdict {
        if cx.cfg.restrict {
            log::debug!("user: restrict=on drops ping to {dst}");
            return Verdict::Refused;
        }
        let family = Family::of(dst);
        if Family::of(guest) != family {
            return Verdict::Malformed;
        }
        // The kernel fills in the checksum (over the IPv6 pseudo-header for ICMPv6) and,
        // on a ping socket, its own identifier.
        let target = SocketAddr::new(dst, 0);
        match self.mode(cx, family) {
            Mode::Dgram => {
                let Some(id) = self.flow_for(cx, guest, ident, dst) else {
                    return Verdict::Refused;
                };
                let Some(f) = self.flows[id].as_mut() else {
                    return Verdict::Refused;
                };
                f.last = cx.now;
                if let Err(e) = f.sock.send_to(icmp, target) {
                    log::debug!("user: ping to {dst} failed: {e}");
                }
                Verdict::Handled
            }
            Mode::Raw(raw) => {
                if let Err(e) = raw.send_to(icmp, target) {
                    log::debug!("user: ping to {dst} failed: {e}");
                    return Verdict::Handled;
                }
                if self.raw_pending.len() >= MAX_RAW_PENDING {
                    self.raw_pending.remove(0);
                }
                self.raw_pending.push(RawEcho {
                    guest,
                    dst,
                    ident,
                    seq,
                    sent: cx.now,
                });
                Verdict::Handled
            }
            Mode::Unavailable | Mode::Unknown => {
                prohibited(cx, family, guest, dst, icmp);
                Verdict::Refused
            }
        }
    }

    fn flow_for(&mut self, cx: &Ctx, guest: IpAddr, ident: u16, dst: IpAddr) -> Option<usize> {
        if let Some(id) = self.flows.iter().position(|f| {
            f.as_ref()
                .is_some_and(|f| (f.guest, f.ident, f.dst) == (guest, ident, dst))
        }) {
            return Some(id);
        }
        if cx.flows >= cx.cfg.limits.max_flows {
            log::debug!("user: flow limit reached, ping to {dst} refused");
            return None;
        }
        let sock = Family::of(dst)
            .socket(libc::SOCK_DGRAM)
            .map_err(|e| log::debug!("user: ping socket failed: {e}"))
            .ok()?;
        let id = self
            .flows
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.flows.push(None);
                self.flows.len() - 1
            });
        cx.poller
            .add(sock.as_raw_fd(), TOKEN_PING | id as u64, true, false)
            .ok()?;
        self.flows[id] = Some(Flow {
            guest,
            ident,
            dst,
            sock,
            last: cx.now,
        });
        Some(id)
    }

    /// Replies arrived on a ping socket or a raw socket.
    pub fn event(&mut self, cx: &mut Ctx, token: u64, buf: &mut [u8]) {
        let slot = (token & 0xffff_ffff) as usize;
        if token & !0xffff_ffff == TOKEN_RAW {
            let family = if slot == Family::V6.index() {
                Family::V6
            } else {
                Family::V4
            };
            self.raw_event(cx, family, buf);
            return;
        }
        let Some(f) = self.flows.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        for _ in 0..READS_PER_EVENT {
            let n = match f.sock.recv_from(buf) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("user: ping socket receive failed: {e}");
                    break;
                }
            };
            f.last = cx.now;
            // The kernel put its own identifier in; give the guest back its own.
            reply_to_guest(cx, f.dst, f.guest, f.ident, &buf[..n]);
        }
    }

    fn raw_event(&mut self, cx: &mut Ctx, family: Family, buf: &mut [u8]) {
        let Mode::Raw(raw) = &self.modes[family.index()] else {
            return;
        };
        for _ in 0..READS_PER_EVENT {
            let (n, from) = match raw.recv_from(buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            };
            // A raw IPv4 socket hands over the IP header too, a raw IPv6 one only the
            // ICMPv6 message (the source is the peer address).
            let (src, icmp) = match family {
                Family::V4 => {
                    let Ok(ip) = Ipv4Packet::new_checked(&buf[..n]) else {
                        continue;
                    };
                    // new_checked ensured header_len <= total_len <= n.
                    let (hl, total) = (ip.header_len().into(), ip.total_len().into());
                    (IpAddr::V4(ip.src_addr()), &buf[hl..total])
                }
                Family::V6 => (from.ip(), &buf[..n]),
            };
            let Some((ident, seq, _)) = echo_reply(family, icmp) else {
                continue;
            };
            if let Some(i) = self
                .raw_pending
                .iter()
                .position(|e| (e.dst, e.ident, e.seq) == (src, ident, seq))
            {
                let e = self.raw_pending.swap_remove(i);
                reply_to_guest(cx, e.dst, e.guest, e.ident, icmp);
            }
        }
    }

    /// The earliest idle expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        let flows = self.flows.iter().flatten().map(|f| f.last + PING_IDLE);
        let raw = self.raw_pending.iter().map(|e| e.sent + PING_IDLE);
        flows.chain(raw).min()
    }

    /// Drops idle ping sockets and unanswered raw echoes.
    pub fn timers(&mut self, cx: &Ctx) {
        for slot in self.flows.iter_mut() {
            if slot.as_ref().is_some_and(|f| f.last + PING_IDLE <= cx.now) {
                if let Some(f) = slot.take() {
                    cx.poller.remove(f.sock.as_raw_fd());
                }
            }
        }
        self.raw_pending.retain(|e| e.sent + PING_IDLE > cx.now);
    }
}

/// Passes an echo reply (the ICMP or ICMPv6 message `icmp`) from `from` on to the guest
/// with its identifier, the checksum computed afresh (over the IPv6 pseudo-header of
/// the guest's addresses for ICMPv6).
fn reply_to_guest(cx: &mut Ctx, from: IpAddr, guest: IpAddr, ident: u16, icmp: &[u8]) {
    let Some((_, seq_no, data)) = echo_reply(Family::of(from), icmp) else {
        return;
    };
    match (from, guest) {
        (IpAddr::V4(from), IpAddr::V4(guest)) => {
            let reply = Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            };
            cx.out.icmp4(from, guest, &reply);
        }
        (IpAddr::V6(from), IpAddr::V6(guest)) => {
            let reply = Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            };
            cx.out.icmp6_routed(from, guest, &reply);
        }
        _ => {}
    }
}

/// Tells the guest its echo cannot leave the host: "administratively prohibited"
/// (ICMP code 10, ICMPv6 code 1), quoting the start of the echo.
fn prohibited(cx: &mut Ctx, family: Family, guest: IpAddr, dst: IpAddr, icmp: &[u8]) {
    let quoted = &icmp[..icmp.len().min(8)];
    let (why, proto, len) = (Unreachable::Prohibited, family.protocol(), icmp.len());
    unreachable_quoting(cx, why, proto, (guest, dst), len, quoted);
}
