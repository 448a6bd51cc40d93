//! GSO frames (generic segmentation offload) and the software segmenter.
//!
//! A GSO frame is one Ethernet frame carrying a TCP segment whose payload may be far
//! larger than the link MTU (up to 64 KiB), together with the virtio-net header
//! ([`VirtioNetHdr`]) that says how to cut it: `gso_type` ([`VirtioNetHdr::GSO_TCPV4`] or
//! [`VirtioNetHdr::GSO_TCPV6`]), `gso_size` (the TCP payload of every segment but the
//! last: the MSS), `hdr_len` (Ethernet + IP + TCP headers) and, with
//! [`VirtioNetHdr::F_NEEDS_CSUM`], where the TCP checksum is (`csum_start`,
//! `csum_offset`), which holds only the pseudo-header sum, as Linux's
//! `CHECKSUM_PARTIAL`. The super-frame's own IPv4 total length / IPv6 payload length cover
//! the whole super-frame.
//!
//! A tap with `vnet_hdr=on` takes such a frame in one write: the kernel segments it only
//! if it has to (a receiver in the tap's namespace takes it whole, as after GRO). Every
//! other consumer gets what [`segment`] makes of it: the frames a sender without offload
//! would have sent — IPv4 total length and header checksum, IPv6 payload length, TCP
//! sequence number and full checksum per segment, FIN and PSH on the last segment only,
//! CWR on the first only, the IPv4 identification counting up per segment unless the
//! datagram has DF set (RFC 6864: the identification of an atomic datagram carries no
//! meaning, so it stays as it is, like Linux's fixed-id GSO), and frames shorter than
//! the Ethernet minimum padded to it.
//!
//! Frames given to the segmenter are checked, never trusted: a header or frame that does
//! not describe one TCP segment is refused with a [`GsoError`], never a panic; the work is
//! bounded by the frame's length.

use std::fmt;
use std::io;

use crate::backend::MIN_FRAME_LEN;
use crate::vnet::VirtioNetHdr;

const ETH_HDR: usize = 14;
const IPV4_MIN: usize = 20;
const IPV6_HDR: usize = 40;
const TCP_MIN: usize = 20;
/// Where the checksum is in a TCP header.
pub const TCP_CSUM_OFFSET: u16 = 16;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const PROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
/// `VIRTIO_NET_HDR_GSO_ECN`: the segments carry ECN (CWR handled per segment).
pub const GSO_ECN: u8 = 0x80;

/// Why a frame could not be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// The header asks for work the segmenter does not do (UDP fragmentation offload, an
    /// unknown GSO type).
    Unsupported(u8),
    /// The frame is not what the header says (not TCP over the header's IP version,
    /// lengths that do not add up, a zero segment size, checksum position outside the
    /// frame).
    Malformed(&'static str),
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GsoError::Unsupported(t) => write!(f, "GSO type {t} is not segmented in software"),
            GsoError::Malformed(why) => write!(f, "GSO frame malformed: {why}"),
        }
    }
}

impl std::error::Error for GsoError {}

