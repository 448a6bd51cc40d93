//! C+ offloads: IPv4 header and TCP/UDP checksum insertion, TCP segmentation (large
//! send), VLAN tag insertion and removal, and the receive checksum verdict.
//!
//! Every length comes from the guest and is checked against the frame actually posted
//! before it is used (CVE-2015-5165: QEMU trusted IHL and the IP total length and leaked
//! heap memory onto the wire). A frame that fails a check is sent as posted, unmodified.

/// EtherType of IPv4.
const ETH_P_IP: u16 = 0x0800;
/// EtherType of an 802.1Q tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// IP protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Where the headers of an IPv4 frame are, every field validated against the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Offset of the IP header (14, or 18 behind a VLAN tag).
    pub l3: usize,
    /// IP header length in bytes (IHL * 4, at least 20).
    pub ihl: usize,
    /// IP total length (header + payload), at most what the frame holds after `l3`.
    pub total: usize,
    /// IP protocol.
    pub proto: u8,
    /// True when the datagram is a fragment (MF set or non-zero offset).
    pub fragment: bool,
}

impl Ipv4 {
    /// Offset of the L4 header.
    pub fn l4(&self) -> usize {
        self.l3 + self.ihl
    }

    /// Length of the L4 header + payload.
    pub fn l4_len(&self) -> usize {
        self.total - self.ihl
    }

