//! The 10-byte virtio-net header that carries checksum and segmentation offload
//! (GSO) requests between a device model and a backend that can pass them on (TAP with
//! `vnet_hdr=on`).

/// `virtio_net_hdr` as the Linux TAP driver takes it (`TUNSETVNETHDRSZ` = 10), little-endian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*` flags; [`VirtioNetHdr::F_NEEDS_CSUM`] asks the host to checksum.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*` type.
    pub gso_type: u8,
    /// Length of the headers (Ethernet + IP + L4) before the payload.
    pub hdr_len: u16,
    /// Maximum segment size for GSO.
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the frame.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Length of the header on the wire.
    pub const LEN: usize = 10;
    /// The host must compute the checksum described by `csum_start`/`csum_offset`.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// No segmentation.
    pub const GSO_NONE: u8 = 0;
    /// TCP over IPv4 segmentation.
    pub const GSO_TCPV4: u8 = 1;
    /// UDP fragmentation offload.
    pub const GSO_UDP: u8 = 3;
    /// TCP over IPv6 segmentation.
    pub const GSO_TCPV6: u8 = 4;

    /// True when the header asks for nothing: no segmentation, no checksum to complete
    /// (the frame is an ordinary one).
    pub fn is_plain(&self) -> bool {
        self.gso_type == Self::GSO_NONE && self.flags & Self::F_NEEDS_CSUM == 0
    }

    /// Serialises the header in the little-endian layout TAP expects.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Parses a header from the first 10 bytes of `b`; `None` when `b` is shorter.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::LEN)?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let h = VirtioNetHdr {
            flags: 1,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VirtioNetHdr::from_bytes(&h.to_bytes()), Some(h));
        assert_eq!(VirtioNetHdr::from_bytes(&[0; 9]), None);
        assert!(!h.is_plain());
        assert!(VirtioNetHdr::default().is_plain());
    }
}
