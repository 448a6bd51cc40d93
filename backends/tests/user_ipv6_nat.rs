//! TCP and UDP NAT over IPv6, DNS forwarding from `ipv6-dns`, hostfwd to an IPv6 guest and
//! periodic router advertisements, through real host sockets on the loopback (::1 and
//! 127.0.0.1). The test plays the guest with crafted frames.
#![cfg(feature = "user")]

mod netns_util;
mod user_util;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use netns_util::in_empty_netns;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{FwdProto, UserConfig, UserNet};
use vm_nic_backends::NetBackend;

const T: Duration = Duration::from_secs(10);
const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Binds `addr` on the host's IPv6 loopback, or explains why the test cannot run.
fn on_v6_loopback<S>(bind: impl FnOnce(&'static str) -> std::io::Result<S>) -> S {
    bind("[::1]:0").unwrap_or_else(|e| {
        panic!(
            "this test needs IPv6 on the loopback (::1): binding [::1]:0 failed: {e}; \
             check `ip -6 addr show lo`"
        )
    })
}

/// A TCP segment over IPv6 sent to the guest, with its checksum verified against the
/// IPv6 pseudo-header.
#[derive(Debug, Clone)]
struct Seg6 {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    eth_dst: EthernetAddress,
    sport: u16,
    dport: u16,
    syn: bool,
    fin: bool,
    rst: bool,
    seq: u32,
    ack: Option<u32>,
    mss: Option<u16>,
    payload: Vec<u8>,
}

fn parse_tcp6(f: &[u8]) -> Option<Seg6> {
    let (src, dst, proto, payload, eth_dst) = parse_ip6(f)?;
    if proto != IpProtocol::Tcp {
        return None;
    }
    let p = TcpPacket::new_checked(&payload[..]).unwrap();
    assert!(
        p.verify_checksum(&src.into(), &dst.into()),
        "TCP/IPv6 checksum"
    );
    let r = TcpRepr::parse(&p, &src.into(), &dst.into(), &Default::default()).unwrap();
    Some(Seg6 {
        src,
        dst,
        eth_dst,
        sport: p.src_port(),
        dport: p.dst_port(),
        syn: p.syn(),
        fin: p.fin(),
        rst: p.rst(),
        seq: p.seq_number().0 as u32,
        ack: p.ack().then(|| p.ack_number().0 as u32),
        mss: r.max_seg_size,
        payload: p.payload().to_vec(),
    })
}

/// The guest's end of one TCP connection over IPv6.
struct Guest6 {
    ip: Ipv6Addr,
    port: u16,
    remote: (Ipv6Addr, u16),
    seq: u32,
    ack: u32,
}

impl Guest6 {
    fn new(port: u16, remote: (Ipv6Addr, u16)) -> Self {
        Guest6 {
            ip: GUEST_V6,
            port,
            remote,
            seq: 5000,
            ack: 0,
        }
    }

    fn build(&self, control: TcpControl, ack: bool, payload: &[u8]) -> Vec<u8> {
        let seg = TcpSeg {
            control,
            seq: self.seq,
            ack: ack.then_some(self.ack),
            wnd: 65535,
            mss: (control == TcpControl::Syn).then_some(1440),
            payload,
        };
        tcp_frame(
            (self.ip.into(), self.port),
            (self.remote.0.into(), self.remote.1),
            &seg,
        )
    }

    fn syn(&self) -> Vec<u8> {
        self.build(TcpControl::Syn, false, &[])
    }

    fn syn_ack(&self) -> Vec<u8> {
        self.build(TcpControl::Syn, true, &[])
    }

    fn ack_only(&self) -> Vec<u8> {
        self.build(TcpControl::None, true, &[])
    }

    fn data(&mut self, payload: &[u8]) -> Vec<u8> {
        let f = self.build(TcpControl::Psh, true, payload);
        self.seq = self.seq.wrapping_add(payload.len() as u32);
        f
    }

    fn fin(&mut self) -> Vec<u8> {
        let f = self.build(TcpControl::Fin, true, &[]);
        self.seq = self.seq.wrapping_add(1);
        f
    }

    fn owns(&self, s: &Seg6) -> bool {
        s.dst == self.ip && s.dport == self.port && s.sport == self.remote.1
    }
}

/// Polls until segments for `g` arrive; returns them (empty after `T`).
fn wait6(n: &mut UserNet, g: &Guest6) -> Vec<Seg6> {
    wait_for(n, T, |f| parse_tcp6(f).filter(|s| g.owns(s)))
}

fn accept(l: &TcpListener) -> TcpStream {
    accept_within(l, T)
}

/// Completes the guest's handshake to `remote` through the NAT.
fn connect6(n: &mut UserNet, g: &mut Guest6) -> Seg6 {
    n.send(&g.syn()).unwrap();
    let segs = wait6(n, g);
    let sa = segs.first().expect("SYN-ACK").clone();
    assert!(sa.syn && !sa.rst, "{sa:?}");
    assert_eq!(sa.ack, Some(g.seq + 1));
    g.seq += 1;
    g.ack = sa.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    sa
}

#[test]
fn tcp_to_the_ipv6_virtual_host_reaches_host_loopback() {
    let l = on_v6_loopback(TcpListener::bind);
    let port = l.local_addr().unwrap().port();
    let mut n = net();
    let mut g = Guest6::new(40000, (HOST_V6, port));
    let sa = connect6(&mut n, &mut g);
    // From the virtual host to the guest's MAC, with the IPv6 segment size.
    assert_eq!((sa.src, sa.dst, sa.eth_dst), (HOST_V6, GUEST_V6, GUEST_MAC));
    assert_eq!(sa.mss, Some(1440), "1500 less 40 (IPv6) and 20 (TCP)");
    let mut host = accept(&l);
    assert!(host.peer_addr().unwrap().ip().is_loopback());
    assert!(host.peer_addr().unwrap().is_ipv6());
    let rows = n.connections();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].guest, SocketAddr::new(GUEST_V6.into(), 40000));
    assert_eq!(rows[0].state, "ESTABLISHED");
    assert!(n.info_usernet().contains("fec0::5054:ff:fe12:3456"));

    // Guest to host.
    n.send(&g.data(b"hello over six")).unwrap();
    pump(&mut n, Duration::from_millis(100), |n| !n.has_pending());
    let mut buf = [0u8; 64];
    let k = host.read(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"hello over six");
    drain(&mut n);

    // Host to guest.
    host.write_all(b"and back").unwrap();
    let segs = wait6(&mut n, &g);
    let data: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(data, b"and back");
    assert_eq!(segs[0].ack, Some(g.seq));
    g.ack = g.ack.wrapping_add(data.len() as u32);
    n.send(&g.ack_only()).unwrap();

    // The guest half-closes; the host sees EOF, closes; the guest gets the FIN.
    n.send(&g.fin()).unwrap();
    pump(&mut n, Duration::from_millis(100), |n| !n.has_pending());
    assert_eq!(host.read(&mut buf).unwrap(), 0, "EOF after the guest's FIN");
    drop(host);
    let mut fin = None;
    pump(&mut n, T, |n| {
        fin = drain(n)
            .iter()
            .filter_map(|f| parse_tcp6(f))
            .find(|s| s.fin);
        fin.is_some()
    });
    let fin = fin.expect("FIN from the host's close");
    assert_eq!(fin.ack, Some(g.seq), "the guest's FIN acknowledged");
    g.ack = fin.seq.wrapping_add(1);
    n.send(&g.ack_only()).unwrap();
    assert!(pump(&mut n, T, |n| n.connections().is_empty()));
    assert_eq!(n.stats(), Default::default());
}