    /// End of the IP datagram inside the frame (padding may follow).
    pub fn end(&self) -> usize {
        self.l3 + self.total
    }
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Parses an Ethernet frame carrying IPv4, optionally behind one 802.1Q tag. `None` when it
/// is not IPv4 or any length field disagrees with the frame.
pub fn parse_ipv4(frame: &[u8]) -> Option<Ipv4> {
    if frame.len() < 14 {
        return None;
    }
    let mut l3 = 14;
    let mut ethertype = be16(frame, 12);
    if ethertype == ETH_P_8021Q {
        if frame.len() < 18 {
            return None;
        }
        ethertype = be16(frame, 16);
        l3 = 18;
    }
    if ethertype != ETH_P_IP || frame.len() < l3 + 20 {
        return None;
    }
    let vihl = frame[l3];
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = (vihl & 0xF) as usize * 4;
    let total = be16(frame, l3 + 2) as usize;
    if ihl < 20 || total < ihl || l3 + total > frame.len() {
        log::debug!(
            "rtl8139: offload skipped: IHL {ihl} / total length {total} do not fit a {}-byte frame",
            frame.len()
        );
        return None;
    }
    let frag = be16(frame, l3 + 6);
    Some(Ipv4 {
        l3,
        ihl,
        total,
        proto: frame[l3 + 9],
        fragment: frag & 0x3FFF != 0,
    })
}

/// One's-complement sum of `data` added to `sum` (not folded; congruent mod 0xFFFF to
/// adding every big-endian word, and zero only when that is).
pub fn sum_bytes(sum: u32, data: &[u8]) -> u32 {
    // The e1000's loop sums 8-byte words the compiler vectorises; a word-at-a-time loop
    // with a carry check per word was ~85% of a 64 KiB C+ large send.
    use crate::e1000::offload;
    let data_sum = offload::fold(offload::sum_bytes(data, 0)) as u32;
    let sum = if sum > 0xFFFF_0000 {
        (sum & 0xFFFF) + (sum >> 16)
    } else {
        sum
    };
    sum + data_sum
}

/// Folds and complements a one's-complement sum.
pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header sum (source, destination, protocol, L4 length).
fn pseudo_sum(frame: &[u8], ip: &Ipv4, l4_len: usize) -> u32 {
    let mut s = sum_bytes(0, &frame[ip.l3 + 12..ip.l3 + 20]);
    s = s.wrapping_add(ip.proto as u32);
    s.wrapping_add(l4_len as u32)
}

/// Rewrites the IPv4 header checksum.
pub fn fill_ip_checksum(frame: &mut [u8], ip: &Ipv4) {
    frame[ip.l3 + 10] = 0;
    frame[ip.l3 + 11] = 0;
    let c = fold(sum_bytes(0, &frame[ip.l3..ip.l4()]));
    frame[ip.l3 + 10..ip.l3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// Offset of the checksum field inside the L4 header, if the protocol has one we fill and
/// its header fits.
fn l4_csum_offset(ip: &Ipv4) -> Option<usize> {
    match ip.proto {
        IPPROTO_TCP if ip.l4_len() >= 20 => Some(16),
        IPPROTO_UDP if ip.l4_len() >= 8 => Some(6),
        _ => None,
    }
}

/// Rewrites the TCP or UDP checksum over the pseudo-header and the L4 segment. Returns
/// false (frame untouched) for fragments, other protocols or truncated headers.
pub fn fill_l4_checksum(frame: &mut [u8], ip: &Ipv4) -> bool {
    if ip.fragment {
        return false;
    }
    let Some(off) = l4_csum_offset(ip) else {
        return false;
    };
    let at = ip.l4() + off;
    frame[at] = 0;
    frame[at + 1] = 0;
    let s = sum_bytes(
        pseudo_sum(frame, ip, ip.l4_len()),
        &frame[ip.l4()..ip.end()],
    );
    let mut c = fold(s);
    if ip.proto == IPPROTO_UDP && c == 0 {
        c = 0xFFFF;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// True when the checksum stored in the L4 header is right.
pub fn l4_checksum_ok(frame: &[u8], ip: &Ipv4) -> bool {
    if ip.proto == IPPROTO_UDP && l4_csum_offset(ip).is_some() {
        let at = ip.l4() + 6;
        if frame[at] == 0 && frame[at + 1] == 0 {
            return true; // UDP without checksum
        }
    }
    l4_csum_offset(ip).is_some()
        && fold(sum_bytes(
            pseudo_sum(frame, ip, ip.l4_len()),
            &frame[ip.l4()..ip.end()],
        )) == 0
}

/// True when the IPv4 header checksum is right.
pub fn ip_checksum_ok(frame: &[u8], ip: &Ipv4) -> bool {
    fold(sum_bytes(0, &frame[ip.l3..ip.l4()])) == 0
}

/// A validated TCP-over-IPv4 frame ready for segmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsoPlan {
    /// The IP layout.
    pub ip: Ipv4,
    /// TCP header length (data offset * 4).
    pub tcp_hdr: usize,
    /// Length of all headers (Ethernet + IP + TCP).
    pub hdr_len: usize,
    /// Payload bytes after the headers, inside the IP datagram.
    pub payload: usize,
    /// Segment size.
    pub mss: usize,
}

/// Checks a large-send frame: IPv4, TCP, not a fragment, every header length inside the
/// frame, MSS non-zero. `None` (with a log line) otherwise.
pub fn plan_tso(frame: &[u8], mss: usize) -> Option<TsoPlan> {
    if mss == 0 {
        log::debug!("rtl8139: large send with MSS 0 refused");
        return None;
    }
    let ip = parse_ipv4(frame)?;
    if ip.proto != IPPROTO_TCP || ip.fragment || ip.l4_len() < 20 {
        log::debug!("rtl8139: large send needs an unfragmented TCP/IPv4 frame");
        return None;
    }
    let tcp_hdr = (frame[ip.l4() + 12] >> 4) as usize * 4;
    if tcp_hdr < 20 || tcp_hdr > ip.l4_len() {
        log::debug!("rtl8139: large send: TCP data offset {tcp_hdr} does not fit");
        return None;
    }
    let hdr_len = ip.l4() + tcp_hdr;
    Some(TsoPlan {
        ip,
        tcp_hdr,
        hdr_len,
        payload: ip.end() - hdr_len,
        mss,
    })
}

/// Builds each TSO segment of `frame` into `seg` (reused, never reallocated when its
/// capacity suffices) and hands it to `emit`. Returns the number of segments.
pub fn segment(
    frame: &[u8],
    plan: &TsoPlan,
    seg: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> usize {
    let ip = plan.ip;
    let base_id = be16(frame, ip.l3 + 4);
    let base_seq = u32::from_be_bytes([
        frame[ip.l4() + 4],
        frame[ip.l4() + 5],
        frame[ip.l4() + 6],
        frame[ip.l4() + 7],
    ]);
    let flags = frame[ip.l4() + 13];
    let payload = &frame[plan.hdr_len..ip.end()];
    let count = payload.len().div_ceil(plan.mss).max(1);
    for i in 0..count {
        let start = i * plan.mss;
        let chunk = &payload[start.min(payload.len())..(start + plan.mss).min(payload.len())];
        seg.clear();
        seg.extend_from_slice(&frame[..plan.hdr_len]);
        seg.extend_from_slice(chunk);
        let total = (ip.ihl + plan.tcp_hdr + chunk.len()) as u16;
        seg[ip.l3 + 2..ip.l3 + 4].copy_from_slice(&total.to_be_bytes());
        let id = base_id.wrapping_add(i as u16);
        seg[ip.l3 + 4..ip.l3 + 6].copy_from_slice(&id.to_be_bytes());
        let seq = base_seq.wrapping_add(start as u32);
        seg[ip.l4() + 4..ip.l4() + 8].copy_from_slice(&seq.to_be_bytes());
        let last = i + 1 == count;
        let mut f = flags;
        if !last {
            f &= !(0x01 | 0x08); // FIN, PSH only on the last segment
        }
        if i != 0 {
            f &= !0x80; // CWR only on the first
        }
        seg[ip.l4() + 13] = f;
        let seg_ip = Ipv4 {
            total: total as usize,
            ..ip
        };
        fill_ip_checksum(seg, &seg_ip);
        fill_l4_checksum(seg, &seg_ip);
        emit(seg);
    }
    count
}

/// Writes the TCP pseudo-header sum (with the whole L4 length) into the checksum field, as
/// a host expects for a virtio-net GSO frame with `NEEDS_CSUM`, and fixes the IP header
/// checksum.
pub fn prepare_gso(frame: &mut [u8], plan: &TsoPlan) {
    fill_ip_checksum(frame, &plan.ip);
    let ip = plan.ip;
    let s = pseudo_sum(frame, &ip, ip.l4_len());
    let partial = !fold(s);
    let at = ip.l4() + 16;
    frame[at..at + 2].copy_from_slice(&partial.to_be_bytes());
}

/// Inserts an 802.1Q tag (TCI in host order) after the MAC addresses of the first `len`
/// bytes of `buf`, growing it by 4 bytes. Needs `len >= 12`.
pub fn insert_vlan(buf: &mut Vec<u8>, tci: u16) {
    let len = buf.len();
    buf.resize(len + 4, 0);
    buf.copy_within(12..len, 16);
    buf[12..14].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
    buf[14..16].copy_from_slice(&tci.to_be_bytes());
}

/// The receive checksum verdict for C+ RX descriptors: protocol id (0 non-IP, 1 TCP,
/// 2 UDP, 3 other IP) and the IPF/UDPF/TCPF failure bits, as descriptor bits.
pub fn rx_checksum_bits(frame: &[u8]) -> u32 {
    use super::regs::desc;
    let Some(ip) = parse_ipv4(frame) else {
        return 0;
    };
    let mut bits = 0;
    if !ip_checksum_ok(frame, &ip) {
        bits |= desc::RX_IPF;
    }
    let pid = match ip.proto {
        IPPROTO_TCP if !ip.fragment && ip.l4_len() >= 20 => {
            if !l4_checksum_ok(frame, &ip) {
                bits |= desc::RX_TCPF;
            }
            1
        }
        IPPROTO_UDP if !ip.fragment && ip.l4_len() >= 8 => {
            if !l4_checksum_ok(frame, &ip) {
                bits |= desc::RX_UDPF;
            }
            2
        }
        _ => 3,
    };
    bits | (pid << desc::RX_PID_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP/IPv4 frame with `payload` bytes of data and correct checksums.
    pub fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54 + payload];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = IPPROTO_TCP;
        f[26..30].copy_from_slice(&[10, 0, 2, 15]);
        f[30..34].copy_from_slice(&[10, 0, 2, 2]);
        f[46] = 0x50;
        f[47] = 0x18;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let ip = parse_ipv4(&f).unwrap();
        fill_ip_checksum(&mut f, &ip);
        fill_l4_checksum(&mut f, &ip);
        f
    }

    #[test]
    fn sum_bytes_matches_word_by_word_addition() {
        let data: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        let word_by_word = |mut s: u64, d: &[u8]| {
            for pair in d.chunks(2) {
                s += (pair[0] as u64) << 8 | pair.get(1).copied().unwrap_or(0) as u64;
            }
            while s >> 16 != 0 {
                s = (s & 0xFFFF) + (s >> 16);
            }
            !(s as u16)
        };
        for len in (0..90).chain([1480, 1999]) {
            for seed in [0u32, 17, 0xFFFF, 0xFFFF_FFF0] {
                let d = &data[1..1 + len];
                assert_eq!(
                    fold(sum_bytes(seed, d)),
                    word_by_word(seed as u64, d),
                    "{len} {seed:#x}"
                );
            }
        }
        assert_eq!(
            fold(sum_bytes(0, &[0; 40])),
            0xFFFF,
            "an all-zero sum stays zero"
        );
    }

    #[test]
    fn checksums_verify() {
        let f = tcp_frame(100);
        let ip = parse_ipv4(&f).unwrap();
        assert!(ip_checksum_ok(&f, &ip) && l4_checksum_ok(&f, &ip));
        assert_eq!(rx_checksum_bits(&f), 1 << 16);
        let mut bad = f.clone();
        bad[60] ^= 1;
        assert_eq!(rx_checksum_bits(&bad), (1 << 16) | (1 << 13));
    }

    #[test]
    fn segments_reassemble() {
        let f = tcp_frame(3000);
        let plan = plan_tso(&f, 1000).unwrap();
        let mut seg = Vec::with_capacity(2000);
        let mut data = Vec::new();
        let n = segment(&f, &plan, &mut seg, |s| {
            let ip = parse_ipv4(s).unwrap();
            assert!(ip_checksum_ok(s, &ip) && l4_checksum_ok(s, &ip));
            data.extend_from_slice(&s[54..]);
        });
        assert_eq!(n, 3);
        assert_eq!(data, &f[54..]);
    }

    #[test]
    fn bad_lengths_are_refused() {
        let mut f = tcp_frame(10);
        f[14] = 0x4F; // IHL 60 > what the total length allows
        assert!(parse_ipv4(&f).is_none());
        let mut f = tcp_frame(10);
        f[16..18].copy_from_slice(&2000u16.to_be_bytes());
        assert!(parse_ipv4(&f).is_none());
        assert!(plan_tso(&tcp_frame(10), 0).is_none());
    }
}
