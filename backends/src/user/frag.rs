//! Reassembly of IPv4 fragments from the guest (RFC 791), bounded: few datagrams at a
//! time, 64 KiB each, a timeout, and any overlap discards the datagram (RFC 5722's rule
//! for IPv6, applied here too: overlaps only serve evasion and memory attacks).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{IpProtocol, Ipv4Packet};

/// Datagrams being reassembled at once.
const MAX_DATAGRAMS: usize = 16;
/// Largest datagram payload an IPv4 header can describe.
const MAX_PAYLOAD: usize = 65535 - 20;
/// A datagram whose fragments did not all arrive in this time is dropped (RFC 791's
/// suggested upper bound is 15 s; libslirp uses 30 s).
const TIMEOUT: Duration = Duration::from_secs(30);

type Key = (Ipv4Addr, Ipv4Addr, u16, IpProtocol);

#[derive(Debug)]
struct Datagram {
    key: Key,
    data: Vec<u8>,
    /// Received byte ranges, sorted, non-overlapping.
    have: Vec<(usize, usize)>,
    total: Option<usize>,
    expires: Instant,
}

/// What became of one fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The datagram is complete: its payload.
    Complete(Vec<u8>),
    /// Kept, waiting for the rest.
    Pending,
    /// Discarded (overlap, too large, too many datagrams in progress).
    Dropped,
}

/// Fragments waiting for their siblings.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    pending: Vec<Datagram>,
}

impl Reassembler {
    /// Adds one fragment (a checked packet with MF set or a non-zero offset).
    pub fn add(&mut self, pkt: &Ipv4Packet<&[u8]>, now: Instant) -> Outcome {
        self.pending.retain(|d| d.expires > now);
        let key = (
            pkt.src_addr(),
            pkt.dst_addr(),
            pkt.ident(),
            pkt.next_header(),
        );
        let off = usize::from(pkt.frag_offset());
        let body = pkt.payload();
        let end = off + body.len();
        let more = pkt.more_frags();
        // Every fragment but the last carries a multiple of 8 bytes.
        if end > MAX_PAYLOAD || (more && body.len() % 8 != 0) || (more && body.is_empty()) {
            log::debug!("user: IPv4 fragment with bad length or offset dropped");
            self.pending.retain(|d| d.key != key);
            return Outcome::Dropped;
        }
        let i = match self.pending.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                if self.pending.len() >= MAX_DATAGRAMS {
                    log::debug!("user: too many IPv4 datagrams in reassembly, fragment dropped");
                    return Outcome::Dropped;
                }
                self.pending.push(Datagram {
                    key,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    expires: now + TIMEOUT,
                });
                self.pending.len() - 1
            }
        };
        let d = &mut self.pending[i];
        let overlaps = d.have.iter().any(|&(a, b)| off < b && a < end);
        let beyond_total = d.total.is_some_and(|t| end > t || (!more && end != t));
        let before_last = !more && d.have.iter().any(|&(_, b)| b > end);
        if overlaps || beyond_total || before_last {
            log::debug!("user: overlapping or inconsistent IPv4 fragments, datagram dropped");
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
        let complete = d.total.is_some_and(|t| {
            let mut next = 0;
            d.have.iter().all(|&(a, b)| {
                let ok = a == next;
                next = b;
                ok
            }) && next == t
        });
        if complete {
            let d = self.pending.swap_remove(i);
            Outcome::Complete(d.data)
        } else {
            Outcome::Pending
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
        let Outcome::Complete(v) = add(&mut r, &frag(7, 16, true, &b)) else {
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
}