#[test]
fn tcp_over_ipv6_refused_gets_rst_and_restrict_on_refuses() {
    let l = on_v6_loopback(TcpListener::bind);
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut n = net();
    let g = Guest6::new(40001, (HOST_V6, port));
    n.send(&g.syn()).unwrap();
    let segs = wait6(&mut n, &g);
    let rst = segs.first().expect("an answer to the SYN");
    assert!(rst.rst && !rst.syn, "{rst:?}");
    assert_eq!(rst.ack, Some(g.seq + 1));
    assert!(n.connections().is_empty());

    // restrict=on: refused before any host socket is opened.
    let l = on_v6_loopback(TcpListener::bind);
    let port = l.local_addr().unwrap().port();
    let mut n = UserNet::new(UserConfig {
        restrict: true,
        ..UserConfig::default()
    })
    .unwrap();
    let g = Guest6::new(40002, (HOST_V6, port));
    n.send(&g.syn()).unwrap();
    let rst = parse_tcp6(&drain(&mut n)[0]).unwrap();
    assert!(rst.rst);
    assert_eq!(n.stats().refused, 1);
    l.set_nonblocking(true).unwrap();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        l.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "nothing reached the host"
    );
    // A destination inside the virtual prefix other than the virtual hosts is refused too.
    let mut n = net();
    let other = Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0x99);
    let g = Guest6::new(40003, (other, 80));
    n.send(&g.syn()).unwrap();
    assert!(parse_tcp6(&drain(&mut n)[0]).unwrap().rst);
    assert_eq!(n.stats().refused, 1);
}

