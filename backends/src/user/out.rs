//! Frames towards the guest: Ethernet/IP framing, checksums, the guest's MAC addresses
//! and the bounded queue the device drains through `recv`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

use crate::queue::FrameQueue;

const ETH_HDR: usize = 14;
const IPV4_HDR: usize = 20;
const IPV6_HDR: usize = 40;
/// The guest's MTU: QEMU's user network and every emulated NIC here use Ethernet's 1500.
pub(crate) const MTU: usize = 1500;
/// Addresses remembered for the guest side (the guest is usually one host).
const ARP_CACHE: usize = 64;
/// Frames held while their destination's MAC is being resolved.
const HELD_FRAMES: usize = 32;
/// TTL / hop limit of packets the virtual hosts originate.
pub(crate) const TTL: u8 = 64;

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
    /// The last unicast MAC the guest sent from; used for IPv6 and as a fallback.
    pub guest_mac: Option<EthernetAddress>,
    held: VecDeque<(Ipv4Addr, Vec<u8>)>,
    /// Frames lost before reaching the queue (ARP hold overflow).
    pub lost: u64,
    /// IPv4 identification of the last fragmented datagram.
    ident: u16,
    scratch: Vec<u8>,
    caps: ChecksumCapabilities,
}

impl Output {
    pub fn new(queue: FrameQueue, gw_ip: Ipv4Addr) -> Self {
        Output {
            queue,
            gw_mac: virtual_mac(gw_ip),
            gw_ip,
            arp: VecDeque::new(),
            guest_mac: None,
            held: VecDeque::new(),
            lost: 0,
            ident: 0,
            scratch: Vec::new(),
            caps: ChecksumCapabilities::default(),
        }
    }

    /// Remembers that `ip` is at `mac` and sends frames that waited for it.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        if !mac.is_unicast() || ip.is_unspecified() || ip.is_broadcast() {
            return;
        }
        self.guest_mac = Some(mac);
        if let Some(pos) = self.arp.iter().position(|(a, _)| *a == ip) {
            self.arp.remove(pos);
        } else if self.arp.len() >= ARP_CACHE {
            self.arp.pop_front();
        }
        self.arp.push_back((ip, mac));
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
        self.arp
            .iter()
            .rev()
            .find(|(a, _)| *a == ip)
            .map(|(_, m)| *m)
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
        let src_mac = if src == self.gw_ip || dst.is_broadcast() {
            self.gw_mac
        } else {
            virtual_mac(src)
        };
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
            self.finish(resolved.is_some(), dst);
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
            self.finish(resolved.is_some(), dst);
        }
    }

    /// Queues the frame in `scratch`, or holds it until `dst`'s MAC is known.
    fn finish(&mut self, resolved: bool, dst: Ipv4Addr) {
        if resolved {
            self.push_scratch();
        } else {
            self.hold(dst);
        }
    }

    /// Keeps the frame in `scratch` until `dst` answers an ARP request.
    fn hold(&mut self, dst: Ipv4Addr) {
        if self.held.len() >= HELD_FRAMES {
            self.held.pop_front();
            log::debug!("user: ARP hold queue full, oldest frame dropped");
            self.queue_drop();
        }
        let f = self.scratch.clone();
        self.held.push_back((dst, f));
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.gw_mac,
            source_protocol_addr: self.gw_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: dst,
        };
        self.arp(&req, EthernetAddress::BROADCAST, self.gw_mac);
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

    /// Emits a TCP segment.
    pub fn tcp4(&mut self, src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr) {
        let len = repr.buffer_len();
        self.ipv4(src, dst, IpProtocol::Tcp, len, None, |b, caps| {
            repr.emit(
                &mut TcpPacket::new_unchecked(b),
                &IpAddress::Ipv4(src),
                &IpAddress::Ipv4(dst),
                caps,
            )
        });
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

    /// Emits an IPv6 packet from the gateway's MAC.
    pub fn ipv6(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        proto: IpProtocol,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
    ) {
        let caps = self.caps.clone();
        let gw_mac = self.gw_mac;
        let buf = self.frame_buf(ETH_HDR + IPV6_HDR + payload_len);
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: gw_mac,
            dst_addr: dst_mac,
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut eth);
        let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: proto,
            payload_len,
            hop_limit: 255,
        }
        .emit(&mut ip);
        fill(&mut ip.payload_mut()[..payload_len], &caps);
        self.push_scratch();
    }
}
