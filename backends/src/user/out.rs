//! Frames towards the guest: Ethernet/IP framing, checksums, the guest's MAC addresses
//! and the bounded queue the device drains through `recv`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscRepr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber, UdpPacket, UdpRepr,
};

use super::ipv6::ROUTER_LINK_LOCAL;

use crate::gso;
use crate::queue::FrameQueue;

const ETH_HDR: usize = 14;
const IPV4_HDR: usize = 20;
const IPV6_HDR: usize = 40;
/// Size of the IPv6 Fragment extension header (RFC 8200 4.5).
const IPV6_FRAG_HDR: usize = 8;
/// The guest's MTU: QEMU's user network and every emulated NIC here use Ethernet's 1500.
pub(crate) const MTU: usize = 1500;
/// Addresses remembered for the guest side (the guest is usually one host), per family.
const ARP_CACHE: usize = 64;
/// Frames held while their destination's MAC is being resolved.
const HELD_FRAMES: usize = 32;
/// TTL / hop limit of packets the virtual hosts originate.
pub(crate) const TTL: u8 = 64;
/// The largest IP packet (IPv4 total length, IPv6 header + payload length).
const IP_MAX: usize = 65535;
/// The most TCP payload one GSO frame carries, whatever the family (IP_MAX less an IPv6
/// header and a TCP header).
pub(crate) const GSO_MAX_PAYLOAD: usize = IP_MAX - IPV6_HDR - 20;

/// The MAC address libslirp gives a virtual host: 52:55 followed by its IPv4 address.
pub fn virtual_mac(ip: Ipv4Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x52, 0x55, o[0], o[1], o[2], o[3]])
}

/// Where frames for the guest go, and what is known about the guest's addresses.
#[derive(Debug)]
pub(crate) struct Output {
    pub queue: FrameQueue,
    /// The gateway's MAC: source of everything routed from outside.
    pub gw_mac: EthernetAddress,
    /// The gateway's IPv4 address: sender of ARP requests.
    pub gw_ip: Ipv4Addr,
    arp: VecDeque<(Ipv4Addr, EthernetAddress)>,
    /// IPv6 neighbour cache of the guest side, learned from its packets and NDP.
    ndp: VecDeque<(Ipv6Addr, EthernetAddress)>,
    /// The last unicast MAC the guest sent from.
    pub guest_mac: Option<EthernetAddress>,
    /// The guest's address inside `ipv6-net` seen last (its SLAAC address, learned from
    /// duplicate address detection or its traffic): where `hostfwd` to `[::]` goes.
    pub guest_v6: Option<Ipv6Addr>,
    held: VecDeque<(IpAddr, Vec<u8>)>,
    /// Frames lost before reaching the queue (ARP/NDP hold overflow, unroutable).
    pub lost: u64,
    /// IPv4 identification of the last fragmented datagram.
    ident: u16,
    /// IPv6 fragment identification of the last fragmented packet.
    ident6: u32,
    scratch: Vec<u8>,
    caps: ChecksumCapabilities,
    /// The peer takes GSO frames ([`crate::NetBackend::set_peer_accepts_gso`]): TCP data
    /// may go out as one frame of up to 64 KiB ([`Output::tcp_gso`]).
    pub gso: bool,
}

impl Output {
    pub fn new(queue: FrameQueue, gw_ip: Ipv4Addr) -> Self {
        Output {
            queue,
            gw_mac: virtual_mac(gw_ip),
            gw_ip,
            arp: VecDeque::new(),
            ndp: VecDeque::new(),
            guest_mac: None,
            guest_v6: None,
            held: VecDeque::new(),
            lost: 0,
            ident: 0,
            ident6: 0,
            scratch: Vec::new(),
            caps: ChecksumCapabilities::default(),
            gso: false,
        }
    }