/// Polls until a UDP/IPv6 datagram for the guest arrives: (src, src port, dst port,
/// payload), checksum verified and non-zero.
fn guest_datagram6(n: &mut UserNet) -> Option<(Ipv6Addr, u16, u16, Vec<u8>)> {
    let mut got = None;
    pump(n, T, |n| {
        for f in drain(n) {
            let Some((src, dst, proto, payload, eth_dst)) = parse_ip6(&f) else {
                continue;
            };
            if proto != IpProtocol::Udp {
                continue;
            }
            assert_eq!((dst, eth_dst), (GUEST_V6, GUEST_MAC));
            let u = UdpPacket::new_checked(&payload[..]).unwrap();
            assert_ne!(u.checksum(), 0);
            assert!(u.verify_checksum(&src.into(), &dst.into()));
            got = Some((src, u.src_port(), u.dst_port(), u.payload().to_vec()));
        }
        got.is_some()
    });
    got
}

#[test]
fn udp_over_ipv6_echoes_through_host_loopback_and_times_out() {
    let server = on_v6_loopback(UdpSocket::bind);
    server.set_read_timeout(Some(T)).unwrap();
    let port = server.local_addr().unwrap().port();
    let mut cfg = UserConfig::default();
    cfg.limits.udp_idle = Duration::from_millis(300);
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&udp6((GUEST_V6, 5000), (HOST_V6, port), b"ping6"))
        .unwrap();
    let mut buf = [0u8; 64];
    let (k, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"ping6");
    assert_eq!(from.ip(), IpAddr::from(Ipv6Addr::LOCALHOST));
    let rows = n.connections();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].proto, rows[0].guest.port()), (FwdProto::Udp, 5000));
    server.send_to(b"pong6", from).unwrap();
    let (src, sp, dp, p) = guest_datagram6(&mut n).expect("the echo");
    assert_eq!((src, sp, dp), (HOST_V6, port, 5000));
    assert_eq!(p, b"pong6");
    // The IPv4 idle timeout applies to IPv6 flows too.
    assert!(n.next_deadline().unwrap() <= Instant::now() + Duration::from_millis(300));
    assert!(pump(&mut n, T, |n| n.connections().is_empty()));

    // restrict=on drops it.
    let mut n = UserNet::new(UserConfig {
        restrict: true,
        ..UserConfig::default()
    })
    .unwrap();
    n.send(&udp6((GUEST_V6, 5001), (HOST_V6, port), b"x"))
        .unwrap();
    assert_eq!(n.stats().refused, 1);
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        server.recv_from(&mut buf).is_err(),
        "nothing reached the host"
    );
}

#[test]
fn udp_over_ipv6_to_a_closed_port_gets_icmpv6_port_unreachable() {
    let s = on_v6_loopback(UdpSocket::bind);
    let port = s.local_addr().unwrap().port();
    drop(s);
    let mut n = net();
    n.send(&udp6((GUEST_V6, 5002), (HOST_V6, port), b"anyone?"))
        .unwrap();
    let mut got = None;
    pump(&mut n, T, |n| {
        for f in drain(n) {
            if let Some((src, dst, IpProtocol::Icmpv6, payload, _)) = parse_ip6(&f) {
                got = Some((src, dst, payload));
            }
        }
        got.is_some()
    });
    let (src, dst, raw) = got.expect("ICMPv6 error");
    assert_eq!((src, dst), (HOST_V6, GUEST_V6));
    let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
    assert!(p.verify_checksum(&src, &dst));
    // Destination unreachable (1), port unreachable (4), quoting the guest's header.
    assert_eq!((u8::from(p.msg_type()), p.msg_code()), (1, 4));
    let quoted = Ipv6Packet::new_unchecked(&raw[8..]);
    assert_eq!((quoted.src_addr(), quoted.dst_addr()), (GUEST_V6, HOST_V6));
    assert_eq!(&raw[48..52], &[0x13, 0x8a, (port >> 8) as u8, port as u8]);
}

