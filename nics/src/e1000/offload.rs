//! Checksum and segmentation offload arithmetic (SDM "Transmit Offload", "TCP
//! Segmentation" and "Receive Checksum Offloading"), plus the Ethernet FCS.
//!
//! Every function takes guest-controlled offsets and checks them against the frame:
//! an offset outside the frame skips the operation (and is logged), it never panics.

/// The offload parameters of a TCP/IP context descriptor (SDM "TCP/IP Context Descriptor").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Context {
    /// IP checksum start.
    pub ipcss: u8,
    /// IP checksum offset (where the checksum goes).
    pub ipcso: u8,
    /// IP checksum end (inclusive; 0 = end of packet).
    pub ipcse: u16,
    /// TCP/UDP checksum start.
    pub tucss: u8,
    /// TCP/UDP checksum offset.
    pub tucso: u8,
    /// TCP/UDP checksum end (inclusive; 0 = end of packet).
    pub tucse: u16,
    /// TSO payload length.
    pub paylen: u32,
    /// TUCMD: bit 0 TCP (else UDP), bit 1 IPv4 (else IPv6), bit 2 TSE.
    pub tucmd: u8,
    /// TSO header length.
    pub hdrlen: u8,
    /// TSO maximum segment size.
    pub mss: u16,
}

/// TUCMD bits.
pub mod tucmd {
    /// TCP (else UDP).
    pub const TCP: u8 = 1 << 0;
    /// IPv4 (else IPv6).
    pub const IP: u8 = 1 << 1;
    /// TCP segmentation enable.
    pub const TSE: u8 = 1 << 2;
}

impl Context {
    /// Parses a context descriptor copy.
    pub fn parse(d: &[u8; 16]) -> Self {
        let lower = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
        Context {
            ipcss: d[0],
            ipcso: d[1],
            ipcse: u16::from_le_bytes([d[2], d[3]]),
            tucss: d[4],
            tucso: d[5],
            tucse: u16::from_le_bytes([d[6], d[7]]),
            paylen: lower & 0xf_ffff,
            tucmd: (lower >> 24) as u8,
            hdrlen: d[13],
            mss: u16::from_le_bytes([d[14], d[15]]),
        }
    }

    /// True if the context describes TCP (else UDP).
    pub fn tcp(&self) -> bool {
        self.tucmd & tucmd::TCP != 0
    }

    /// True if the context describes IPv4 (else IPv6).
    pub fn ipv4(&self) -> bool {
        self.tucmd & tucmd::IP != 0
    }

    /// Inserts the IP header checksum this context describes (IPCSS..=IPCSE at IPCSO).
    pub fn insert_ip_checksum(&self, frame: &mut [u8]) -> bool {
        insert_checksum(
            frame,
            self.ipcss as usize,
            self.ipcse as usize,
            self.ipcso as usize,
            0,
        )
    }
}

/// Adds `data` to a running ones-complement sum as big-endian 16-bit words.
pub fn sum_bytes(data: &[u8], mut sum: u64) -> u64 {
    // Eight bytes at a time: the two 32-bit halves of a big-endian word are summed
    // separately so the 64-bit accumulator cannot overflow for any frame size.
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += (w >> 32) + (w & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        sum += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        sum += (rest[i] as u64) << 8;
    }
    sum
}

