//! CRC-32 (IEEE 802.3) for the frame check sequence and the multicast hash filter.

const POLY: u32 = 0xedb8_8320;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The CRC register after `data`, LSB-first, preset to all ones, no final inversion.
pub fn crc32_raw(data: &[u8]) -> u32 {
    data.iter().fold(u32::MAX, |c, &b| {
        TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// The four FCS bytes in wire order for a frame without FCS.
pub fn fcs(frame: &[u8]) -> [u8; 4] {
    // crc32fast uses the carry-less multiply unit where the CPU has one; the table above
    // stays for the 6-byte multicast hash.
    crc32fast::hash(frame).to_le_bytes()
}

/// The multicast filter index of a destination address: the six most significant bits
/// of the CRC taken MSB-first (DP8390D, Multicast Address Registers), i.e. bit
/// `index & 7` of MAR`index >> 3`.
pub fn multicast_index(addr: &[u8; 6]) -> usize {
    (crc32_raw(addr).reverse_bits() >> 26) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_agrees_with_the_table_crc_at_every_length() {
        let data: Vec<u8> = (0..1600u32).map(|i| (i * 193 + 7) as u8).collect();
        for len in (0..130).chain([1513, 1514, 1518, 1600]) {
            assert_eq!(fcs(&data[..len]), (!crc32_raw(&data[..len])).to_le_bytes());
        }
    }

    #[test]
    fn check_value_and_hash() {
        // The standard CRC-32 check value.
        assert_eq!(!crc32_raw(b"123456789"), 0xcbf4_3926);
        // 01:00:5e:00:00:01 (all-hosts) hashes to bit 0x1f, as Linux's ether_crc >> 26.
        assert_eq!(multicast_index(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), 0x1f);
        assert_eq!(multicast_index(&[0x33, 0x33, 0, 0, 0, 1]), 0x3e);
    }
}
