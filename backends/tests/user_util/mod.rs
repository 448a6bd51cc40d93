//! Frame builders and helpers shared by the user-network tests: they play the guest.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

pub const GUEST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
pub const GW_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);

pub fn net() -> UserNet {
    UserNet::new(UserConfig::default()).unwrap()
}

pub fn eth(dst: EthernetAddress, proto: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    EthernetRepr {
        src_addr: GUEST_MAC,
        dst_addr: dst,
        ethertype: proto,
    }
    .emit(&mut e);
    e.payload_mut().copy_from_slice(payload);
    f
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20 + payload.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: 64,
    }
    .emit(&mut ip, &ChecksumCapabilities::default());
    ip.payload_mut().copy_from_slice(payload);
    let dst_mac = if dst.is_broadcast() {
        EthernetAddress::BROADCAST
    } else {
        GW_MAC
    };
    eth(dst_mac, EthernetProtocol::Ipv4, &p)
}

pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    ipv4(src.0, dst.0, IpProtocol::Udp, &udp_bytes(src, dst, payload))
}

/// A UDP datagram over IPv6 (hop limit 64) to the gateway's MAC.
/// A DHCP DISCOVER from `chaddr` with no options beyond a parameter request list; tests
/// change what they need with struct update syntax.
pub fn dhcp_discover(chaddr: EthernetAddress) -> DhcpRepr<'static> {
    DhcpRepr {
        message_type: DhcpMessageType::Discover,
        transaction_id: 0x1234_5678,
        secs: 0,
        client_hardware_address: chaddr,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: None,
        parameter_request_list: Some(&[1, 3, 6]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    }
}

/// `repr` as a guest sends it: from 0.0.0.0:68 to the broadcast address, port 67.
pub fn dhcp_frame(repr: &DhcpRepr) -> Vec<u8> {
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut p[..]))
        .unwrap();
    udp((Ipv4Addr::UNSPECIFIED, 68), (Ipv4Addr::BROADCAST, 67), &p)
}

pub fn udp6(
    src: (std::net::Ipv6Addr, u16),
    dst: (std::net::Ipv6Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    ipv6_frame(
        src.0,
        dst.0,
        IpProtocol::Udp,
        64,
        &udp_bytes(src, dst, payload),
    )
}

/// A UDP header and payload, checksummed over the pseudo-header of `src`'s family.
pub fn udp_bytes<A: Into<IpAddress>>(src: (A, u16), dst: (A, u16), payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let mut p = vec![0u8; 8 + payload.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut p[..]),
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    p
}

pub fn icmp_echo(dst: Ipv4Addr, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCapabilities::default(),
    );
    ipv4(GUEST_IP, dst, IpProtocol::Icmp, &p)
}

pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: GUEST_MAC,
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    eth(EthernetAddress::BROADCAST, EthernetProtocol::Arp, &p)
}

/// Every frame waiting for the guest.
pub fn drain(n: &mut UserNet) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 70000];
    for _ in 0..100_000 {
        match n.recv(&mut buf).unwrap() {
            Some(len) => v.push(buf[..len].to_vec()),
            None => break,
        }
    }
    v
}

/// A parsed IPv4 frame from the user network, with its checksums verified.
pub struct Ip4 {
    pub eth_dst: EthernetAddress,
    pub eth_src: EthernetAddress,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: IpProtocol,
    pub payload: Vec<u8>,
}

