//! Receive address filter (RCR AAP/APM/AM/AB with the MAR multicast hash) and the two
//! CRCs the chip uses: the multicast hash index and the frame check sequence it stores
//! after each received frame.

use super::regs::rcr;

/// How a destination address matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// ff:ff:ff:ff:ff:ff, accepted by AB.
    Broadcast,
    /// A group address accepted by AM and the MAR hash.
    Multicast,
    /// Our station address (APM) or any individual address (AAP).
    Physical,
}

/// The 6-bit MAR index of a multicast address: the top 6 bits of the CRC-32 computed the
/// way the chip (and Linux's `ether_crc`) does, MSB-first without final inversion.
pub fn mar_index(addr: &[u8; 6]) -> usize {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &byte in addr {
        let mut b = byte;
        for _ in 0..8 {
            let top = crc >> 31;
            crc <<= 1;
            if (top ^ (b as u32 & 1)) != 0 {
                crc ^= 0x04C1_1DB7;
            }
            b >>= 1;
        }
    }
    (crc >> 26) as usize
}

/// Decides whether a frame with destination `dst` is accepted under `rcr`, station address
/// `idr` and hash table `mar`.
pub fn accept(dst: &[u8; 6], rcr_val: u32, idr: &[u8; 6], mar: &[u8; 8]) -> Option<Match> {
    if dst == &[0xFF; 6] {
        return (rcr_val & rcr::AB != 0).then_some(Match::Broadcast);
    }
    if dst[0] & 1 != 0 {
        if rcr_val & rcr::AM == 0 {
            return None;
        }
        let i = mar_index(dst);
        return (mar[i / 8] & (1 << (i % 8)) != 0).then_some(Match::Multicast);
    }
    if rcr_val & rcr::AAP != 0 || (rcr_val & rcr::APM != 0 && dst == idr) {
        return Some(Match::Physical);
    }
    None
}

/// Running Ethernet FCS (IEEE CRC-32): feed pieces with [`Fcs::update`], then
/// [`Fcs::bytes`] gives the four bytes as they follow the frame on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Fcs(u32);

// The value kept is the CRC-32 of the bytes so far in its final (complemented) form,
// which is the state `crc32fast` resumes from; it uses the carry-less multiply unit where
// the CPU has one (a byte-at-a-time table made the FCS most of the receive cost).

impl Default for Fcs {
    fn default() -> Self {
        Self::new()
    }
}

impl Fcs {
    /// A fresh CRC.
    pub fn new() -> Self {
        Fcs(0)
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        let mut h = crc32fast::Hasher::new_with_initial(self.0);
        h.update(data);
        self.0 = h.finalize();
    }

    /// The FCS bytes in wire order.
    pub fn bytes(&self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_matches_the_ieee_check_value() {
        let mut f = Fcs::new();
        f.update(b"12345");
        f.update(b"6789");
        assert_eq!(u32::from_le_bytes(f.bytes()), 0xCBF4_3926);
    }

    #[test]
    fn mar_index_matches_linux_ether_crc() {
        // 01:00:5e:00:00:01 (all-hosts): the bit-reversed, uninverted IEEE CRC-32
        // (cross-checked against zlib's crc32) has top six bits 0x1f.
        assert_eq!(mar_index(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), 0x1f);
    }

    #[test]
    fn filter_rules() {
        let idr = [0x52, 0x54, 0, 1, 2, 3];
        let mar = [0u8; 8];
        assert_eq!(
            accept(&[0xff; 6], rcr::AB, &idr, &mar),
            Some(Match::Broadcast)
        );
        assert_eq!(accept(&[0xff; 6], rcr::APM, &idr, &mar), None);
        assert_eq!(accept(&idr, rcr::APM, &idr, &mar), Some(Match::Physical));
        assert_eq!(accept(&[2, 0, 0, 0, 0, 1], rcr::APM, &idr, &mar), None);
        assert_eq!(
            accept(&[2, 0, 0, 0, 0, 1], rcr::AAP, &idr, &mar),
            Some(Match::Physical)
        );
        let mc = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
        assert_eq!(accept(&mc, rcr::AM, &idr, &mar), None);
        let mut mar = [0u8; 8];
        mar[3] = 0x80;
        assert_eq!(accept(&mc, rcr::AM, &idr, &mar), Some(Match::Multicast));
    }
}
