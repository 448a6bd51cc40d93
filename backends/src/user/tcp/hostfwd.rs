//! `hostfwd=tcp:...`: listeners on the host whose connections are opened towards the
//! guest (our SYN, the guest's SYN-ACK).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use super::super::guestfwd::HostStream;
use super::super::{sock, Ctx};
use super::flow::{scale_for, Flow, FlowKey, State};
use super::segment::emit_syn;
use super::{TcpNat, TOKEN_LISTEN};

impl TcpNat {
    /// Adds a hostfwd listener towards `guest` (`[::]:port` for the guest's IPv6 address
    /// learned from its traffic).
    pub fn listen(&mut self, cx: &Ctx, host: SocketAddr, guest: SocketAddr) -> io::Result<()> {
        let l = std::net::TcpListener::bind(host)?;
        l.set_nonblocking(true)?;
        let token = TOKEN_LISTEN | self.listeners.len() as u64;
        cx.poller.add(l.as_raw_fd(), token, true, false)?;
        self.listeners.push((l, guest));
        Ok(())
    }

    /// The local addresses of the hostfwd listeners (useful when port 0 was asked).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    pub(super) fn accept(&mut self, cx: &mut Ctx, idx: usize) {
        for _ in 0..16 {
            let Some((l, guest)) = self.listeners.get(idx) else {
                return;
            };
            let target = *guest;
            let (stream, peer) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("user: hostfwd accept failed: {e}");
                    return;
                }
            };
            let Some(guest) = fwd_guest(cx, target) else {
                // libslirp too rejects such a connection at once.
                log::debug!("user: hostfwd to {target}: the guest's IPv6 address is not known yet");
                self.refused += 1;
                continue;
            };
            let key = FlowKey {
                guest,
                remote: SocketAddr::new(fwd_source(cx, guest.ip(), peer.ip()), peer.port()),
            };
            if cx.flows >= cx.cfg.limits.max_flows || self.index.contains_key(&key) {
                log::debug!("user: hostfwd connection from {peer} refused (flow limit)");
                self.refused += 1;
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            sock::set_keepalive(&stream);
            let iss = self.next_iss(cx.now);
            let cap = cx.cfg.limits.tcp_buffer;
            let mut flow = Flow::new(key, HostStream::Tcp(stream), peer, State::SynSent);
            flow.iss = iss;
            flow.snd_una = iss;
            flow.snd_nxt = iss.wrapping_add(1);
            flow.snd_max = flow.snd_nxt;
            flow.our_ws = scale_for(cap);
            flow.timer = Some(cx.now + flow.rtt.rto());
            flow.rtt.on_send(flow.snd_nxt, cx.now, true);
            let id = self.insert(flow);
            let f = self.flows[id].as_mut().expect("just inserted");
            emit_syn(cx, f, cap);
            cx.flows += 1;
        }
    }
}

/// The guest endpoint of a forward: as configured, or for `[::]` the guest's IPv6 address
/// learned from its traffic (`None` while unknown).
pub(crate) fn fwd_guest(cx: &Ctx, target: SocketAddr) -> Option<SocketAddr> {
    match target.ip() {
        IpAddr::V6(a) if a.is_unspecified() => cx
            .out
            .guest_v6
            .map(|g| SocketAddr::new(g.into(), target.port())),
        _ => Some(target),
    }
}

/// How a host peer of a forward appears to the guest at `guest`: itself when it is an
/// address of the guest's family that the guest can route back to us, otherwise (the
/// host itself, or the other family) the virtual host, as in libslirp.
pub(crate) fn fwd_source(cx: &Ctx, guest: IpAddr, peer: IpAddr) -> IpAddr {
    let peer = match peer {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    match (guest, peer) {
        (IpAddr::V4(_), IpAddr::V4(a)) if !a.is_loopback() && !a.is_unspecified() => a.into(),
        (IpAddr::V4(_), _) => cx.cfg.host.into(),
        (IpAddr::V6(_), IpAddr::V6(a)) if cx.cfg.v6_routable(a) => a.into(),
        (IpAddr::V6(_), _) => cx.cfg.ipv6_host.into(),
    }
}