pub fn parse_ip4(f: &[u8]) -> Option<Ip4> {
    let e = EthernetFrame::new_checked(f).ok()?;
    if e.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(e.payload()).ok()?;
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    Some(Ip4 {
        eth_dst: e.dst_addr(),
        eth_src: e.src_addr(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        proto: ip.next_header(),
        payload: ip.payload().to_vec(),
    })
}

/// (src port, dst port, payload) of a UDP frame, checksum verified.
pub fn parse_udp(ip: &Ip4) -> (u16, u16, Vec<u8>) {
    let u = UdpPacket::new_checked(&ip.payload[..]).unwrap();
    assert!(
        u.verify_checksum(&ip.src.into(), &ip.dst.into()),
        "UDP checksum"
    );
    (u.src_port(), u.dst_port(), u.payload().to_vec())
}

/// Runs `poll` until `done` says so or `limit` passes; bounded in count and time.
pub fn pump(n: &mut UserNet, limit: Duration, mut done: impl FnMut(&mut UserNet) -> bool) -> bool {
    let end = Instant::now() + limit;
    for _ in 0..100_000 {
        n.poll(Instant::now()).unwrap();
        if done(n) {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: n.poll_fd().unwrap(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; bounded 10 ms wait.
        unsafe { libc::poll(&mut pfd, 1, 10) };
    }
    false
}

/// A TCP segment the user network sent to the guest, checksum verified.
#[derive(Debug, Clone)]
pub struct Seg {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub ack: Option<u32>,
    pub wnd: u16,
    pub ws: Option<u8>,
    pub mss: Option<u16>,
    pub payload: Vec<u8>,
}

pub fn parse_tcp(f: &[u8]) -> Option<Seg> {
    let ip = parse_ip4(f)?;
    if ip.proto != IpProtocol::Tcp {
        return None;
    }
    let p = TcpPacket::new_checked(&ip.payload[..]).unwrap();
    assert!(
        p.verify_checksum(&ip.src.into(), &ip.dst.into()),
        "TCP checksum"
    );
    let r = TcpRepr::parse(&p, &ip.src.into(), &ip.dst.into(), &Default::default()).unwrap();
    Some(Seg {
        src: ip.src,
        dst: ip.dst,
        sport: p.src_port(),
        dport: p.dst_port(),
        syn: p.syn(),
        fin: p.fin(),
        rst: p.rst(),
        seq: p.seq_number().0 as u32,
        ack: p.ack().then(|| p.ack_number().0 as u32),
        wnd: p.window_len(),
        ws: r.window_scale,
        mss: r.max_seg_size,
        payload: p.payload().to_vec(),
    })
}

/// What a crafted guest TCP segment carries (window scale 0 offered with an MSS).
pub struct TcpSeg<'a> {
    pub control: TcpControl,
    pub seq: u32,
    pub ack: Option<u32>,
    pub wnd: u16,
    pub mss: Option<u16>,
    pub payload: &'a [u8],
}

/// A guest TCP segment from `src` to `dst` in a frame to the gateway, over IPv4 or IPv6
/// (the checksum over the family's pseudo-header).
pub fn tcp_frame(src: (IpAddr, u16), dst: (IpAddr, u16), seg: &TcpSeg) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control: seg.control,
        seq_number: TcpSeqNumber(seg.seq as i32),
        ack_number: seg.ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: seg.wnd,
        window_scale: seg.mss.map(|_| 0),
        max_seg_size: seg.mss,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: seg.payload,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut p[..]),
        &src.0.into(),
        &dst.0.into(),
        &ChecksumCapabilities::default(),
    );
    match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, IpProtocol::Tcp, &p),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_frame(s, d, IpProtocol::Tcp, 64, &p),
        _ => panic!("addresses of two families"),
    }
}

/// Accepts one connection on `l` within `limit`, blocking reads with that timeout.
pub fn accept_within(l: &std::net::TcpListener, limit: Duration) -> std::net::TcpStream {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + limit;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(limit)).unwrap();
                s.set_write_timeout(Some(limit)).unwrap();
                return s;
            }
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("no connection: {e}"),
        }
    }
}

/// The guest's end of one TCP connection, crafting segments by hand.
pub struct GuestTcp {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub remote: (Ipv4Addr, u16),
    /// Next sequence number the guest sends.
    pub seq: u32,
    /// Next sequence number the guest expects.
    pub ack: u32,
    pub wnd: u16,
}

impl GuestTcp {
    pub fn new(port: u16, remote: (Ipv4Addr, u16)) -> Self {
        GuestTcp {
            ip: GUEST_IP,
            port,
            remote,
            seq: 1000,
            ack: 0,
            wnd: 65535,
        }
    }

    fn build(&self, control: TcpControl, ack: bool, payload: &[u8], syn_opts: bool) -> Vec<u8> {
        let seg = TcpSeg {
            control,
            seq: self.seq,
            ack: ack.then_some(self.ack),
            wnd: self.wnd,
            mss: syn_opts.then_some(1460),
            payload,
        };
        tcp_frame(
            (self.ip.into(), self.port),
            (self.remote.0.into(), self.remote.1),
            &seg,
        )
    }