#[test]
fn dns_over_tcp_to_the_ipv6_dns_address_reaches_the_resolver() {
    let resolver = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = UserConfig {
        dns_resolvers: vec![resolver.local_addr().unwrap()],
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    let mut g = Guest6::new(40200, (DNS_V6, 53));
    let sa = connect6(&mut n, &mut g);
    assert_eq!(sa.src, DNS_V6);
    let mut host = accept(&resolver);
    n.send(&g.data(b"\x00\x02\x12\x34")).unwrap();
    pump(&mut n, Duration::from_millis(100), |n| !n.has_pending());
    let mut buf = [0u8; 4];
    host.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\x00\x02\x12\x34");
    // Other ports of the DNS address are refused.
    let g = Guest6::new(40201, (DNS_V6, 80));
    n.send(&g.syn()).unwrap();
    assert!(wait6(&mut n, &g)[0].rst);
}

const QUERY: &[u8] =
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x1c\x00\x01";

/// A DNS query from the guest to fec0::3 reaches `resolver` and its answer comes back
/// from fec0::3 port 53.
fn dns_round_trip(resolver: UdpSocket) {
    resolver.set_read_timeout(Some(T)).unwrap();
    let cfg = UserConfig {
        dns_resolvers: vec![resolver.local_addr().unwrap()],
        ..UserConfig::default()
    };
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&udp6((GUEST_V6, 33333), (DNS_V6, 53), QUERY))
        .unwrap();
    assert_eq!(n.stats(), Default::default());
    let mut buf = [0u8; 512];
    let (k, from) = resolver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..k], QUERY);
    let mut answer = QUERY.to_vec();
    answer[2] = 0x81;
    answer[3] = 0x80;
    resolver.send_to(&answer, from).unwrap();
    let (src, sp, dp, p) = guest_datagram6(&mut n).expect("the answer");
    assert_eq!((src, sp, dp), (DNS_V6, 53, 33333));
    assert_eq!(p, answer);
}

#[test]
fn dns_to_the_ipv6_dns_address_goes_to_an_ipv4_resolver() {
    dns_round_trip(UdpSocket::bind("127.0.0.1:0").unwrap());
}

#[test]
fn dns_to_the_ipv6_dns_address_goes_to_an_ipv6_resolver() {
    dns_round_trip(on_v6_loopback(UdpSocket::bind));
}

#[test]
fn large_udp_answer_over_ipv6_is_fragmented_for_the_guest() {
    let server = on_v6_loopback(UdpSocket::bind);
    let port = server.local_addr().unwrap().port();
    let mut n = net();
    n.send(&udp6((GUEST_V6, 5003), (HOST_V6, port), b"big?"))
        .unwrap();
    server.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 16];
    let (_, from) = server.recv_from(&mut buf).unwrap();
    let big: Vec<u8> = (0..4000u32).map(|i| (i % 253) as u8).collect();
    server.send_to(&big, from).unwrap();
    let mut frags = Vec::new();
    pump(&mut n, T, |n| {
        frags.extend(drain(n));
        frags.len() >= 3
    });
    // Reassemble: each frame IPv6 + Fragment header (44), 8-byte aligned offsets.
    let mut whole = vec![0u8; 8 + big.len()];
    let mut ident = None;
    let mut last_seen = false;
    for f in &frags {
        assert!(f.len() <= 1514, "within the MTU");
        let (src, dst, proto, payload, _) = parse_ip6(f).unwrap();
        assert_eq!((src, dst, proto), (HOST_V6, GUEST_V6, IpProtocol::Ipv6Frag));
        assert_eq!(payload[0], u8::from(IpProtocol::Udp));
        let off_m = u16::from_be_bytes([payload[2], payload[3]]);
        let id = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        assert_eq!(*ident.get_or_insert(id), id, "one identification");
        let off = usize::from(off_m & !7);
        let body = &payload[8..];
        whole[off..off + body.len()].copy_from_slice(body);
        last_seen |= off_m & 1 == 0;
    }
    assert!(last_seen);
    let u = UdpPacket::new_checked(&whole[..]).unwrap();
    assert!(u.verify_checksum(&HOST_V6.into(), &GUEST_V6.into()));
    assert_eq!(u.payload(), &big[..]);
}

