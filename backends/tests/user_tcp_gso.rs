//! Host→guest TCP through the user network when its peer takes GSO frames (a tap with
//! `vnet_hdr`, told through `set_peer_accepts_gso`), over IPv4 and IPv6: 8 MiB from a
//! host server on the loopback to a guest endpoint that takes what `recv_gso` hands out
//! and acknowledges each frame once (as a Linux receiver does after GRO). Checked: the
//! data leaves in frames of more than one segment, cut at the guest's MSS (not ours),
//! never beyond the window the guest advertised nor IP's 64 KiB; every segment the
//! software segmenter cuts from them is a valid TCP segment (checksums verified) of at
//! most the MSS in a frame of at most 1514 bytes; the bytes arrive in order, then the
//! FIN. Meanwhile `recv` on a second network with the same peer setting hands out only
//! ordinary frames. Bounded in rounds and time.
#![cfg(feature = "user")]

mod user_util;

use std::io::Write;
use std::net::{IpAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::*;
use user_util::*;
use vm_nic_backends::gso;
use vm_nic_backends::{NetBackend, VirtioNetHdr};

const TOTAL: usize = 8 << 20;
/// The guest's MSS: smaller than the NAT's own, so a frame cut at the NAT's shows.
const MSS: u16 = 1000;
const GUEST_WS: u8 = 7;
/// The guest's receive buffer: the window it advertises when it has read everything.
const RBUF: u32 = 256 * 1024;
const LIMIT: Duration = Duration::from_secs(60);
const MAX_ROUNDS: usize = 2_000_000;

fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// One TCP segment to the guest, its checksum verified over its family's pseudo-header.
#[derive(Debug)]
struct Seg {
    syn: bool,
    fin: bool,
    rst: bool,
    seq: u32,
    ack: Option<u32>,
    ws: Option<u8>,
    payload: Vec<u8>,
    /// Ethernet frame length.
    frame_len: usize,
}

fn parse(f: &[u8], dport: u16) -> Option<Seg> {
    let e = EthernetFrame::new_checked(f).ok()?;
    let (src, dst, data): (IpAddress, IpAddress, Vec<u8>) = match e.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.payload().to_vec(),
            )
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(e.payload()).unwrap();
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.payload().to_vec(),
            )
        }
        _ => return None,
    };
    let p = TcpPacket::new_checked(&data[..]).unwrap();
    if p.dst_port() != dport {
        return None;
    }
    assert!(p.verify_checksum(&src, &dst), "TCP checksum");
    let r = TcpRepr::parse(&p, &src, &dst, &ChecksumCapabilities::default()).unwrap();
    Some(Seg {
        syn: p.syn(),
        fin: p.fin(),
        rst: p.rst(),
        seq: p.seq_number().0 as u32,
        ack: p.ack().then(|| p.ack_number().0 as u32),
        ws: r.window_scale,
        payload: p.payload().to_vec(),
        frame_len: f.len(),
    })
}

/// The guest's end of the connection.
struct Guest {
    local: (IpAddr, u16),
    remote: (IpAddr, u16),
    iss: u32,
    rcv_nxt: u32,
    /// Right edge of the window last advertised.
    adv_edge: u32,
    got: usize,
    fin: bool,
    out: Vec<Vec<u8>>,
}

impl Guest {
    fn frame(&self, control: TcpControl, ack: bool, wnd: u16) -> Vec<u8> {
        let syn = control == TcpControl::Syn;
        let repr = TcpRepr {
            src_port: self.local.1,
            dst_port: self.remote.1,
            control,
            seq_number: TcpSeqNumber(self.iss.wrapping_add(u32::from(!syn)) as i32),
            ack_number: ack.then_some(TcpSeqNumber(self.rcv_nxt as i32)),
            window_len: wnd,
            window_scale: syn.then_some(GUEST_WS),
            max_seg_size: syn.then_some(MSS),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut p[..]),
            &self.local.0.into(),
            &self.remote.0.into(),
            &ChecksumCapabilities::default(),
        );
        match (self.local.0, self.remote.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, IpProtocol::Tcp, &p),
            (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_frame(s, d, IpProtocol::Tcp, 64, &p),
            _ => unreachable!("one family"),
        }
    }

    /// ACKs everything received, advertising the whole (drained) buffer.
    fn ack(&mut self) {
        self.adv_edge = self.rcv_nxt.wrapping_add(RBUF);
        let f = self.frame(TcpControl::None, true, (RBUF >> GUEST_WS) as u16);
        self.out.push(f);
    }

    /// Takes the in-order segments cut from one frame; ACKs once per frame.
    fn on_frame(&mut self, segs: &[Seg]) {
        for s in segs {
            assert!(!s.rst, "the NAT reset the connection");
            if s.syn {
                self.rcv_nxt = s.seq.wrapping_add(1);
                assert_eq!(s.ack, Some(self.iss.wrapping_add(1)));
                assert!(s.ws.is_some());
                continue;
            }
            assert_eq!(s.seq, self.rcv_nxt, "in order: nothing is lost here");
            for (k, b) in s.payload.iter().enumerate() {
                assert_eq!(*b, byte_at(self.got + k), "byte {} corrupted", self.got + k);
            }
            self.got += s.payload.len();
            self.rcv_nxt = self.rcv_nxt.wrapping_add(s.payload.len() as u32);
            if s.fin {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.fin = true;
            }
        }
        if !segs.is_empty() {
            self.ack();
        }
    }
}