impl From<GsoError> for io::Error {
    fn from(e: GsoError) -> io::Error {
        let kind = match e {
            GsoError::Unsupported(_) => io::ErrorKind::Unsupported,
            GsoError::Malformed(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// Where the layers of a TCP frame are: offsets from the start of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLayout {
    /// Start of the IP header.
    pub l3: usize,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// Start of the TCP header.
    pub l4: usize,
    /// End of the TCP header: start of the payload.
    pub payload: usize,
    /// End of the IP packet (Ethernet padding excluded).
    pub end: usize,
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Finds the layers of an Ethernet frame carrying one TCP segment over IPv4 (not a
/// fragment) or IPv6 (TCP as the first next header), with an optional 802.1Q tag.
pub fn tcp_layout(frame: &[u8]) -> Result<TcpLayout, GsoError> {
    let bad = GsoError::Malformed;
    if frame.len() < ETH_HDR {
        return Err(bad("shorter than an Ethernet header"));
    }
    let (l3, ethertype) = match be16(frame, 12) as u16 {
        ETHERTYPE_VLAN if frame.len() >= ETH_HDR + 4 => (ETH_HDR + 4, be16(frame, 16) as u16),
        t => (ETH_HDR, t),
    };
    let (ipv6, l4, end) = match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(l3..l3 + IPV4_MIN).ok_or(bad("IPv4 header cut"))?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ihl < IPV4_MIN || ip[9] != PROTO_TCP {
                return Err(bad("not TCP over IPv4"));
            }
            let frag = be16(ip, 6);
            if frag & 0x3fff != 0 {
                return Err(bad("an IPv4 fragment"));
            }
            (false, l3 + ihl, l3 + be16(ip, 2))
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(l3..l3 + IPV6_HDR).ok_or(bad("IPv6 header cut"))?;
            if ip[0] >> 4 != 6 || ip[6] != PROTO_TCP {
                return Err(bad("not TCP over IPv6"));
            }
            (true, l3 + IPV6_HDR, l3 + IPV6_HDR + be16(ip, 4))
        }
        _ => return Err(bad("neither IPv4 nor IPv6")),
    };
    if end > frame.len() || l4 + TCP_MIN > end {
        return Err(bad("IP length and frame length disagree"));
    }
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    if doff < TCP_MIN || l4 + doff > end {
        return Err(bad("TCP data offset outside the packet"));
    }
    Ok(TcpLayout {
        l3,
        ipv6,
        l4,
        payload: l4 + doff,
        end,
    })
}

/// Adds `data` to a ones'-complement sum as big-endian 16-bit words (an odd last byte
/// padded with zero).
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = words.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The folded (not complemented) TCP pseudo-header sum of the packet at `lay` for a TCP
/// length of `tcp_len` bytes: what a `CHECKSUM_PARTIAL` TCP checksum field holds.
fn pseudo_sum(frame: &[u8], lay: &TcpLayout, tcp_len: usize) -> u64 {
    let (addrs, len) = if lay.ipv6 {
        (&frame[lay.l3 + 8..lay.l3 + 40], tcp_len as u64)
    } else {
        (&frame[lay.l3 + 12..lay.l3 + 20], tcp_len as u64)
    };
    sum(0, addrs) + u64::from(PROTO_TCP) + (len >> 16) + (len & 0xffff)
}

/// Rewrites the IPv4 header checksum.
fn fill_ipv4_checksum(frame: &mut [u8], lay: &TcpLayout) {
    let (l3, l4) = (lay.l3, lay.l4);
    frame[l3 + 10..l3 + 12].fill(0);
    let c = !fold(sum(0, &frame[l3..l4]));
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// Turns a whole TCP frame (Ethernet, IPv4 or IPv6, TCP header and a payload of any
/// length up to the IP maximum, IP lengths covering it all) into a GSO frame cut into
/// `mss`-byte segments: writes the pseudo-header sum into the TCP checksum field and
/// returns the virtio-net header describing it. The IPv4 header checksum must already
/// be right.
pub fn prepare_tcp(frame: &mut [u8], mss: u16) -> Result<VirtioNetHdr, GsoError> {
    if mss == 0 {
        return Err(GsoError::Malformed("zero segment size"));
    }
    let lay = tcp_layout(frame)?;
    let seed = fold(pseudo_sum(frame, &lay, lay.end - lay.l4));
    let at = lay.l4 + usize::from(TCP_CSUM_OFFSET);
    frame[at..at + 2].copy_from_slice(&seed.to_be_bytes());
    let narrow = |v: usize| u16::try_from(v).map_err(|_| GsoError::Malformed("headers too long"));
    Ok(VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        gso_type: if lay.ipv6 {
            VirtioNetHdr::GSO_TCPV6
        } else {
            VirtioNetHdr::GSO_TCPV4
        },
        hdr_len: narrow(lay.payload)?,
        gso_size: mss,
        csum_start: narrow(lay.l4)?,
        csum_offset: TCP_CSUM_OFFSET,
    })
}

/// Completes a `F_NEEDS_CSUM` checksum in place: the ones'-complement sum of everything
/// from `csum_start` to the end of the frame (the field seeded with the pseudo-header
/// sum), written at `csum_start + csum_offset`; a zero result is sent as `0xffff`.
pub fn fill_partial_checksum(hdr: &VirtioNetHdr, frame: &mut [u8]) -> Result<(), GsoError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if start >= frame.len() || at + 2 > frame.len() {
        return Err(GsoError::Malformed("checksum position outside the frame"));
    }
    let c = match !fold(sum(0, &frame[start..])) {
        0 => 0xffff,
        c => c,
    };
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Cuts one frame with its virtio-net header into the frames a peer without offload can
/// take, calling `out` for each in order, and returns how many there were. A plain
/// header passes the frame through; `F_NEEDS_CSUM` alone completes the checksum; TCP GSO
/// makes `ceil(payload / gso_size)` segments (one when the payload fits or is empty).
/// Nothing is passed to `out` when the frame is refused.
pub fn segment(
    hdr: &VirtioNetHdr,
    frame: &[u8],
    out: &mut dyn FnMut(&[u8]),
) -> Result<usize, GsoError> {
    let gso_type = hdr.gso_type & !GSO_ECN;
    if gso_type == VirtioNetHdr::GSO_NONE {
        if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM == 0 {
            out(frame);
        } else {
            let mut f = frame.to_vec();
            fill_partial_checksum(hdr, &mut f)?;
            out(&f);
        }
        return Ok(1);
    }
    let want_v6 = match gso_type {
        VirtioNetHdr::GSO_TCPV4 => false,
        VirtioNetHdr::GSO_TCPV6 => true,
        t => return Err(GsoError::Unsupported(t)),
    };
    let lay = tcp_layout(frame)?;
    if lay.ipv6 != want_v6 {
        return Err(GsoError::Malformed("GSO type and IP version disagree"));
    }
    let mss = usize::from(hdr.gso_size);
    if mss == 0 {
        return Err(GsoError::Malformed("zero segment size"));
    }
    let payload = &frame[lay.payload..lay.end];
    let count = payload.len().div_ceil(mss).max(1);
    let heads = &frame[..lay.payload];
    let ip_id = be16(frame, lay.l3 + 4) as u16;
    let fixed_id = lay.ipv6 || be16(frame, lay.l3 + 6) & 0x4000 != 0;
    let seq0 = u32::from_be_bytes(frame[lay.l4 + 4..lay.l4 + 8].try_into().expect("4 bytes"));
    let flags = frame[lay.l4 + 13];
    let mut buf = Vec::with_capacity((heads.len() + mss).max(MIN_FRAME_LEN));
    for i in 0..count {
        let chunk = payload.get(i * mss..).unwrap_or(&[]);
        let chunk = &chunk[..chunk.len().min(mss)];
        buf.clear();
        buf.extend_from_slice(heads);
        buf.extend_from_slice(chunk);
        let ip_len = buf.len() - lay.l3;
        if lay.ipv6 {
            let len = (ip_len - IPV6_HDR) as u16;
            buf[lay.l3 + 4..lay.l3 + 6].copy_from_slice(&len.to_be_bytes());
        } else {
            buf[lay.l3 + 2..lay.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            if !fixed_id {
                let id = ip_id.wrapping_add(i as u16);
                buf[lay.l3 + 4..lay.l3 + 6].copy_from_slice(&id.to_be_bytes());
            }
            fill_ipv4_checksum(&mut buf, &lay);
        }
        let seq = seq0.wrapping_add((i * mss) as u32);
        buf[lay.l4 + 4..lay.l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut f = flags;
        if i + 1 < count {
            f &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            f &= !TCP_CWR;
        }
        buf[lay.l4 + 13] = f;
        let csum = lay.l4 + usize::from(TCP_CSUM_OFFSET);
        buf[csum..csum + 2].fill(0);
        let tcp_len = buf.len() - lay.l4;
        let c = !fold(pseudo_sum(&buf, &lay, tcp_len) + sum(0, &buf[lay.l4..]));
        buf[csum..csum + 2].copy_from_slice(&c.to_be_bytes());
        if buf.len() < MIN_FRAME_LEN {
            buf.resize(MIN_FRAME_LEN, 0);
        }
        out(&buf);
    }
    Ok(count)
}

/// [`segment`] into a vector of frames.
pub fn segment_to_vec(hdr: &VirtioNetHdr, frame: &[u8]) -> Result<Vec<Vec<u8>>, GsoError> {
    let mut v = Vec::new();
    segment(hdr, frame, &mut |f| v.push(f.to_vec()))?;
    Ok(v)
}

/// A GSO frame for tests of the code that moves them (queue, hub).
#[cfg(test)]
pub(crate) fn test_frame(payload: usize, mss: u16) -> (VirtioNetHdr, Vec<u8>) {
    let mut f = vec![0u8; 54 + payload];
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    f[20] = 0x40;
    f[22] = 64;
    f[23] = PROTO_TCP;
    f[46] = 0x50;
    f[47] = 0x18;
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let h = prepare_tcp(&mut f, mss).expect("a well-formed frame");
    (h, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC4: [u8; 4] = [10, 0, 2, 2];
    const DST4: [u8; 4] = [10, 0, 2, 15];
    const SRC6: [u8; 16] = [0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const DST6: [u8; 16] = [0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    /// Internet checksum the obvious way, independent of the code under test: 16-bit
    /// words summed with end-around carry.
    fn naive_csum(parts: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = parts.concat();
        let mut s: u32 = 0;
        for i in (0..bytes.len()).step_by(2) {
            let hi = u32::from(bytes[i]) << 8;
            let lo = bytes.get(i + 1).map_or(0, |b| u32::from(*b));
            s += hi | lo;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[derive(Clone, Debug)]
    struct Seg {
        v6: bool,
        id: u16,
        df: bool,
        seq: u32,
        flags: u8,
        /// TCP options (a multiple of 4 bytes).
        opts: Vec<u8>,
    }

    /// The frame a sender without offload sends: full checksums, padded to 60 bytes.
    fn frame(s: &Seg, payload: &[u8]) -> Vec<u8> {
        let tcp_len = 20 + s.opts.len() + payload.len();
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&5555u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&s.seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        tcp[12] = (((20 + s.opts.len()) / 4) as u8) << 4;
        tcp[13] = s.flags;
        tcp[14..16].copy_from_slice(&4321u16.to_be_bytes());
        tcp.extend_from_slice(&s.opts);
        tcp.extend_from_slice(payload);
        let mut f = vec![2, 0, 0, 0, 0, 1, 0x52, 0x55, 10, 0, 2, 2];
        if s.v6 {
            f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            ip.extend_from_slice(&[PROTO_TCP, 64]);
            ip.extend_from_slice(&SRC6);
            ip.extend_from_slice(&DST6);
            let plen = (tcp_len as u32).to_be_bytes();
            let c = naive_csum(&[&SRC6, &DST6, &plen, &[0, 0, 0, PROTO_TCP], &tcp]);
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            ip.extend_from_slice(&s.id.to_be_bytes());
            ip.extend_from_slice(&(if s.df { 0x4000u16 } else { 0 }).to_be_bytes());
            ip.extend_from_slice(&[64, PROTO_TCP, 0, 0]);
            ip.extend_from_slice(&SRC4);
            ip.extend_from_slice(&DST4);
            let c = naive_csum(&[&ip]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let len = (tcp_len as u16).to_be_bytes();
            let c = naive_csum(&[&SRC4, &DST4, &[0, PROTO_TCP], &len, &tcp]);
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        f.extend_from_slice(&tcp);
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }

    /// The frames that would have been sent for `payload` cut at `mss`.
    fn expected(s: &Seg, payload: &[u8], mss: usize) -> Vec<Vec<u8>> {
        let n = payload.len().div_ceil(mss).max(1);
        (0..n)
            .map(|i| {
                let chunk =
                    &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
                let mut flags = s.flags;
                if i + 1 < n {
                    flags &= !(TCP_FIN | TCP_PSH);
                }
                if i > 0 {
                    flags &= !TCP_CWR;
                }
                let id = if s.df || s.v6 {
                    s.id
                } else {
                    s.id.wrapping_add(i as u16)
                };
                let seg = Seg {
                    id,
                    seq: s.seq.wrapping_add((i * mss) as u32),
                    flags,
                    ..s.clone()
                };
                frame(&seg, chunk)
            })
            .collect()
    }

    /// The super-frame: one frame with the whole payload, made a GSO frame.
    fn super_frame(s: &Seg, payload: &[u8], mss: u16) -> (VirtioNetHdr, Vec<u8>) {
        let mut f = frame(s, payload);
        let lay = tcp_layout(&f).unwrap();
        f.truncate(lay.end);
        let h = prepare_tcp(&mut f, mss).unwrap();
        (h, f)
    }

    fn seg(v6: bool) -> Seg {
        Seg {
            v6,
            id: 7,
            df: true,
            seq: 0xffff_f000,
            flags: 0x18,
            opts: Vec::new(),
        }
    }

    #[test]
    fn header_describes_the_frame() {
        let (h, f) = super_frame(&seg(false), &[1; 3000], 1460);
        assert_eq!(h.gso_type, VirtioNetHdr::GSO_TCPV4);
        assert_eq!(h.flags, VirtioNetHdr::F_NEEDS_CSUM);
        assert_eq!(
            (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
            (54, 1460, 34, 16)
        );
        assert_eq!(f.len(), 54 + 3000);
        let (h6, _) = super_frame(&seg(true), &[1; 3000], 1440);
        assert_eq!(h6.gso_type, VirtioNetHdr::GSO_TCPV6);
        assert_eq!((h6.hdr_len, h6.csum_start), (74, 54));
    }

    #[test]
    fn ipv4_cut_at_mss_with_sequence_flags_and_checksums() {
        let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let s = Seg {
            flags: 0x18 | TCP_FIN,
            ..seg(false)
        };
        let (h, f) = super_frame(&s, &payload, 1460);
        let got = segment_to_vec(&h, &f).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), 1514);
        assert_eq!(got[2].len(), 54 + 4000 - 2 * 1460);
        // Sequence wraps past 2^32 inside the super-frame.
        assert_eq!(
            &got[2][38..42],
            &0xffff_f000u32.wrapping_add(2920).to_be_bytes()
        );
        assert_eq!(got[0][47], 0x10, "no PSH/FIN before the last segment");
        assert_eq!(got[2][47], 0x19, "PSH and FIN on the last");
        assert_eq!(got, expected(&s, &payload, 1460));
    }

    #[test]
    fn ipv4_without_df_counts_the_id_up() {
        let s = Seg {
            df: false,
            id: 0xffff,
            ..seg(false)
        };
        let (h, f) = super_frame(&s, &[9; 3000], 1000);
        let got = segment_to_vec(&h, &f).unwrap();
        let ids: Vec<u16> = got
            .iter()
            .map(|g| u16::from_be_bytes([g[18], g[19]]))
            .collect();
        assert_eq!(ids, vec![0xffff, 0, 1]);
        assert_eq!(got, expected(&s, &[9; 3000], 1000));
    }

    #[test]
    fn ipv6_and_options_and_cwr_on_first_only() {
        let s = Seg {
            flags: 0x10 | TCP_CWR,
            opts: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            ..seg(true)
        };
        let payload = vec![0xa5; 2881];
        let (h, f) = super_frame(&s, &payload, 1428);
        let got = segment_to_vec(&h, &f).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0][54 + 13] & TCP_CWR, TCP_CWR);
        assert_eq!(got[1][54 + 13] & TCP_CWR, 0);
        assert_eq!(got, expected(&s, &payload, 1428));
    }

    #[test]
    fn small_payload_is_one_padded_frame() {
        let s = seg(false);
        let (h, f) = super_frame(&s, &[1, 2, 3], 1460);
        let got = segment_to_vec(&h, &f).unwrap();
        assert_eq!(got, vec![frame(&s, &[1, 2, 3])]);
        assert_eq!(got[0].len(), 60);
        let (h, f) = super_frame(&s, &[], 1460);
        assert_eq!(segment_to_vec(&h, &f).unwrap(), vec![frame(&s, &[])]);
    }

    #[test]
    fn needs_csum_without_gso_completes_the_checksum() {
        let s = seg(false);
        let whole = frame(&s, &[7; 100]);
        let (mut h, f) = super_frame(&s, &[7; 100], 1460);
        h.gso_type = VirtioNetHdr::GSO_NONE;
        assert_eq!(segment_to_vec(&h, &f).unwrap(), vec![whole.clone()]);
        let plain = VirtioNetHdr::default();
        assert_eq!(segment_to_vec(&plain, &whole).unwrap(), vec![whole]);
    }

    #[test]
    fn refuses_what_it_cannot_cut() {
        let s = seg(false);
        let (h, f) = super_frame(&s, &[1; 3000], 1460);
        let mut calls = 0;
        let mut count = |_: &[u8]| calls += 1;
        let udp = VirtioNetHdr {
            gso_type: VirtioNetHdr::GSO_UDP,
            ..h
        };
        assert_eq!(segment(&udp, &f, &mut count), Err(GsoError::Unsupported(3)));
        let v6 = VirtioNetHdr {
            gso_type: VirtioNetHdr::GSO_TCPV6,
            ..h
        };
        assert!(segment(&v6, &f, &mut count).is_err());
        let zero = VirtioNetHdr { gso_size: 0, ..h };
        assert!(segment(&zero, &f, &mut count).is_err());
        assert!(
            segment(&h, &f[..f.len() - 1], &mut count).is_err(),
            "IP length too long"
        );
        assert!(segment(&h, &f[..40], &mut count).is_err());
        let far = VirtioNetHdr {
            gso_type: 0,
            csum_start: 3000,
            ..h
        };
        assert!(segment(&far, &f[..100], &mut count).is_err());
        let mut frag = f.clone();
        frag[20] |= 0x20;
        assert!(segment(&h, &frag, &mut count).is_err());
        assert_eq!(calls, 0);
        let e: io::Error = GsoError::Unsupported(3).into();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn vlan_tagged_frames_are_cut_too() {
        let s = seg(false);
        let (h, f) = super_frame(&s, &[3; 2000], 1000);
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0, 0, 5]);
        tagged.extend_from_slice(&f[12..]);
        let h = VirtioNetHdr {
            hdr_len: h.hdr_len + 4,
            csum_start: h.csum_start + 4,
            ..h
        };
        let got = segment_to_vec(&h, &tagged).unwrap();
        let want: Vec<Vec<u8>> = expected(&s, &[3; 2000], 1000)
            .into_iter()
            .map(|e| [&e[..12], &[0x81, 0, 0, 5][..], &e[12..]].concat())
            .collect();
        assert_eq!(got, want);
    }

    proptest! {
        /// Segmenting a super-frame gives exactly the frames a sender without offload
        /// would have sent for the same payload.
        #[test]
        fn segmenting_equals_the_frames_that_would_have_been_sent(
            v6 in any::<bool>(),
            df in any::<bool>(),
            id in any::<u16>(),
            seq in any::<u32>(),
            flags in any::<u8>(),
            opt_words in 0usize..4,
            len in 0usize..20_000,
            mss in 1u16..2000,
            salt in any::<u8>(),
        ) {
            let s = Seg { v6, id, df, seq, flags, opts: vec![1; opt_words * 4] };
            let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect();
            let (h, f) = super_frame(&s, &payload, mss);
            let got = segment_to_vec(&h, &f).unwrap();
            prop_assert_eq!(got, expected(&s, &payload, usize::from(mss)));
        }

        /// Hostile headers and frames never panic, and never make more than one frame
        /// per payload byte (plus one).
        #[test]
        fn arbitrary_input_never_panics(
            hdr in any::<[u8; 10]>(),
            frame in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let h = VirtioNetHdr::from_bytes(&hdr).unwrap();
            let mut n = 0usize;
            if let Ok(k) = segment(&h, &frame, &mut |_| n += 1) {
                prop_assert_eq!(k, n);
                prop_assert!(n <= frame.len() + 1);
            }
        }
    }
}