/// Duplicate address detection for `addr`: a neighbour solicitation from ::.
fn dad(addr: Ipv6Addr) -> Vec<u8> {
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: addr,
        lladdr: None,
    });
    let o = addr.octets();
    let snm = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ]);
    icmp6_frame(Ipv6Addr::UNSPECIFIED, snm, 255, &ns)
}

/// Waits for the SYN a hostfwd connection produces; completes the guest's side.
fn hostfwd_handshake(n: &mut UserNet, guest_port: u16) -> (Guest6, Seg6) {
    let mut syn = None;
    pump(n, T, |n| {
        syn = drain(n)
            .iter()
            .filter_map(|f| parse_tcp6(f))
            .find(|s| s.syn);
        syn.is_some()
    });
    let syn = syn.expect("SYN towards the guest");
    assert_eq!((syn.dst, syn.dport, syn.ack), (GUEST_V6, guest_port, None));
    assert_eq!(syn.mss, Some(1440));
    let mut g = Guest6::new(guest_port, (syn.src, syn.sport));
    g.ack = syn.seq.wrapping_add(1);
    n.send(&g.syn_ack()).unwrap();
    g.seq += 1;
    (g, syn)
}

#[test]
fn hostfwd_to_the_learned_ipv6_guest_even_when_restricted() {
    let cfg = UserConfig::from_opts(&[
        ("hostfwd".into(), "tcp:[::1]:0-[::]:22".into()),
        ("restrict".into(), "on".into()),
    ])
    .unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let fwd = n.hostfwd_addrs()[0];
    assert!(fwd.is_ipv6());
    assert!(n.info_usernet().contains("HOST_FORWARD"));

    // Before the guest has an IPv6 address, the connection is refused at once.
    let mut early = TcpStream::connect(fwd).unwrap();
    early.set_read_timeout(Some(T)).unwrap();
    pump(&mut n, Duration::from_millis(200), |_| false);
    let mut buf = [0u8; 16];
    match early.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the early connection should be closed: {other:?}"),
    }
    assert!(drain(&mut n).iter().all(|f| parse_tcp6(f).is_none()));

    // Duplicate address detection tells the network the guest's address.
    n.send(&dad(GUEST_V6)).unwrap();
    let mut host = TcpStream::connect(fwd).unwrap();
    host.set_read_timeout(Some(T)).unwrap();
    let (mut g, syn) = hostfwd_handshake(&mut n, 22);
    // The host itself (::1) appears as the IPv6 virtual host.
    assert_eq!(syn.src, HOST_V6);
    n.send(&g.data(b"SSH-2.0-guest\r\n")).unwrap();
    pump(&mut n, Duration::from_millis(100), |n| !n.has_pending());
    let mut banner = [0u8; 15];
    host.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-guest\r\n");
    host.write_all(b"hi").unwrap();
    let segs = wait6(&mut n, &g);
    let data: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(data, b"hi");
}

