//! The DHCPv4 server against several crafted clients: one lease per MAC, the 16-address
//! pool running out, NAKs, restrict=on, BOOTP clients and the boot options — the
//! behaviour of libslirp's bootp.c unless noted.
#![cfg(feature = "user")]

mod user_util;

use std::net::Ipv4Addr;

use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::NetBackend;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0x00, 0xab, 0x00, n])
}

/// A DHCP message from the client `chaddr` (broadcast, no flag).
fn msg(
    chaddr: EthernetAddress,
    kind: DhcpMessageType,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    dhcp_frame(&DhcpRepr {
        message_type: kind,
        transaction_id: 0x0bad_cafe,
        requested_ip: requested,
        server_identifier: server,
        parameter_request_list: Some(&[1, 3, 6, 12, 15, 119]),
        ..dhcp_discover(chaddr)
    })
}

/// The DHCP replies waiting, as raw BOOTP messages.
fn replies(n: &mut UserNet) -> Vec<Vec<u8>> {
    drain(n)
        .iter()
        .map(|f| {
            let ip = parse_ip4(f).unwrap();
            let (sp, dp, raw) = parse_udp(&ip);
            assert_eq!((sp, dp), (67, 68));
            raw
        })
        .collect()
}

fn one(n: &mut UserNet) -> Vec<u8> {
    let mut r = replies(n);
    assert_eq!(r.len(), 1, "exactly one DHCP reply");
    r.remove(0)
}

fn repr(raw: &[u8]) -> DhcpRepr<'_> {
    // The packet is re-parsed from a slice that outlives the Repr.
    let p = DhcpPacket::new_checked(raw).unwrap();
    let r = DhcpRepr::parse(&p).unwrap();
    DhcpRepr {
        additional_options: &[],
        parameter_request_list: None,
        ..r
    }
}

fn option(raw: &[u8], kind: u8) -> Option<Vec<u8>> {
    let p = DhcpPacket::new_checked(raw).unwrap();
    let found = p
        .options()
        .find(|o| o.kind == kind)
        .map(|o| o.data.to_vec());
    found
}

fn with(opts: &[(&str, &str)]) -> UserNet {
    let o: Vec<(String, String)> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    UserNet::new(UserConfig::from_opts(&o).unwrap()).unwrap()
}

#[test]
fn sixteen_clients_get_one_lease_each_and_the_seventeenth_none() {
    let mut n = net();
    for i in 0..16u8 {
        n.send(&msg(mac(i), DhcpMessageType::Discover, None, None))
            .unwrap();
        let r = one(&mut n);
        assert_eq!(repr(&r).message_type, DhcpMessageType::Offer);
        assert_eq!(repr(&r).your_ip, Ipv4Addr::new(10, 0, 2, 15 + i));
    }
    // A client asking again keeps its address.
    n.send(&msg(mac(3), DhcpMessageType::Discover, None, None))
        .unwrap();
    assert_eq!(repr(&one(&mut n)).your_ip, Ipv4Addr::new(10, 0, 2, 18));
    assert_eq!(n.stats().refused, 0);
    // The pool (libslirp's 16 addresses) is exhausted: no offer, counted as refused.
    n.send(&msg(mac(16), DhcpMessageType::Discover, None, None))
        .unwrap();
    assert!(replies(&mut n).is_empty());
    assert_eq!(n.stats().refused, 1);
    // Requesting another client's address is NAK'ed, broadcast, with libslirp's text.
    n.send(&msg(
        mac(16),
        DhcpMessageType::Request,
        Some(Ipv4Addr::new(10, 0, 2, 15)),
        Some(GW),
    ))
    .unwrap();
    let nak = one(&mut n);
    assert_eq!(repr(&nak).message_type, DhcpMessageType::Nak);
    assert_eq!(
        option(&nak, 56).as_deref(),
        Some(&b"requested address not available"[..])
    );
    assert_eq!(repr(&nak).router, None);
    // A released address goes to the next client.
    let mut release = msg(mac(0), DhcpMessageType::Release, None, Some(GW));
    // ciaddr (UDP payload offset 12) = 10.0.2.15; a zero UDP checksum means none.
    release[42 + 12..42 + 16].copy_from_slice(&[10, 0, 2, 15]);
    release[14 + 20 + 6..14 + 20 + 8].fill(0);
    n.send(&release).unwrap();
    n.send(&msg(mac(16), DhcpMessageType::Discover, None, None))
        .unwrap();
    assert_eq!(repr(&one(&mut n)).your_ip, Ipv4Addr::new(10, 0, 2, 15));
}

