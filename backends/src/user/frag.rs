//! Reassembly of IPv4 (RFC 791) and IPv6 (RFC 8200 4.5) fragments from the guest,
//! bounded: few datagrams at a time, 64 KiB and [`MAX_FRAGMENTS`] fragments each, a
//! timeout, and any overlap discards the datagram (RFC 5722's rule for IPv6, applied to
//! IPv4 too: overlaps only serve evasion and memory attacks).

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::wire::{IpProtocol, Ipv4Packet};

/// Datagrams being reassembled at once (both families together).
const MAX_DATAGRAMS: usize = 16;
/// Fragments one datagram may arrive in: 64 KiB in pieces of 256 bytes, far below what a
/// guest on a 1500-byte link sends, and it bounds the work per fragment.
const MAX_FRAGMENTS: usize = 256;
/// Largest datagram payload an IPv4 header can describe.
const MAX_PAYLOAD_V4: usize = 65535 - 20;
/// Largest fragmentable part an IPv6 payload length can describe (RFC 8200 4.5: a
/// fragment that would make the reassembled payload longer is discarded).
const MAX_PAYLOAD_V6: usize = 65535;
/// A datagram whose fragments did not all arrive in this time is dropped (RFC 791's
/// suggested upper bound is 15 s; libslirp uses 30 s; RFC 8200 says 60 s).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Source, destination, identification, and for IPv4 the protocol (RFC 791); IPv6 keys
/// on the first three only (RFC 8200 4.5).
type Key = (IpAddr, IpAddr, u32, Option<IpProtocol>);

#[derive(Debug)]
struct Datagram {
    key: Key,
    data: Vec<u8>,
    /// Received byte ranges, sorted, non-overlapping.
    have: Vec<(usize, usize)>,
    total: Option<usize>,
    /// The upper-layer protocol, from the fragment at offset 0.
    proto: Option<u8>,
    expires: Instant,
}

/// What became of one fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The datagram is complete: its protocol (for IPv6 the next header of the first
    /// fragment's fragmentable part) and payload.
    Complete(u8, Vec<u8>),
    /// Kept, waiting for the rest.
    Pending,
    /// Discarded (overlap, too large, too many fragments or datagrams in progress).
    Dropped,
}

/// One fragment, whatever its family.
struct Piece<'a> {
    key: Key,
    /// Byte offset in the datagram's (fragmentable) payload.
    off: usize,
    more: bool,
    proto: u8,
    body: &'a [u8],
    max: usize,
}

/// The fields of an IPv6 Fragment header (RFC 8200 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fragment6 {
    /// Identification.
    pub ident: u32,
    /// Byte offset of this fragment's data in the fragmentable part.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// Fragments waiting for their siblings.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    pending: Vec<Datagram>,
}

impl Reassembler {
    /// Adds one IPv4 fragment (a checked packet with MF set or a non-zero offset).
    pub fn add(&mut self, pkt: &Ipv4Packet<&[u8]>, now: Instant) -> Outcome {
        let proto = pkt.next_header();
        let piece = Piece {
            key: (
                pkt.src_addr().into(),
                pkt.dst_addr().into(),
                u32::from(pkt.ident()),
                Some(proto),
            ),
            off: usize::from(pkt.frag_offset()),
            more: pkt.more_frags(),
            proto: proto.into(),
            body: pkt.payload(),
            max: MAX_PAYLOAD_V4,
        };
        self.insert(piece, now)
    }

    /// Adds one IPv6 fragment from `src` to `dst`: `body` follows its Fragment header,
    /// whose next header is `nh`.
    pub fn add6(
        &mut self,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        frag: Fragment6,
        nh: u8,
        body: &[u8],
        now: Instant,
    ) -> Outcome {
        let piece = Piece {
            key: (src.into(), dst.into(), frag.ident, None),
            off: frag.offset,
            more: frag.more,
            proto: nh,
            body,
            max: MAX_PAYLOAD_V6,
        };
        self.insert(piece, now)
    }

