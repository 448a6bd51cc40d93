//! Ethernet MAC addresses.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

/// The error returned when a string is not a MAC address of the form `52:54:00:12:34:56`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMacError(pub String);

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a MAC address (expected six hex bytes separated by ':', e.g. 52:54:00:12:34:56)",
            self.0
        )
    }
}

impl std::error::Error for ParseMacError {}

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// QEMU's default MAC for the first NIC, 52:54:00:12:34:56.
    pub const QEMU_DEFAULT: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    /// The six address bytes.
    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// True when the group bit (bit 0 of the first byte) is set; broadcast is multicast too.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// True for an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The destination address of an Ethernet frame, if the frame is long enough to have one.
    pub fn dest_of(frame: &[u8]) -> Option<MacAddr> {
        frame
            .get(..6)
            .map(|b| MacAddr(b.try_into().expect("6 bytes")))
    }

    /// The source address of an Ethernet frame, if the frame is long enough to have one.
    pub fn source_of(frame: &[u8]) -> Option<MacAddr> {
        frame
            .get(6..12)
            .map(|b| MacAddr(b.try_into().expect("6 bytes")))
    }

    /// The address `n` NICs after this one, as QEMU numbers default MACs: the last byte
    /// is incremented (wrapping), so the second NIC gets 52:54:00:12:34:57.
    pub fn nth_default(n: usize) -> MacAddr {
        let mut m = Self::QEMU_DEFAULT;
        m.0[5] = m.0[5].wrapping_add(n as u8);
        m
    }
}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddr = "0A:e8:4f:c5:6a:16".parse().unwrap();
        assert_eq!(m.0, [0x0a, 0xe8, 0x4f, 0xc5, 0x6a, 0x16]);
        assert_eq!(m.to_string(), "0a:e8:4f:c5:6a:16");
    }

    #[test]
    fn rejects_bad_forms() {
        for s in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52:54:00:12:34:5g",
            "525:4:00:12:34:56",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s}");
        }
    }

    #[test]
    fn default_numbering_follows_qemu() {
        assert_eq!(MacAddr::nth_default(0).to_string(), "52:54:00:12:34:56");
        assert_eq!(MacAddr::nth_default(1).to_string(), "52:54:00:12:34:57");
    }

    #[test]
    fn classes() {
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr::QEMU_DEFAULT.is_unicast());
    }
}