#[derive(Default, Debug)]
struct Seen {
    gso_frames: usize,
    max_segs: usize,
    plain_data_frames: usize,
}

/// Moves `TOTAL` bytes from a host server at `listen` to the guest at `local`, which
/// connects to `remote`; `plain` pulls with `recv` instead of `recv_gso`.
fn transfer(listen: &str, local: IpAddr, remote: IpAddr, plain: bool) -> Seen {
    let l = TcpListener::bind(listen).unwrap();
    let port = l.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let data: Vec<u8> = (0..TOTAL).map(byte_at).collect();
        s.write_all(&data)
    });
    let mut n = net();
    n.set_peer_accepts_gso(true);
    let mut g = Guest {
        local: (local, 40_123),
        remote: (remote, port),
        iss: 0x7fff_fff0,
        rcv_nxt: 0,
        adv_edge: 0,
        got: 0,
        fin: false,
        out: Vec::new(),
    };
    let syn = g.frame(TcpControl::Syn, false, 65535);
    g.out.push(syn);
    let want = if local.is_ipv4() {
        VirtioNetHdr::GSO_TCPV4
    } else {
        VirtioNetHdr::GSO_TCPV6
    };
    let mut seen = Seen::default();
    let mut buf = vec![0u8; 70_000];
    let end = Instant::now() + LIMIT;
    for _ in 0..MAX_ROUNDS {
        if g.fin || Instant::now() > end {
            break;
        }
        for f in std::mem::take(&mut g.out) {
            n.send(&f).unwrap();
        }
        n.poll(Instant::now()).unwrap();
        for _ in 0..256 {
            let got = if plain {
                n.recv(&mut buf)
                    .unwrap()
                    .map(|len| (VirtioNetHdr::default(), len))
            } else {
                n.recv_gso(&mut buf).unwrap()
            };
            let Some((h, len)) = got else { break };
            let frame = &buf[..len];
            let segs: Vec<Seg> = if h.is_plain() {
                parse(frame, g.local.1).into_iter().collect()
            } else {
                assert!(!plain, "recv handed out a GSO frame");
                assert_eq!(h.gso_type, want);
                assert_eq!(h.gso_size, MSS, "cut at the guest's MSS");
                assert_eq!(h.flags, VirtioNetHdr::F_NEEDS_CSUM);
                assert!(len <= 14 + 65535, "{len}-byte frame");
                let cut = gso::segment_to_vec(&h, frame).unwrap();
                cut.iter().filter_map(|f| parse(f, g.local.1)).collect()
            };
            for s in &segs {
                assert!(s.frame_len <= 1514, "{}-byte segment", s.frame_len);
                assert!(s.payload.len() <= usize::from(MSS));
            }
            let data: usize = segs.iter().map(|s| s.payload.len()).sum();
            if data > 0 && !segs[0].syn {
                // Never beyond the right edge the guest advertised.
                let room = g.adv_edge.wrapping_sub(segs[0].seq);
                assert!(
                    data <= room as usize,
                    "{data} bytes into a {room}-byte window"
                );
            }
            if !h.is_plain() {
                seen.gso_frames += 1;
                seen.max_segs = seen.max_segs.max(segs.len());
            } else if data > 0 {
                seen.plain_data_frames += 1;
            }
            g.on_frame(&segs);
        }
        if g.out.is_empty() && !g.fin {
            let mut pfd = libc::pollfd {
                fd: n.poll_fd().unwrap(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; bounded 10 ms wait.
            unsafe { libc::poll(&mut pfd, 1, 10) };
        }
    }
    assert!(
        g.fin,
        "FIN not reached: {} of {TOTAL} bytes, {seen:?}",
        g.got
    );
    assert_eq!(g.got, TOTAL);
    server.join().unwrap().unwrap();
    seen
}

#[test]
fn ipv4_data_arrives_in_gso_frames_cut_at_the_guest_mss() {
    let seen = transfer("127.0.0.1:0", GUEST_IP.into(), GW.into(), false);
    assert!(seen.gso_frames > 0, "{seen:?}");
    assert!(
        seen.max_segs > 32,
        "frames carry tens of segments: {seen:?}"
    );
}

#[test]
fn ipv6_data_arrives_in_gso_frames_cut_at_the_guest_mss() {
    if TcpListener::bind("[::1]:0").is_err() {
        panic!("this test needs IPv6 on the loopback (::1); check `ip -6 addr show lo`");
    }
    let seen = transfer("[::1]:0", GUEST_V6.into(), HOST_V6.into(), false);
    assert!(seen.gso_frames > 0, "{seen:?}");
    assert!(seen.max_segs > 32, "{seen:?}");
}

#[test]
fn recv_hands_out_only_ordinary_frames_even_with_a_gso_peer() {
    let seen = transfer("127.0.0.1:0", GUEST_IP.into(), GW.into(), true);
    assert_eq!(seen.gso_frames, 0);
    assert!(seen.plain_data_frames >= TOTAL / usize::from(MSS));
}