    /// Remembers that `ip` is at `mac` and sends frames that waited for it.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        if !mac.is_unicast() || ip.is_unspecified() || ip.is_broadcast() {
            return;
        }
        self.guest_mac = Some(mac);
        remember(&mut self.arp, ip, mac);
        self.release(ip.into(), mac);
    }

    /// Remembers that the guest's IPv6 address `ip` is at `mac` (`in_prefix`: inside
    /// `ipv6-net`, so a candidate for [`Output::guest_v6`]) and sends frames that waited.
    pub fn learn6(&mut self, ip: Ipv6Addr, mac: EthernetAddress, in_prefix: bool) {
        if !mac.is_unicast() || ip.is_unspecified() || ip.is_multicast() {
            return;
        }
        self.guest_mac = Some(mac);
        if in_prefix {
            self.guest_v6 = Some(ip);
        }
        remember(&mut self.ndp, ip, mac);
        self.release(ip.into(), mac);
    }

    /// Queues the frames held for `ip`, now that it is known to be at `mac`.
    fn release(&mut self, ip: IpAddr, mac: EthernetAddress) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 == ip {
                if let Some((_, mut f)) = self.held.remove(i) {
                    f[0..6].copy_from_slice(mac.as_bytes());
                    self.queue.push(&f);
                }
            } else {
                i += 1;
            }
        }
    }

    /// The MAC known for `ip`, if any.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        find(&self.arp, ip)
    }

    /// The MAC known for the guest's IPv6 address `ip`, if any.
    pub fn lookup6(&self, ip: Ipv6Addr) -> Option<EthernetAddress> {
        find(&self.ndp, ip)
    }

    /// Emits an ARP packet from the gateway's MAC.
    pub fn arp(&mut self, repr: &ArpRepr, dst_mac: EthernetAddress, src_mac: EthernetAddress) {
        let len = ETH_HDR + repr.buffer_len();
        let buf = self.frame_buf(len);
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut eth);
        repr.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
        self.push_scratch();
    }

    fn frame_buf(&mut self, len: usize) -> &mut Vec<u8> {
        self.scratch.clear();
        // Pad to the Ethernet minimum: some NIC models and drivers expect it.
        self.scratch.resize(len.max(crate::MIN_FRAME_LEN), 0);
        &mut self.scratch
    }

    fn push_scratch(&mut self) {
        let f = std::mem::take(&mut self.scratch);
        self.queue.push(&f);
        self.scratch = f;
    }

    /// Emits an IPv4 packet from a virtual host: `payload_len` bytes after the IP header,
    /// written by `fill`. `dst_mac` overrides the ARP lookup (DHCP replies before the
    /// guest has an address).
    fn ipv4(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: IpProtocol,
        payload_len: usize,
        dst_mac: Option<EthernetAddress>,
        fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
    ) {
        let caps = self.caps.clone();
        let src_mac = self.src_mac4(src, dst);
        let resolved = if dst.is_broadcast() {
            Some(EthernetAddress::BROADCAST)
        } else {
            dst_mac.or_else(|| self.lookup(dst))
        };
        let eth = EthernetRepr {
            src_addr: src_mac,
            dst_addr: resolved.unwrap_or(EthernetAddress::BROADCAST),
            ethertype: EthernetProtocol::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: proto,
            payload_len,
            hop_limit: TTL,
        };
        if IPV4_HDR + payload_len <= MTU {
            let buf = self.frame_buf(ETH_HDR + IPV4_HDR + payload_len);
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut pkt = Ipv4Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut pkt, &caps);
            fill(&mut pkt.payload_mut()[..payload_len], &caps);
            self.finish(resolved.is_some(), dst.into());
            return;
        }
        // Larger than the guest's MTU (a big UDP answer): IPv4 fragments, as a router
        // would send them; the guest reassembles.
        let mut whole = vec![0u8; payload_len];
        fill(&mut whole, &caps);
        self.ident = self.ident.wrapping_add(1);
        let ident = self.ident;
        let per_frag = (MTU - IPV4_HDR) & !7;
        for (k, chunk) in whole.chunks(per_frag).enumerate() {
            let off = k * per_frag;
            let buf = self.frame_buf(ETH_HDR + IPV4_HDR + chunk.len());
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut pkt = Ipv4Packet::new_unchecked(frame.payload_mut());
            Ipv4Repr {
                payload_len: chunk.len(),
                ..ip
            }
            .emit(&mut pkt, &caps);
            pkt.set_ident(ident);
            pkt.set_dont_frag(false);
            pkt.set_more_frags(off + chunk.len() < payload_len);
            pkt.set_frag_offset(off as u16);
            pkt.fill_checksum();
            pkt.payload_mut()[..chunk.len()].copy_from_slice(chunk);
            self.finish(resolved.is_some(), dst.into());
        }
    }

    /// The source MAC of an IPv4 packet from virtual host `src`: the gateway's for its
    /// own packets and broadcasts, else the virtual host's own.
    fn src_mac4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> EthernetAddress {
        if src == self.gw_ip || dst.is_broadcast() {
            self.gw_mac
        } else {
            virtual_mac(src)
        }
    }

    /// Queues the frame in `scratch`, or holds it until `dst`'s MAC is known.
    fn finish(&mut self, resolved: bool, dst: IpAddr) {
        if resolved {
            self.push_scratch();
        } else {
            self.hold(dst);
        }
    }

    /// Keeps the frame in `scratch` until `dst` answers an ARP request or a neighbour
    /// solicitation.
    fn hold(&mut self, dst: IpAddr) {
        if self.held.len() >= HELD_FRAMES {
            self.held.pop_front();
            log::debug!("user: ARP/NDP hold queue full, oldest frame dropped");
            self.queue_drop();
        }
        let f = self.scratch.clone();
        self.held.push_back((dst, f));
        match dst {
            IpAddr::V4(dst) => {
                let req = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr: self.gw_mac,
                    source_protocol_addr: self.gw_ip,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: dst,
                };
                self.arp(&req, EthernetAddress::BROADCAST, self.gw_mac);
            }
            IpAddr::V6(dst) => {
                // RFC 4861 7.2.2: to the target's solicited-node multicast address.
                let o = dst.octets();
                let snm = Ipv6Addr::from([
                    0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
                ]);
                let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: dst,
                    lladdr: Some(self.gw_mac.into()),
                });
                self.icmp6(ROUTER_LINK_LOCAL, snm, multicast_mac(snm), &ns);
            }
        }
    }

    fn queue_drop(&mut self) {
        self.lost += 1;
    }

    /// Emits a UDP datagram.
    pub fn udp4(
        &mut self,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        payload: &[u8],
        dst_mac: Option<EthernetAddress>,
    ) {
        let repr = UdpRepr {
            src_port: src.1,
            dst_port: dst.1,
        };
        let len = repr.header_len() + payload.len();
        self.ipv4(src.0, dst.0, IpProtocol::Udp, len, dst_mac, |b, caps| {
            repr.emit(
                &mut UdpPacket::new_unchecked(b),
                &IpAddress::Ipv4(src.0),
                &IpAddress::Ipv4(dst.0),
                payload.len(),
                |p| p.copy_from_slice(payload),
                caps,
            )
        });
    }

    /// Emits a UDP datagram whose payload `fill` writes in place (DHCP, TFTP).
    pub fn udp4_with(
        &mut self,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        payload_len: usize,
        dst_mac: Option<EthernetAddress>,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let repr = UdpRepr {
            src_port: src.1,
            dst_port: dst.1,
        };
        let len = repr.header_len() + payload_len;
        self.ipv4(src.0, dst.0, IpProtocol::Udp, len, dst_mac, |b, caps| {
            repr.emit(
                &mut UdpPacket::new_unchecked(b),
                &IpAddress::Ipv4(src.0),
                &IpAddress::Ipv4(dst.0),
                payload_len,
                fill,
                caps,
            )
        });
    }

    /// Emits a UDP datagram over IPv4 or IPv6 (both addresses of one family).
    pub fn udp(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                self.udp4((*s.ip(), s.port()), (*d.ip(), d.port()), payload, None)
            }
            (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                let repr = UdpRepr {
                    src_port: s.port(),
                    dst_port: d.port(),
                };
                let (si, di) = (*s.ip(), *d.ip());
                let len = repr.header_len() + payload.len();
                self.ipv6_routed(si, di, IpProtocol::Udp, len, |b, caps| {
                    repr.emit(
                        &mut UdpPacket::new_unchecked(b),
                        &IpAddress::Ipv6(si),
                        &IpAddress::Ipv6(di),
                        payload.len(),
                        |p| p.copy_from_slice(payload),
                        caps,
                    )
                });
            }
            _ => self.family_mismatch(),
        }
    }

    /// Emits a TCP segment over IPv4 or IPv6 (both addresses of one family); the
    /// checksum covers the family's pseudo-header.
    pub fn tcp(&mut self, src: IpAddr, dst: IpAddr, repr: &TcpRepr) {
        let len = repr.buffer_len();
        let fill = |b: &mut [u8], caps: &ChecksumCapabilities| {
            repr.emit(
                &mut TcpPacket::new_unchecked(b),
                &src.into(),
                &dst.into(),
                caps,
            )
        };
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.ipv4(s, d, IpProtocol::Tcp, len, None, fill),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.ipv6_routed(s, d, IpProtocol::Tcp, len, fill),
            _ => self.family_mismatch(),
        }
    }

    /// Emits a TCP segment whose payload is longer than `mss` as one GSO frame
    /// ([`crate::gso`]): the whole payload behind one set of headers (IP length covering
    /// it, TCP checksum holding the pseudo-header sum), queued with the virtio-net header
    /// that asks for it to be cut at `mss`. The frames it stands for are exactly those
    /// [`Output::tcp`] would have sent for each `mss`-byte piece (PSH or FIN on the last
    /// only). When the guest's MAC is not known yet (the frame would have to wait for
    /// ARP/NDP) or the packet would not fit IP's length field, the pieces are sent as
    /// ordinary frames instead.
    pub fn tcp_gso(&mut self, src: IpAddr, dst: IpAddr, repr: &TcpRepr, mss: usize) {
        let tcp_len = repr.buffer_len();
        let (ip_hdr, ethertype, src_mac, mac) = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) if !d.is_broadcast() => (
                IPV4_HDR,
                EthernetProtocol::Ipv4,
                self.src_mac4(s, d),
                self.lookup(d),
            ),
            (IpAddr::V6(_), IpAddr::V6(d)) if !d.is_multicast() => (
                IPV6_HDR,
                EthernetProtocol::Ipv6,
                self.gw_mac,
                self.lookup6(d),
            ),
            _ => (0, EthernetProtocol::Unknown(0), self.gw_mac, None),
        };
        let (Some(dst_mac), Ok(gso_size)) = (mac, u16::try_from(mss)) else {
            return self.tcp_split(src, dst, repr, mss);
        };
        if ip_hdr + tcp_len > IP_MAX || gso_size == 0 {
            return self.tcp_split(src, dst, repr, mss);
        }
        let caps = self.caps.clone();
        // The TCP checksum is left to whoever cuts the frame (the pseudo-header sum
        // goes in its place).
        let mut tcp_caps = self.caps.clone();
        tcp_caps.tcp = Checksum::None;
        let buf = self.frame_buf(ETH_HDR + ip_hdr + tcp_len);
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype,
        }
        .emit(&mut frame);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_len,
                hop_limit: TTL,
            }
            .emit(&mut Ipv4Packet::new_unchecked(frame.payload_mut()), &caps),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_len,
                hop_limit: TTL,
            }
            .emit(&mut Ipv6Packet::new_unchecked(frame.payload_mut())),
            // Two families: sent through tcp_split above.
            _ => {}
        }
        let l4 = &mut frame.payload_mut()[ip_hdr..ip_hdr + tcp_len];
        let mut tcp = TcpPacket::new_unchecked(l4);
        repr.emit(&mut tcp, &src.into(), &dst.into(), &tcp_caps);
        match gso::prepare_tcp(&mut self.scratch, gso_size) {
            Ok(hdr) => {
                self.queue.push_gso(&hdr, &self.scratch);
            }
            Err(e) => {
                log::debug!("user: GSO frame not built: {e}");
                self.queue_drop();
            }
        }
    }

    /// Sends `repr`'s payload as ordinary segments of at most `mss` bytes (the control
    /// flag on the last one only).
    fn tcp_split(&mut self, src: IpAddr, dst: IpAddr, repr: &TcpRepr, mss: usize) {
        let mss = mss.max(1);
        let count = repr.payload.len().div_ceil(mss).max(1);
        for i in 0..count {
            let off = i * mss;
            let chunk = repr.payload.get(off..).unwrap_or(&[]);
            let seg = TcpRepr {
                seq_number: TcpSeqNumber(repr.seq_number.0.wrapping_add(off as i32)),
                control: if i + 1 == count {
                    repr.control
                } else {
                    TcpControl::None
                },
                payload: &chunk[..chunk.len().min(mss)],
                ..*repr
            };
            self.tcp(src, dst, &seg);
        }
    }

    fn family_mismatch(&mut self) {
        log::debug!("user: packet with addresses of two families not sent");
        self.queue_drop();
    }

    /// Emits an ICMP message.
    pub fn icmp4(&mut self, src: Ipv4Addr, dst: Ipv4Addr, repr: &Icmpv4Repr) {
        let len = repr.buffer_len();
        self.ipv4(src, dst, IpProtocol::Icmp, len, None, |b, caps| {
            repr.emit(&mut Icmpv4Packet::new_unchecked(b), caps)
        });
    }

    /// Emits an ICMPv6 message to `dst_mac`.
    pub fn icmp6(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        repr: &Icmpv6Repr,
    ) {
        self.ipv6(
            src,
            dst,
            dst_mac,
            IpProtocol::Icmpv6,
            repr.buffer_len(),
            |b, caps| repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(b), caps),
        );
    }

    /// Emits an ICMPv6 message routed to the guest's `dst` (neighbour cache, or
    /// solicitation and hold); hop limit 64.
    pub fn icmp6_routed(&mut self, src: Ipv6Addr, dst: Ipv6Addr, repr: &Icmpv6Repr) {
        self.ipv6_routed(
            src,
            dst,
            IpProtocol::Icmpv6,
            repr.buffer_len(),
            |b, caps| repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(b), caps),
        );
    }

    /// Emits an on-link IPv6 packet (neighbour discovery, router advertisement, DHCPv6)
    /// to `dst_mac` with hop limit 255, as RFC 4861 requires of ND messages.
    pub fn ipv6(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        proto: IpProtocol,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
    ) {
        self.ipv6_frames(src, dst, Some(dst_mac), proto, 255, payload_len, fill);
    }

    /// Emits an IPv6 packet routed to the guest's `dst`: its MAC from the neighbour cache
    /// (multicast mapped per RFC 2464), else a neighbour solicitation and the frame held.
    fn ipv6_routed(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        proto: IpProtocol,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
    ) {
        let mac = if dst.is_multicast() {
            Some(multicast_mac(dst))
        } else {
            self.lookup6(dst)
        };
        self.ipv6_frames(src, dst, mac, proto, TTL, payload_len, fill);
    }

    /// Builds the frame(s) of one IPv6 packet from the gateway's MAC; one larger than the
    /// guest's MTU (a big UDP answer) is sent as fragments (RFC 8200 4.5), as the source
    /// must fragment in IPv6.
    #[allow(clippy::too_many_arguments)]
    fn ipv6_frames(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: Option<EthernetAddress>,
        proto: IpProtocol,
        hop_limit: u8,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
    ) {
        let caps = self.caps.clone();
        let eth = EthernetRepr {
            src_addr: self.gw_mac,
            dst_addr: dst_mac.unwrap_or(EthernetAddress::BROADCAST),
            ethertype: EthernetProtocol::Ipv6,
        };
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: proto,
            payload_len,
            hop_limit,
        };
        if IPV6_HDR + payload_len <= MTU {
            let buf = self.frame_buf(ETH_HDR + IPV6_HDR + payload_len);
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut pkt = Ipv6Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut pkt);
            fill(&mut pkt.payload_mut()[..payload_len], &caps);
            self.finish(dst_mac.is_some(), dst.into());
            return;
        }
        let mut whole = vec![0u8; payload_len];
        fill(&mut whole, &caps);
        self.ident6 = self.ident6.wrapping_add(1);
        let ident = self.ident6;
        let per_frag = (MTU - IPV6_HDR - IPV6_FRAG_HDR) & !7;
        for (k, chunk) in whole.chunks(per_frag).enumerate() {
            let off = k * per_frag;
            let more = off + chunk.len() < payload_len;
            let len = IPV6_FRAG_HDR + chunk.len();
            let buf = self.frame_buf(ETH_HDR + IPV6_HDR + len);
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut pkt = Ipv6Packet::new_unchecked(frame.payload_mut());
            Ipv6Repr {
                next_header: IpProtocol::Ipv6Frag,
                payload_len: len,
                ..ip
            }
            .emit(&mut pkt);
            // Next header, reserved, offset (8-byte units) << 3 | M, identification.
            let p = pkt.payload_mut();
            p[0] = proto.into();
            p[1] = 0;
            p[2..4].copy_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
            p[4..8].copy_from_slice(&ident.to_be_bytes());
            p[IPV6_FRAG_HDR..len].copy_from_slice(chunk);
            self.finish(dst_mac.is_some(), dst.into());
        }
    }
}

/// Puts `ip` at `mac` into a bounded address cache, newest last.
fn remember<A: PartialEq>(cache: &mut VecDeque<(A, EthernetAddress)>, ip: A, mac: EthernetAddress) {
    if let Some(pos) = cache.iter().position(|(a, _)| *a == ip) {
        cache.remove(pos);
    } else if cache.len() >= ARP_CACHE {
        cache.pop_front();
    }
    cache.push_back((ip, mac));
}

fn find<A: PartialEq>(cache: &VecDeque<(A, EthernetAddress)>, ip: A) -> Option<EthernetAddress> {
    cache.iter().rev().find(|(a, _)| *a == ip).map(|(_, m)| *m)
}

/// The Ethernet address an IPv6 multicast address maps to (RFC 2464 7): 33:33 and its
/// last four bytes.
pub(crate) fn multicast_mac(a: Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}