/// Folds a sum to 16 bits (without complementing).
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Computes the Internet checksum of `frame[start..=end]` (end clamped to the frame;
/// `end == 0` means the last byte), adding `extra` to the sum, and stores it big-endian
/// at `at`. Returns false, changing nothing, when the offsets do not fit the frame.
pub fn insert_checksum(frame: &mut [u8], start: usize, end: usize, at: usize, extra: u64) -> bool {
    let len = frame.len();
    let stop = if end == 0 || end >= len { len } else { end + 1 };
    if start >= stop || at + 2 > len {
        log::debug!(
            "e1000: checksum offsets start={start} end={end} at={at} outside {len}-byte frame"
        );
        return false;
    }
    let sum = sum_bytes(&frame[start..stop], extra);
    let c = !fold(sum);
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

fn put16(frame: &mut [u8], at: usize, v: u16) -> bool {
    match frame.get_mut(at..at + 2) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

fn get32(frame: &[u8], at: usize) -> Option<u32> {
    let s = frame.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Fixes the IP header of a TSO segment or GSO packet of `frame.len()` bytes: IPv4
/// total length (and identification + `seg` when `seg` is given), or IPv6 payload length.
pub fn fix_ip_lengths(frame: &mut [u8], ctx: &Context, seg: Option<u16>) {
    let css = ctx.ipcss as usize;
    let len = frame.len();
    if ctx.ipv4() {
        put16(frame, css + 2, len.saturating_sub(css) as u16);
        if let (Some(n), Some(id)) = (seg, frame.get(css + 4..css + 6)) {
            let id = u16::from_be_bytes([id[0], id[1]]).wrapping_add(n);
            put16(frame, css + 4, id);
        }
    } else {
        put16(frame, css + 4, len.saturating_sub(css + 40) as u16);
    }
}

/// Rewrites one TSO segment in place (SDM "TCP Segmentation", per-segment updates): IP lengths and ID, TCP sequence
/// number (advanced by `offset` payload bytes already sent) and flags (FIN and PSH only
/// on the last segment), or the UDP length; then the checksums `popts` asks for (IXSM
/// bit 0, TXSM bit 1). The TCP/UDP checksum field holds the pseudo-header sum without
/// the length, which is added here.
pub fn fix_tso_segment(
    frame: &mut [u8],
    ctx: &Context,
    seg: u16,
    offset: u32,
    last: bool,
    popts: u8,
) {
    fix_ip_lengths(frame, ctx, Some(seg));
    let tu = ctx.tucss as usize;
    let l4_len = frame.len().saturating_sub(tu);
    if ctx.tcp() {
        if let Some(seq) = get32(frame, tu + 4) {
            frame[tu + 4..tu + 8].copy_from_slice(&seq.wrapping_add(offset).to_be_bytes());
        }
        if !last {
            if let Some(f) = frame.get_mut(tu + 13) {
                *f &= !0x09;
            }
        }
    } else {
        put16(frame, tu + 4, l4_len as u16);
    }
    if popts & 1 != 0 {
        ctx.insert_ip_checksum(frame);
    }
    if popts & 2 != 0 {
        insert_checksum(frame, tu, 0, ctx.tucso as usize, l4_len as u64);
    }
}

/// The result of receive checksum validation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxChecksum {
    /// IPv4 header checksum checked: Some(good).
    pub ip: Option<bool>,
    /// TCP or UDP checksum checked: Some(good).
    pub l4: Option<bool>,
    /// The L4 protocol was UDP.
    pub udp: bool,
}

/// Validates the IPv4 header and TCP/UDP checksums of an Ethernet frame (with or
/// without one VLAN tag), as RXCSUM asks (`ip` = IPOFL, `l4` = TUOFL).
pub fn rx_checksum(frame: &[u8], vet: u16, ip: bool, l4: bool) -> RxChecksum {
    let mut r = RxChecksum::default();
    let mut off = 12;
    let Some(t) = frame.get(off..off + 2) else {
        return r;
    };
    let mut ethertype = u16::from_be_bytes([t[0], t[1]]);
    if ethertype == vet {
        off += 4;
        let Some(t) = frame.get(off..off + 2) else {
            return r;
        };
        ethertype = u16::from_be_bytes([t[0], t[1]]);
    }
    off += 2;
    if ethertype != 0x0800 {
        return r;
    }
    let Some(&vihl) = frame.get(off) else {
        return r;
    };
    let ihl = (vihl & 0xf) as usize * 4;
    if vihl >> 4 != 4 || ihl < 20 || frame.len() < off + ihl {
        return r;
    }
    let hdr = &frame[off..off + ihl];
    if ip {
        r.ip = Some(fold(sum_bytes(hdr, 0)) == 0xffff);
    }
    let total = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff;
    let proto = hdr[9];
    if !l4 || frag != 0 || total < ihl || off + total > frame.len() || !matches!(proto, 6 | 17) {
        return r;
    }
    let seg = &frame[off + ihl..off + total];
    r.udp = proto == 17;
    if r.udp && seg.len() >= 8 && seg[6] == 0 && seg[7] == 0 {
        // UDP without a checksum.
        r.l4 = Some(true);
        return r;
    }
    let pseudo = sum_bytes(&hdr[12..20], proto as u64 + seg.len() as u64);
    r.l4 = Some(fold(sum_bytes(seg, pseudo)) == 0xffff);
    r
}

/// The Ethernet FCS (CRC-32, polynomial 0x04C11DB7 reflected) of `data`, in the order it
/// is sent (little-endian bytes). `crc32fast` uses carry-less multiplication where the CPU
/// has it, so storing a real FCS costs little next to the copy of the frame.
pub fn fcs(data: &[u8]) -> [u8; 4] {
    crc32fast::hash(data).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_of_known_vector() {
        // CRC-32 of "123456789" is 0xCBF43926.
        assert_eq!(fcs(b"123456789"), 0xcbf4_3926u32.to_le_bytes());
        // Agrees with the bitwise definition on every length.
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            let mut c = u32::MAX;
            for &b in &data[..n] {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xedb8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(fcs(&data[..n]), (!c).to_le_bytes(), "length {n}");
        }
    }

    #[test]
    fn sum_matches_the_16_bit_definition() {
        let data: Vec<u8> = (0..77u32).map(|i| (i * 91 + 5) as u8).collect();
        for n in 0..data.len() {
            let mut s = 0u64;
            for c in data[..n].chunks(2) {
                s += (c[0] as u64) << 8 | *c.get(1).unwrap_or(&0) as u64;
            }
            assert_eq!(fold(sum_bytes(&data[..n], 0)), fold(s), "length {n}");
        }
    }

    #[test]
    fn checksum_rejects_offsets_outside_the_frame() {
        let mut f = [0u8; 20];
        assert!(!insert_checksum(&mut f, 30, 0, 0, 0));
        assert!(!insert_checksum(&mut f, 0, 0, 19, 0));
        assert!(insert_checksum(&mut f, 0, 0, 10, 0));
        assert_eq!(&f[10..12], &[0xff, 0xff]);
    }
}