#[test]
fn discover_naming_a_free_address_is_offered_it() {
    let mut n = net();
    let want = Ipv4Addr::new(10, 0, 2, 20);
    n.send(&msg(mac(1), DhcpMessageType::Discover, Some(want), None))
        .unwrap();
    assert_eq!(repr(&one(&mut n)).your_ip, want);
    // Taken by mac(1): another client asking for it gets the first free one.
    n.send(&msg(mac(2), DhcpMessageType::Discover, Some(want), None))
        .unwrap();
    assert_eq!(repr(&one(&mut n)).your_ip, GUEST_IP);
    // Outside the pool: ignored, the first free one.
    n.send(&msg(
        mac(3),
        DhcpMessageType::Discover,
        Some(Ipv4Addr::new(10, 0, 2, 99)),
        None,
    ))
    .unwrap();
    assert_eq!(repr(&one(&mut n)).your_ip, Ipv4Addr::new(10, 0, 2, 16));
}

#[test]
fn request_naming_no_address_gets_the_clients_lease() {
    let mut n = net();
    n.send(&msg(mac(7), DhcpMessageType::Discover, None, None))
        .unwrap();
    let _ = one(&mut n);
    n.send(&msg(mac(8), DhcpMessageType::Discover, None, None))
        .unwrap();
    let _ = one(&mut n);
    // libslirp's "windows fix": a REQUEST with neither option 50 nor ciaddr is ACK'ed
    // with the lease the MAC already has.
    n.send(&msg(mac(8), DhcpMessageType::Request, None, None))
        .unwrap();
    let ack = one(&mut n);
    assert_eq!(repr(&ack).message_type, DhcpMessageType::Ack);
    assert_eq!(repr(&ack).your_ip, Ipv4Addr::new(10, 0, 2, 16));
}

#[test]
fn bootp_client_without_message_type_gets_an_address() {
    let tftp = std::env::temp_dir();
    let mut n = with(&[("bootfile", "pxelinux.0"), ("tftp", tftp.to_str().unwrap())]);
    // RFC 951 request: op 1, htype 1, hlen 6, xid, chaddr, 64-byte vendor area without
    // the DHCP cookie.
    let mut b = vec![0u8; 300];
    b[0..3].copy_from_slice(&[1, 1, 6]);
    b[4..8].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    b[28..34].copy_from_slice(mac(9).as_bytes());
    n.send(&udp(
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &b,
    ))
    .unwrap();
    let r = one(&mut n);
    assert_eq!(r[0], 2, "BOOTREPLY");
    assert_eq!(&r[4..8], &0x1122_3344u32.to_be_bytes());
    assert_eq!(&r[16..20], &GUEST_IP.octets(), "yiaddr");
    assert_eq!(&r[20..24], &GW.octets(), "siaddr: the TFTP server");
    assert_eq!(&r[108..119], b"pxelinux.0\0");
    assert_eq!(n.stats(), Default::default());
    // The same with the cookie but no option 53 (a BOOTP client writing RFC 1497
    // vendor extensions): still served, and the lease is kept for the MAC.
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b[240] = 255;
    n.send(&udp(
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &b,
    ))
    .unwrap();
    assert_eq!(&one(&mut n)[16..20], &GUEST_IP.octets());
    // A DHCP client whose client identifier smoltcp's parser refuses (type 0, a 6-byte
    // name: RFC 2132 allows it) is served all the same, as libslirp ignores that option.
    let mut d = msg(mac(10), DhcpMessageType::Discover, None, None);
    let opts = 14 + 20 + 8 + 240;
    assert_eq!(&d[opts..opts + 3], &[53, 1, 1], "message type comes first");
    d.truncate(opts + 3);
    d.extend_from_slice(&[61, 7, 0, b'n', b'o', b'd', b'e', b'-', b'a', 255]);
    let d = udp(
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &d[14 + 20 + 8..],
    );
    n.send(&d).unwrap();
    let r = one(&mut n);
    assert_eq!(repr(&r).message_type, DhcpMessageType::Offer);
    assert_eq!(repr(&r).your_ip, Ipv4Addr::new(10, 0, 2, 16));
    // Not Ethernet (htype 6): dropped as malformed.
    b[1] = 6;
    n.send(&udp(
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &b,
    ))
    .unwrap();
    assert!(replies(&mut n).is_empty());
    assert_eq!(n.stats().malformed, 1);
}

