//! Hostile guest frames: random bytes and random corruptions of valid frames of every
//! protocol the user network parses. Nothing may panic, every frame must be accounted
//! for, and whatever the network answers must itself be well formed.
//!
//! restrict=on keeps every mutated destination away from the host network.
#![cfg(feature = "user")]

mod user_util;

use proptest::prelude::*;
use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

fn seeds() -> Vec<Vec<u8>> {
    let mut g = GuestTcp::new(1234, (GW, 80));
    let dhcp = dhcp_frame(&DhcpRepr {
        transaction_id: 1,
        requested_ip: Some(GUEST_IP),
        ..dhcp_discover(GUEST_MAC)
    });
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: HOST_V6,
        lladdr: Some(GUEST_MAC.into()),
    });
    let rs = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit { lladdr: None });
    // IPv6 TCP SYN and DNS query, the SYN behind a Hop-by-Hop header (PadN).
    let v6_syn = {
        let repr = TcpRepr {
            src_port: 1234,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1),
            ack_number: None,
            window_len: 65535,
            window_scale: Some(0),
            max_seg_size: Some(1440),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let mut p = vec![6, 0, 1, 4, 0, 0, 0, 0];
        p.resize(8 + repr.buffer_len(), 0);
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut p[8..]),
            &GUEST_V6.into(),
            &HOST_V6.into(),
            &Default::default(),
        );
        ipv6_frame(GUEST_V6, HOST_V6, IpProtocol::HopByHop, 64, &p)
    };
    let v6_dns = udp6((GUEST_V6, 5000), (DNS_V6, 53), b"\x12\x34\x01\x00\x00\x01");
    vec![
        arp_request(GUEST_IP, GW),
        dhcp,
        icmp_echo(GW, 1, 1, b"hello"),
        g.syn(),
        g.data(b"payload"),
        udp((GUEST_IP, 5000), (GW, 69), b"\x00\x01file\x00octet\x00"),
        udp((GUEST_IP, 5000), (DNS, 53), b"\x12\x34\x01\x00\x00\x01"),
        icmp6_frame(GUEST_V6, HOST_V6, 255, &ns),
        icmp6_frame(GUEST_LL, HOST_V6, 255, &rs),
        v6_syn,
        v6_dns,
    ]
}

fn restricted() -> UserNet {
    UserNet::new(UserConfig {
        restrict: true,
        ..UserConfig::default()
    })
    .unwrap()
}

/// Every frame the network emits parses, with correct checksums.
fn check_output(n: &mut UserNet) {
    for f in drain(n) {
        assert!(f.len() >= 60 && f.len() <= vm_nic_backends::MAX_FRAME_LEN);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        match e.ethertype() {
            EthernetProtocol::Ipv4 => {
                let ip = parse_ip4(&f).unwrap();
                if ip.proto == IpProtocol::Udp {
                    parse_udp(&ip);
                } else if ip.proto == IpProtocol::Tcp {
                    parse_tcp(&f).unwrap();
                }
            }
            EthernetProtocol::Arp => {
                ArpRepr::parse(&ArpPacket::new_checked(e.payload()).unwrap()).unwrap();
            }
            EthernetProtocol::Ipv6 => {
                let (src, dst, proto, payload, _) = parse_ip6(&f).unwrap();
                match proto {
                    IpProtocol::Icmpv6 => {
                        let p = Icmpv6Packet::new_checked(&payload[..]).unwrap();
                        assert!(p.verify_checksum(&src, &dst));
                    }
                    IpProtocol::Tcp => {
                        let p = TcpPacket::new_checked(&payload[..]).unwrap();
                        assert!(p.verify_checksum(&src.into(), &dst.into()));
                    }
                    IpProtocol::Udp => {
                        let p = UdpPacket::new_checked(&payload[..]).unwrap();
                        assert!(p.verify_checksum(&src.into(), &dst.into()));
                    }
                    _ => {}
                }
            }
            other => panic!("unexpected ethertype {other}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..8)) {
        let mut n = restricted();
        for f in &frames {
            n.send(f).unwrap();
        }
        check_output(&mut n);
        prop_assert_eq!(n.counters().sent_frames, frames.len() as u64);
    }

    #[test]
    fn corrupted_valid_frames_never_panic(
        which in 0usize..11,
        flips in prop::collection::vec((0usize..2000, any::<u8>()), 1..6),
        cut in 0usize..2000,
    ) {
        let mut n = restricted();
        let mut f = seeds()[which].clone();
        for (pos, val) in flips {
            let len = f.len();
            f[pos % len] ^= val;
        }
        let keep = if cut < f.len() { f.len() - cut % 64 } else { f.len() };
        f.truncate(keep);
        n.send(&f).unwrap();
        n.poll(std::time::Instant::now()).unwrap();
        check_output(&mut n);
        let s = n.stats();
        prop_assert!(s.malformed + s.ignored + s.refused + s.fragments <= 1);
    }
}

#[test]
fn valid_seeds_are_not_counted_as_malformed() {
    let mut n = restricted();
    for f in seeds() {
        n.send(&f).unwrap();
    }
    check_output(&mut n);
    assert_eq!(n.stats().malformed, 0);
}
