//! ICMP echo to destinations outside the virtual network.
//!
//! First choice is an unprivileged ping socket (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed by
//! `net.ipv4.ping_group_range`), one per guest echo identifier and destination. When the
//! host forbids those, a raw ICMP socket is used if the process may open one. When
//! neither is possible the guest gets "destination host administratively prohibited"
//! and the reason is logged once: the fallback is visible, never a silent black hole.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};

use super::{Ctx, Verdict};

/// epoll token kind of a ping socket.
pub(crate) const TOKEN_PING: u64 = 5 << 32;
/// epoll token of the shared raw ICMP socket.
pub(crate) const TOKEN_RAW: u64 = 6 << 32;
/// A ping flow (or an outstanding raw echo) with no reply for this long is dropped.
const PING_IDLE: Duration = Duration::from_secs(10);
/// Outstanding echoes tracked on the raw socket.
const MAX_RAW_PENDING: usize = 256;

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
    guest: Ipv4Addr,
    ident: u16,
    dst: Ipv4Addr,
    sock: UdpSocket,
    last: Instant,
}

#[derive(Debug)]
struct RawEcho {
    guest: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    sent: Instant,
}

/// The ICMP echo NAT.
#[derive(Debug)]
pub(crate) struct PingNat {
    mode: Mode,
    flows: Vec<Option<Flow>>,
    raw_pending: Vec<RawEcho>,
}

impl Default for PingNat {
    fn default() -> Self {
        PingNat {
            mode: Mode::Unknown,
            flows: Vec::new(),
            raw_pending: Vec::new(),
        }
    }
}

fn icmp_socket(kind: libc::c_int) -> io::Result<UdpSocket> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

impl PingNat {
    pub fn len(&self) -> usize {
        self.flows.iter().flatten().count()
    }

    /// Decides once how echoes leave the host.
    fn mode(&mut self, cx: &Ctx) -> &Mode {
        if matches!(self.mode, Mode::Unknown) {
            self.mode = match icmp_socket(libc::SOCK_DGRAM) {
                Ok(_) => Mode::Dgram,
                Err(e) => match icmp_socket(libc::SOCK_RAW) {
                    Ok(raw) => {
                        log::info!("user: ping sockets unavailable ({e}); using a raw ICMP socket");
                        match cx.poller.add(raw.as_raw_fd(), TOKEN_RAW, true, false) {
                            Ok(()) => Mode::Raw(raw),
                            Err(_) => Mode::Unavailable,
                        }
                    }
                    Err(_) => {
                        log::warn!(
                            "user: ping sockets unavailable ({e}): guest pings to the outside \
                             are answered 'administratively prohibited'; allow them with \
                             sysctl net.ipv4.ping_group_range"
                        );
                        Mode::Unavailable
                    }
                },
            };
        }
        &self.mode
    }

    /// A guest echo request to `dst` outside the virtual network.
    pub fn echo(
        &mut self,
        cx: &mut Ctx,
        guest: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
        seq: u16,
        icmp: &[u8],
    ) -> Verdict {
        if cx.cfg.restrict {
            log::debug!("user: restrict=on drops ping to {dst}");
            return Verdict::Refused;
        }
        let target = SocketAddr::V4(SocketAddrV4::new(dst, 0));
        match self.mode(cx) {
            Mode::Dgram => {
                let Some(id) = self.flow_for(cx, guest, ident, dst) else {
                    return Verdict::Refused;
                };
                let f = self.flows[id].as_mut().expect("flow_for returned it");
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
                prohibited(cx, guest, dst, icmp);
                Verdict::Refused
            }
        }
    }

    fn flow_for(&mut self, cx: &Ctx, guest: Ipv4Addr, ident: u16, dst: Ipv4Addr) -> Option<usize> {
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
        let sock = icmp_socket(libc::SOCK_DGRAM)
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

    /// Replies arrived on a ping socket or the raw socket.
    pub fn event(&mut self, cx: &mut Ctx, token: u64, buf: &mut [u8]) {
        if token == TOKEN_RAW {
            self.raw_event(cx, buf);
            return;
        }
        let slot = (token & 0xffff_ffff) as usize;
        let Some(f) = self.flows.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        for _ in 0..64 {
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

    fn raw_event(&mut self, cx: &mut Ctx, buf: &mut [u8]) {
        let Mode::Raw(raw) = &self.mode else {
            return;
        };
        for _ in 0..64 {
            let n = match raw.recv_from(buf) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            };
            let Ok(ip) = Ipv4Packet::new_checked(&buf[..n]) else {
                continue;
            };
            let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                continue;
            };
            if icmp.msg_type() != Icmpv4Message::EchoReply {
                continue;
            }
            let key = (ip.src_addr(), icmp.echo_ident(), icmp.echo_seq_no());
            if let Some(i) = self
                .raw_pending
                .iter()
                .position(|e| (e.dst, e.ident, e.seq) == key)
            {
                let e = self.raw_pending.swap_remove(i);
                reply_to_guest(cx, e.dst, e.guest, e.ident, ip.payload());
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

/// Passes an echo reply (ICMP message bytes) on to the guest with its identifier.
fn reply_to_guest(cx: &mut Ctx, from: Ipv4Addr, guest: Ipv4Addr, ident: u16, icmp: &[u8]) {
    let Ok(pkt) = Icmpv4Packet::new_checked(icmp) else {
        return;
    };
    if pkt.msg_type() != Icmpv4Message::EchoReply {
        return;
    }
    let reply = Icmpv4Repr::EchoReply {
        ident,
        seq_no: pkt.echo_seq_no(),
        data: pkt.data(),
    };
    cx.out.icmp4(from, guest, &reply);
}

/// Tells the guest its echo cannot leave the host.
fn prohibited(cx: &mut Ctx, guest: Ipv4Addr, dst: Ipv4Addr, icmp: &[u8]) {
    let header = Ipv4Repr {
        src_addr: guest,
        dst_addr: dst,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.len(),
        hop_limit: 64,
    };
    let repr = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::HostProhibited,
        header,
        data: &icmp[..icmp.len().min(8)],
    };
    cx.out.icmp4(cx.cfg.host, guest, &repr);
}