#[test]
fn restrict_on_offers_no_router_and_no_dns() {
    let mut n = with(&[("restrict", "on")]);
    n.send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    let r = one(&mut n);
    assert_eq!(repr(&r).your_ip, GUEST_IP);
    assert_eq!(repr(&r).subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(repr(&r).router, None);
    assert_eq!(option(&r, 6), None, "no DNS server option");
    let mut open = net();
    open.send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    let r = one(&mut open);
    assert_eq!(repr(&r).router, Some(GW));
    assert_eq!(option(&r, 6).as_deref(), Some(&DNS.octets()[..]));
}

#[test]
fn search_list_is_compressed_and_boot_options_follow_bootfile() {
    let mut n = with(&[
        ("dnssearch", "eng.apple.com"),
        ("dnssearch", "marketing.apple.com"),
        ("hostname", "vm1"),
        ("tftp-server-name", "boot.example"),
        ("bootfile", "http://10.0.2.2/boot.efi"),
    ]);
    n.send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    let r = one(&mut n);
    // RFC 3397 section 4's example, byte for byte: the second name points at "apple".
    let mut want = b"\x03eng\x05apple\x03com\x00\x09marketing".to_vec();
    want.extend_from_slice(&[0xc0, 0x04]);
    assert_eq!(option(&r, 119), Some(want));
    assert_eq!(option(&r, 12).as_deref(), Some(&b"vm1"[..]));
    assert_eq!(option(&r, 66).as_deref(), Some(&b"boot.example"[..]));
    // An http:// boot file means UEFI HTTP boot: vendor class "HTTPClient" (libslirp).
    assert_eq!(option(&r, 60).as_deref(), Some(&b"HTTPClient"[..]));
    let mut plain = with(&[("bootfile", "pxelinux.0")]);
    plain
        .send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    assert_eq!(option(&one(&mut plain), 60), None);
}

#[test]
fn a_qemu_classful_net_gives_qemus_addresses() {
    // net=192.168.76.0 without a mask is 192.168.0.0/16 in QEMU, with the host at
    // 192.168.2.2 and the pool from 192.168.2.15.
    let mut n = with(&[("net", "192.168.76.0")]);
    n.send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    let r = one(&mut n);
    assert_eq!(repr(&r).your_ip, Ipv4Addr::new(192, 168, 2, 15));
    assert_eq!(repr(&r).subnet_mask, Some(Ipv4Addr::new(255, 255, 0, 0)));
    assert_eq!(repr(&r).router, Some(Ipv4Addr::new(192, 168, 2, 2)));
    assert_eq!(option(&r, 6).as_deref(), Some(&[192, 168, 2, 3][..]), "DNS");
}

#[test]
fn the_longest_accepted_options_fit_one_frame_and_longer_search_lists_are_refused() {
    let long = |c: char, n: usize| c.to_string().repeat(n);
    let bootfile = format!("http://{}", long('b', 120));
    // 20-byte labels with nothing in common: no compression helps.
    let domains: Vec<String> = (0..40)
        .map(|i| format!("{}{i:02}", long('d', 18)))
        .collect();
    let mut opts: Vec<(String, String)> = vec![
        ("hostname".into(), long('h', 255)),
        ("domainname".into(), long('m', 255)),
        ("tftp-server-name".into(), long('t', 255)),
        ("bootfile".into(), bootfile),
    ];
    // The most domains the server accepts with everything else at its maximum.
    let mut accepted = 0;
    for d in &domains {
        opts.push(("dnssearch".into(), d.clone()));
        match UserConfig::from_opts(&opts) {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert_eq!(e.key.as_deref(), Some("dnssearch"));
                assert!(e.to_string().contains("1500-byte frame"), "{e}");
                opts.pop();
                break;
            }
        }
    }
    assert!((5..40).contains(&accepted), "{accepted} domains accepted");
    let mut n = UserNet::new(UserConfig::from_opts(&opts).unwrap()).unwrap();
    n.send(&msg(mac(1), DhcpMessageType::Discover, None, None))
        .unwrap();
    let frames = drain(&mut n);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].len() <= 1514, "{} bytes", frames[0].len());
    let raw = parse_udp(&parse_ip4(&frames[0]).unwrap()).2;
    let search: Vec<u8> = DhcpPacket::new_checked(&raw[..])
        .unwrap()
        .options()
        .filter(|o| o.kind == 119)
        .flat_map(|o| o.data.to_vec())
        .collect();
    assert_eq!(search.len(), accepted * 21 + accepted, "every name, whole");
}