#[test]
fn hostfwd_to_an_explicit_ipv6_guest_solicits_its_mac_first() {
    let cfg =
        UserConfig::from_opts(&[("hostfwd".into(), format!("tcp:[::1]:0-[{GUEST_V6}]:2222"))])
            .unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    let fwd = n.hostfwd_addrs()[0];
    let host = TcpStream::connect(fwd).unwrap();
    // The guest never sent anything: a neighbour solicitation goes out for its address.
    let mut ns = None;
    pump(&mut n, T, |n| {
        for f in drain(n) {
            if let Some((src, dst, IpProtocol::Icmpv6, payload, eth_dst)) = parse_ip6(&f) {
                let p = Icmpv6Packet::new_checked(&payload[..]).unwrap();
                let r = Icmpv6Repr::parse(&src, &dst, &p, &Default::default()).unwrap();
                if let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) = r {
                    ns = Some((src, dst, eth_dst, target_addr));
                }
            }
        }
        ns.is_some()
    });
    let (src, dst, eth_dst, target) = ns.expect("neighbour solicitation");
    assert_eq!((src, target), (ROUTER_LL, GUEST_V6));
    assert_eq!(dst, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        eth_dst,
        EthernetAddress([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
    );
    // The guest's advertisement releases the held SYN.
    let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        target_addr: GUEST_V6,
        lladdr: Some(GUEST_MAC.into()),
    });
    n.send(&icmp6_frame(GUEST_V6, ROUTER_LL, 255, &na)).unwrap();
    let frames = drain(&mut n);
    let syn = frames
        .iter()
        .find_map(|f| parse_tcp6(f))
        .expect("the held SYN");
    assert!(syn.syn);
    assert_eq!(
        (syn.dst, syn.dport, syn.eth_dst),
        (GUEST_V6, 2222, GUEST_MAC)
    );
    drop(host);
}

#[test]
fn udp_hostfwd_to_the_ipv6_guest() {
    let cfg = UserConfig::from_opts(&[("hostfwd".into(), "udp:[::1]:0-[::]:7".into())]).unwrap();
    let mut n = UserNet::new(cfg).unwrap();
    n.send(&dad(GUEST_V6)).unwrap();
    let fwd = n.hostfwd_addrs()[0];
    let peer = on_v6_loopback(UdpSocket::bind);
    peer.set_read_timeout(Some(T)).unwrap();
    let peer_port = peer.local_addr().unwrap().port();
    peer.send_to(b"to-guest", fwd).unwrap();
    let (src, sp, dp, p) = guest_datagram6(&mut n).expect("forwarded datagram");
    assert_eq!((src, sp, dp), (HOST_V6, peer_port, 7));
    assert_eq!(p, b"to-guest");
    n.send(&udp6((GUEST_V6, 7), (HOST_V6, peer_port), b"to-host"))
        .unwrap();
    let mut buf = [0u8; 16];
    let (k, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..k], from), (&b"to-host"[..], fwd));
}

#[test]
fn hostfwd_v6_errors_are_clear() {
    let e = UserConfig::from_opts(&[("hostfwd".into(), "tcp:::1:22-:22".into())]).unwrap_err();
    assert!(e.to_string().contains("bad host part"), "{e}");
    let e = UserConfig::from_opts(&[("hostfwd".into(), "tcp::22-fec0::15:22".into())]).unwrap_err();
    assert!(e.to_string().contains("bad guest part"), "{e}");
    // A busy port is an error at start, naming the forward.
    let l = on_v6_loopback(TcpListener::bind);
    let busy = l.local_addr().unwrap();
    let cfg = UserConfig::from_opts(&[("hostfwd".into(), format!("tcp:{busy}-[::]:22"))]).unwrap();
    let e = UserNet::new(cfg).unwrap_err();
    assert!(e.to_string().contains(&busy.to_string()), "{e}");
}

/// The router advertisement in `frames`, if any: (IPv6 dst, Ethernet dst).
fn find_ra(frames: &[Vec<u8>]) -> Option<(Ipv6Addr, EthernetAddress)> {
    frames.iter().find_map(|f| {
        let (src, dst, proto, payload, eth_dst) = parse_ip6(f)?;
        if proto != IpProtocol::Icmpv6 || src != ROUTER_LL {
            return None;
        }
        let p = Icmpv6Packet::new_checked(&payload[..]).ok()?;
        assert!(p.verify_checksum(&src, &dst));
        let r = Icmpv6Repr::parse(&src, &dst, &p, &Default::default()).ok()?;
        matches!(r, Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert { .. })).then_some((dst, eth_dst))
    })
}