    fn insert(&mut self, p: Piece, now: Instant) -> Outcome {
        self.pending.retain(|d| d.expires > now);
        let Piece {
            key,
            off,
            more,
            body,
            ..
        } = p;
        let end = off + body.len();
        // Every fragment but the last carries a multiple of 8 bytes.
        if end > p.max || (more && body.len() % 8 != 0) || (more && body.is_empty()) {
            log::debug!("user: IP fragment with bad length or offset dropped");
            self.pending.retain(|d| d.key != key);
            return Outcome::Dropped;
        }
        let i = match self.pending.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                if self.pending.len() >= MAX_DATAGRAMS {
                    log::debug!("user: too many IP datagrams in reassembly, fragment dropped");
                    return Outcome::Dropped;
                }
                self.pending.push(Datagram {
                    key,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    proto: None,
                    expires: now + TIMEOUT,
                });
                self.pending.len() - 1
            }
        };
        let d = &mut self.pending[i];
        let overlaps = d.have.iter().any(|&(a, b)| off < b && a < end);
        let beyond_total = d.total.is_some_and(|t| end > t || (!more && end != t));
        let before_last = !more && d.have.iter().any(|&(_, b)| b > end);
        let too_many = d.have.len() >= MAX_FRAGMENTS;
        if overlaps || beyond_total || before_last || too_many {
            log::debug!(
                "user: overlapping, inconsistent or too many IP fragments, datagram dropped"
            );
            self.pending.swap_remove(i);
            return Outcome::Dropped;
        }
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        d.data[off..end].copy_from_slice(body);
        let pos = d.have.partition_point(|&(a, _)| a < off);
        d.have.insert(pos, (off, end));
        if !more {
            d.total = Some(end);
        }
        if off == 0 {
            d.proto = Some(p.proto);
        }
        let complete = d.total.is_some_and(|t| {
            let mut next = 0;
            d.have.iter().all(|&(a, b)| {
                let ok = a == next;
                next = b;
                ok
            }) && next == t
        });
        match (complete, d.proto) {
            (true, Some(proto)) => {
                let d = self.pending.swap_remove(i);
                Outcome::Complete(proto, d.data)
            }
            _ => Outcome::Pending,
        }
    }

    /// The earliest expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|d| d.expires).min()
    }

    /// Drops expired datagrams.
    pub fn expire(&mut self, now: Instant) {
        self.pending.retain(|d| d.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::Ipv4Repr;
    use std::net::Ipv4Addr;

    fn frag(id: u16, off: usize, more: bool, body: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 20 + body.len()];
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 2, 15),
            dst_addr: Ipv4Addr::new(10, 0, 2, 2),
            next_header: IpProtocol::Udp,
            payload_len: body.len(),
            hop_limit: 64,
        }
        .emit(&mut p, &ChecksumCapabilities::default());
        p.set_ident(id);
        p.set_dont_frag(false);
        p.set_more_frags(more);
        p.set_frag_offset(off as u16);
        p.fill_checksum();
        p.payload_mut().copy_from_slice(body);
        b
    }

    fn add(r: &mut Reassembler, f: &[u8]) -> Outcome {
        r.add(&Ipv4Packet::new_checked(f).unwrap(), Instant::now())
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let mut r = Reassembler::default();
        let a = [1u8; 16];
        let b = [2u8; 8];
        let c = [3u8; 5];
        assert_eq!(add(&mut r, &frag(7, 24, false, &c)), Outcome::Pending);
        assert_eq!(add(&mut r, &frag(7, 0, true, &a)), Outcome::Pending);
        let Outcome::Complete(17, v) = add(&mut r, &frag(7, 16, true, &b)) else {
            panic!("not complete");
        };
        assert_eq!(v.len(), 29);
        assert_eq!(&v[..16], &a);
        assert_eq!(&v[16..24], &b);
        assert_eq!(&v[24..], &c);
        assert!(r.next_deadline().is_none());
    }

    #[test]
    fn overlaps_bad_lengths_and_floods_are_dropped() {
        let mut r = Reassembler::default();
        assert_eq!(add(&mut r, &frag(1, 0, true, &[0; 16])), Outcome::Pending);
        assert_eq!(add(&mut r, &frag(1, 8, true, &[0; 16])), Outcome::Dropped);
        assert!(r.pending.is_empty());
        assert_eq!(add(&mut r, &frag(2, 0, true, &[0; 7])), Outcome::Dropped);
        assert_eq!(
            add(&mut r, &frag(3, 65528, false, &[0; 16])),
            Outcome::Dropped
        );
        for id in 0..MAX_DATAGRAMS as u16 {
            assert_eq!(
                add(&mut r, &frag(100 + id, 0, true, &[0; 8])),
                Outcome::Pending
            );
        }
        assert_eq!(add(&mut r, &frag(999, 0, true, &[0; 8])), Outcome::Dropped);
        r.expire(Instant::now() + TIMEOUT + Duration::from_secs(1));
        assert!(r.next_deadline().is_none());
    }

    const A6: (Ipv6Addr, Ipv6Addr) = (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0x15),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );

    fn add6(r: &mut Reassembler, ident: u32, offset: usize, more: bool, b: &[u8]) -> Outcome {
        let f = Fragment6 {
            ident,
            offset,
            more,
        };
        r.add6(A6, f, 17, b, Instant::now())
    }

    #[test]
    fn ipv6_fragments_take_the_first_fragments_next_header() {
        let mut r = Reassembler::default();
        // A later fragment's next header does not count (RFC 8200 4.5).
        let f = Fragment6 {
            ident: 9,
            offset: 8,
            more: false,
        };
        assert_eq!(r.add6(A6, f, 6, &[2; 3], Instant::now()), Outcome::Pending);
        // Another identification is another datagram.
        assert_eq!(add6(&mut r, 10, 8, false, &[0; 3]), Outcome::Pending);
        let Outcome::Complete(17, v) = add6(&mut r, 9, 0, true, &[1; 8]) else {
            panic!("not complete");
        };
        assert_eq!(v, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
        assert_eq!(r.pending.len(), 1);
    }

    #[test]
    fn ipv6_overlaps_oversize_and_fragment_floods_are_dropped() {
        let mut r = Reassembler::default();
        assert_eq!(add6(&mut r, 1, 0, true, &[0; 16]), Outcome::Pending);
        assert_eq!(add6(&mut r, 1, 8, false, &[0; 8]), Outcome::Dropped);
        assert!(r.pending.is_empty());
        // Past 65535 bytes of fragmentable part.
        assert_eq!(add6(&mut r, 2, 65528, false, &[0; 16]), Outcome::Dropped);
        // One datagram in tiny pieces: refused past MAX_FRAGMENTS, then nothing is kept.
        for k in 0..MAX_FRAGMENTS {
            assert_eq!(add6(&mut r, 3, k * 8, true, &[0; 8]), Outcome::Pending);
        }
        assert_eq!(
            add6(&mut r, 3, MAX_FRAGMENTS * 8, false, &[0; 8]),
            Outcome::Dropped
        );
        assert!(r.pending.is_empty());
    }
}