    /// SYN (window scale 0 offered, MSS 1460).
    pub fn syn(&self) -> Vec<u8> {
        self.build(TcpControl::Syn, false, &[], true)
    }

    /// SYN-ACK answering a hostfwd SYN.
    pub fn syn_ack(&self) -> Vec<u8> {
        self.build(TcpControl::Syn, true, &[], true)
    }

    pub fn ack_only(&self) -> Vec<u8> {
        self.build(TcpControl::None, true, &[], false)
    }

    /// A data segment at the current sequence number; advances it.
    pub fn data(&mut self, payload: &[u8]) -> Vec<u8> {
        let f = self.build(TcpControl::Psh, true, payload, false);
        self.seq = self.seq.wrapping_add(payload.len() as u32);
        f
    }

    /// A data segment without PSH (more follows).
    pub fn data_more(&mut self, payload: &[u8]) -> Vec<u8> {
        let f = self.build(TcpControl::None, true, payload, false);
        self.seq = self.seq.wrapping_add(payload.len() as u32);
        f
    }

    pub fn fin(&mut self) -> Vec<u8> {
        let f = self.build(TcpControl::Fin, true, &[], false);
        self.seq = self.seq.wrapping_add(1);
        f
    }

    pub fn rst(&self) -> Vec<u8> {
        self.build(TcpControl::Rst, true, &[], false)
    }

    /// True when `s` belongs to this connection.
    pub fn owns(&self, s: &Seg) -> bool {
        s.dport == self.port && s.sport == self.remote.1 && s.src == self.remote.0
    }
}

/// Polls until at least one TCP segment for `g` is waiting; returns those segments.
pub fn wait_segs(n: &mut UserNet, g: &GuestTcp, limit: Duration) -> Vec<Seg> {
    wait_for(n, limit, |f| parse_tcp(f).filter(|s| g.owns(s)))
}

/// Polls until `pick` takes at least one frame for the guest; returns what it took
/// (empty after `limit`).
pub fn wait_for<S>(
    n: &mut UserNet,
    limit: Duration,
    mut pick: impl FnMut(&[u8]) -> Option<S>,
) -> Vec<S> {
    let mut got = Vec::new();
    pump(n, limit, |n| {
        got.extend(drain(n).iter().filter_map(|f| pick(f)));
        !got.is_empty()
    });
    got
}

pub const GUEST_LL: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
pub const GUEST_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
pub const HOST_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 2);
pub const DNS_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 3);

pub fn ipv6_frame(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    proto: IpProtocol,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = vec![0u8; 40 + payload.len()];
    let mut ip = Ipv6Packet::new_unchecked(&mut p[..]);
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit,
    }
    .emit(&mut ip);
    ip.payload_mut().copy_from_slice(payload);
    eth(GW_MAC, EthernetProtocol::Ipv6, &p)
}

pub fn icmp6_frame(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    hop_limit: u8,
    repr: &Icmpv6Repr,
) -> Vec<u8> {
    let p = icmp6_bytes(src, dst, repr);
    ipv6_frame(src, dst, IpProtocol::Icmpv6, hop_limit, &p)
}

/// An ICMPv6 message, checksummed over the pseudo-header of `src` and `dst`.
pub fn icmp6_bytes(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, repr: &Icmpv6Repr) -> Vec<u8> {
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut p[..]),
        &ChecksumCapabilities::default(),
    );
    p
}

/// (src, dst, next header, payload, eth dst) of an IPv6 frame.
pub fn parse_ip6(
    f: &[u8],
) -> Option<(
    std::net::Ipv6Addr,
    std::net::Ipv6Addr,
    IpProtocol,
    Vec<u8>,
    EthernetAddress,
)> {
    let e = EthernetFrame::new_checked(f).ok()?;
    if e.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(e.payload()).ok()?;
    Some((
        ip.src_addr(),
        ip.dst_addr(),
        ip.next_header(),
        ip.payload().to_vec(),
        e.dst_addr(),
    ))
}