#[test]
fn router_advertisements_are_sent_periodically() {
    let before = Instant::now();
    let mut n = net();
    // libslirp's interval: uniformly 200 to 600 s.
    let due = n.next_deadline().expect("the RA timer is armed");
    assert!(
        due >= before + Duration::from_secs(200),
        "{:?}",
        due - before
    );
    assert!(due <= Instant::now() + Duration::from_secs(600));
    // poll takes the time: nothing before the deadline, one RA to all nodes at it.
    n.poll(due - Duration::from_millis(1)).unwrap();
    assert!(find_ra(&drain(&mut n)).is_none());
    n.poll(due).unwrap();
    let (dst, eth_dst) = find_ra(&drain(&mut n)).expect("periodic RA");
    assert_eq!(dst, ALL_NODES);
    assert_eq!(eth_dst, EthernetAddress([0x33, 0x33, 0, 0, 0, 1]));
    let next = n.next_deadline().unwrap();
    assert!(next >= due + Duration::from_secs(200) && next < due + Duration::from_secs(600));
    n.poll(next).unwrap();
    assert!(find_ra(&drain(&mut n)).is_some(), "and again");

    // Without IPv6 there is no RA timer.
    let off = UserNet::new(UserConfig {
        ipv6: false,
        ..UserConfig::default()
    })
    .unwrap();
    assert_eq!(off.next_deadline(), None);
}

/// An IPv6 frame whose payload starts with `ext`, a chain of extension headers ending in
/// `proto`'s message `upper`.
fn with_ext(first: u8, ext: &[u8], upper: &[u8], dst: Ipv6Addr) -> Vec<u8> {
    let mut p = ext.to_vec();
    p.extend_from_slice(upper);
    ipv6_frame(GUEST_V6, dst, IpProtocol::from(first), 64, &p)
}

#[test]
fn extension_headers_are_walked_and_malformed_ipv6_is_counted() {
    let req = Icmpv6Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data: b"ext",
    };
    let mut echo = vec![0u8; req.buffer_len()];
    req.emit(
        &GUEST_V6,
        &HOST_V6,
        &mut Icmpv6Packet::new_unchecked(&mut echo[..]),
        &ChecksumCapabilities::default(),
    );
    // Hop-by-Hop (PadN) then Destination Options (PadN), then ICMPv6: answered.
    let hbh = [60, 0, 1, 4, 0, 0, 0, 0];
    let dopt = [58, 0, 1, 4, 0, 0, 0, 0];
    let mut n = net();
    n.send(&with_ext(
        0,
        &[&hbh[..], &dopt[..]].concat(),
        &echo,
        HOST_V6,
    ))
    .unwrap();
    let frames = drain(&mut n);
    assert_eq!(frames.len(), 1, "echo reply through extension headers");
    assert_eq!(parse_ip6(&frames[0]).unwrap().2, IpProtocol::Icmpv6);
    assert_eq!(n.stats(), Default::default());

    let g = Guest6::new(40100, (HOST_V6, 9));
    let syn = g.syn();
    let tcp_start = 14 + 40;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Extension header length beyond the packet.
        (
            "ext overrun",
            with_ext(60, &[58, 9, 0, 0, 0, 0, 0, 0], &[], HOST_V6),
        ),
        // Hop-by-Hop after another header.
        (
            "HBH not first",
            with_ext(
                60,
                &[&[0, 0, 1, 4, 0, 0, 0, 0][..], &hbh[..]].concat(),
                &echo,
                HOST_V6,
            ),
        ),
        // TCP header cut short.
        (
            "tcp cut",
            ipv6_frame(
                GUEST_V6,
                HOST_V6,
                IpProtocol::Tcp,
                64,
                &syn[tcp_start..tcp_start + 12],
            ),
        ),
        ("tcp checksum", {
            let mut f = syn.clone();
            f[tcp_start + 16] ^= 0xff;
            f
        }),
        ("udp zero checksum", {
            let mut f = udp6((GUEST_V6, 1), (HOST_V6, 9), b"x");
            f[14 + 40 + 6] = 0;
            f[14 + 40 + 7] = 0;
            f
        }),
        ("udp length", {
            let mut f = udp6((GUEST_V6, 1), (HOST_V6, 9), b"x");
            f[14 + 40 + 5] = 200;
            f
        }),
        ("multicast source", {
            let mut f = syn.clone();
            f[14 + 8] = 0xff;
            f
        }),
        ("payload length", {
            let mut f = syn.clone();
            f[14 + 4] = 0x10;
            f
        }),
    ];
    let mut n = net();
    for (i, (what, f)) in cases.iter().enumerate() {
        n.send(f).unwrap();
        assert_eq!(
            n.stats().malformed,
            i as u64 + 1,
            "{what} counted as malformed"
        );
    }
    assert!(
        drain(&mut n).is_empty(),
        "nothing answers a malformed frame"
    );
    assert!(n.connections().is_empty());

    // A SYN to a multicast group gets no flow and no reset.
    let g = Guest6::new(40101, (ALL_NODES, 80));
    n.send(&g.syn()).unwrap();
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.stats().ignored, 1);
    // A first fragment waits for the rest (counted; user_ipv6_frag.rs reassembles);
    // too long a chain is refused.
    let frag = [58, 0, 0, 1, 0, 0, 0, 1];
    n.send(&with_ext(44, &frag, &echo[..8], HOST_V6)).unwrap();
    assert_eq!((n.stats().ignored, n.stats().fragments), (1, 1));
    let chain: Vec<u8> = (0..9).flat_map(|_| [60u8, 0, 1, 4, 0, 0, 0, 0]).collect();
    n.send(&with_ext(60, &chain, &echo, HOST_V6)).unwrap();
    assert_eq!(n.stats().refused, 1);
    assert!(drain(&mut n).is_empty());
}

#[test]
fn ipv6_flows_share_the_flow_limit() {
    let server = on_v6_loopback(UdpSocket::bind);
    let port = server.local_addr().unwrap().port();
    let mut cfg = UserConfig::default();
    cfg.limits.max_flows = 2;
    let mut n = UserNet::new(cfg).unwrap();
    for sport in [6000, 6001, 6002] {
        n.send(&udp6((GUEST_V6, sport), (HOST_V6, port), b"x"))
            .unwrap();
    }
    n.send(&udp((GUEST_IP, 6003), (GW, port), b"y")).unwrap();
    assert_eq!(n.connections().len(), 2);
    assert_eq!(n.stats().refused, 2);
    drop(server);
}

/// Sends a SYN from guest port `port` to `far` and checks the answer is an ICMPv6 "no
/// route to destination" from fe80::2 quoting it.
fn expect_no_route(n: &mut UserNet, far: Ipv6Addr, port: u16) {
    let g = Guest6::new(port, (far, 80));
    n.send(&g.syn()).unwrap();
    let frames = drain(n);
    assert_eq!(frames.len(), 1, "one answer to the SYN");
    let (src, dst, proto, raw, eth_dst) = parse_ip6(&frames[0]).unwrap();
    assert_eq!((src, dst, proto), (ROUTER_LL, GUEST_V6, IpProtocol::Icmpv6));
    assert_eq!(eth_dst, GUEST_MAC);
    let p = Icmpv6Packet::new_checked(&raw[..]).unwrap();
    assert!(p.verify_checksum(&src, &dst));
    // Destination unreachable (1), no route to destination (0), quoting the SYN.
    assert_eq!((u8::from(p.msg_type()), p.msg_code()), (1, 0));
    let quoted = Ipv6Packet::new_unchecked(&raw[8..]);
    assert_eq!((quoted.src_addr(), quoted.dst_addr()), (GUEST_V6, far));
    assert_eq!(quoted.next_header(), IpProtocol::Tcp);
    let ports = [(port >> 8) as u8, port as u8, 0, 80];
    assert_eq!(&raw[48..52], &ports, "the SYN's ports");
    assert_eq!(
        &raw[52..56],
        &g.seq.to_be_bytes(),
        "the SYN's sequence number"
    );
    assert!(n.connections().is_empty());
}

#[test]
fn tcp_over_ipv6_without_a_route_gets_icmpv6_no_route() {
    in_empty_netns(|| {
        let mut n = net();
        let far = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        // Loopback down: no IPv6 source address at all (EADDRNOTAVAIL).
        expect_no_route(&mut n, far, 40300);
        // Loopback up: no route (ENETUNREACH).
        let st = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip (iproute2) is needed");
        assert!(st.success());
        expect_no_route(&mut n, far, 40301);
    });
}
