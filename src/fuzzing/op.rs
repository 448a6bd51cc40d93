//! The guest's actions, as fuzzers and property tests generate them.
//!
//! Every field is a plain value a fuzzer can mutate; [`crate::fuzzing::Harness`] maps it
//! onto the device so that every op is meaningful: BAR indices pick one of the BARs the
//! device actually has, BAR offsets are reduced to stay inside the BAR, guest addresses
//! marked [`GuestAddr::InRam`] are reduced modulo the size of guest RAM.

use arbitrary::Arbitrary;

/// Access width of a register read or write.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 1 byte.
    Byte,
    /// 2 bytes.
    Word,
    /// 4 bytes.
    Dword,
}

impl Width {
    /// The width in bytes: 1, 2 or 4.
    pub fn bytes(self) -> u8 {
        match self {
            Width::Byte => 1,
            Width::Word => 2,
            Width::Dword => 4,
        }
    }

    /// The width for `bytes`; anything other than 1 or 2 is a dword.
    pub fn from_bytes(bytes: u8) -> Width {
        match bytes {
            1 => Width::Byte,
            2 => Width::Word,
            _ => Width::Dword,
        }
    }
}

/// A guest physical address written into a descriptor.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestAddr {
    /// An address inside guest RAM: the value is reduced modulo the RAM size.
    InRam(u32),
    /// Any 64-bit value, usually outside RAM: exercises the model's DMA-error path.
    Raw(u64),
}

/// Which ring a [`Op::PlaceRing`] writes.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingSel {
    /// The transmit ring at the address the setup prologue programs
    /// ([`crate::fuzzing::layout::TX_RING`]); indices wrap at
    /// [`crate::fuzzing::layout::RING_ENTRIES`].
    Tx,
    /// The receive ring at [`crate::fuzzing::layout::RX_RING`], wrapping likewise.
    Rx,
    /// Descriptors laid out linearly from this RAM offset (reduced modulo RAM size).
    At(u32),
}

/// One descriptor, in a model-neutral form. [`crate::fuzzing::DeviceKind::descriptor_bytes`]
/// places the fields where the model's layout has them:
///
/// | model | bytes 0-7 | 8-9 | 10-11 | 12-15 |
/// |---|---|---|---|---|
/// | e1000 (legacy, context, data; TX and RX) | `addr` | `len` | `flags` (CSO/DTYP, CMD) | `extra` (STA, CSS/POPTS, special) |
///
/// | model | bytes 0-1 | 2-3 | 4-7 | 8-15 |
/// |---|---|---|---|---|
/// | RTL8139C+ (TX and RX) | `len` | `flags` (OWN, EOR, FS, LS, LGSEN, ...) | `extra` (VLAN) | `addr` |
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// The buffer address.
    pub addr: GuestAddr,
    /// The length / buffer-size field.
    pub len: u16,
    /// The command and flag bits.
    pub flags: u16,
    /// Status, checksum offsets, VLAN tag.
    pub extra: u32,
}

/// Where a received frame is addressed to, so a fuzzer need not guess the MAC.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxDest {
    /// The first six bytes become the device's own MAC.
    Own,
    /// The first six bytes become ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// The first six bytes become 01:00:5e:00:00:01 (IPv4 all-hosts).
    Multicast,
    /// The frame is used as generated.
    AsIs,
}

/// Largest frame [`Op::Receive`] builds (64 KiB).
pub const MAX_RX_FRAME: usize = 65536;

/// Largest number of descriptors one [`Op::PlaceRing`] writes.
pub const MAX_DESCRIPTORS_PER_OP: usize = 256;

/// Largest pattern [`Op::FillMemory`] repeats.
pub const MAX_PATTERN: usize = 64;

/// One action of the guest, the network or the VMM.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reads PCI config space (ISA devices read all-ones).
    ConfigRead {
        /// Config-space offset.
        offset: u8,
        /// Access width.
        width: Width,
    },
    /// Writes PCI config space, including BARs and the command register.
    ConfigWrite {
        /// Config-space offset.
        offset: u8,
        /// Access width.
        width: Width,
        /// Value (the low `width` bytes are used).
        value: u32,
    },
    /// Reads a BAR: `bar` picks one of the device's BARs (modulo their number), `offset`
    /// is reduced so that the access stays inside it.
    BarRead {
        /// BAR selector.
        bar: u8,
        /// Offset, reduced modulo `size - width + 1`.
        offset: u32,
        /// Access width.
        width: Width,
    },
    /// Writes a BAR, as [`Op::BarRead`] selects it. The only op that may transmit.
    BarWrite {
        /// BAR selector.
        bar: u8,
        /// Offset, reduced modulo `size - width + 1`.
        offset: u32,
        /// Access width.
        width: Width,
        /// Value (the low `width` bytes are used).
        value: u32,
    },
    /// The guest CPU fills `len` bytes of RAM from `addr` (modulo RAM size, clipped at the
    /// end of RAM) with `pattern` repeated (zeros when empty; at most
    /// [`MAX_PATTERN`] bytes are used).
    FillMemory {
        /// Start offset in RAM.
        addr: u32,
        /// Number of bytes.
        len: u16,
        /// The bytes to repeat.
        pattern: Vec<u8>,
    },
    /// The guest CPU writes descriptors in the model's layout (at most
    /// [`MAX_DESCRIPTORS_PER_OP`]; none for a model without descriptor rings).
    PlaceRing {
        /// Which ring.
        ring: RingSel,
        /// Index of the first descriptor written.
        first: u8,
        /// The descriptors.
        descriptors: Vec<Descriptor>,
    },
    /// A frame arrives from the network: `head`, padded with `fill` up to `len` bytes (at
    /// most [`MAX_RX_FRAME`]), its destination rewritten as `dest` says.
    Receive {
        /// Destination rewrite.
        dest: RxDest,
        /// Total length when longer than `head`.
        len: u16,
        /// Padding byte.
        fill: u8,
        /// The first bytes of the frame.
        head: Vec<u8>,
    },
    /// The injected clock moves forward by `ns` nanoseconds; due timers run.
    AdvanceClock {
        /// Nanoseconds (up to about 4.3 s per op).
        ns: u32,
    },
    /// The link partner comes or goes (backend and device are told).
    Link {
        /// True for link up.
        up: bool,
    },
    /// Hardware reset.
    Reset,
}

impl Op {
    /// The frame an [`Op::Receive`] delivers to a device whose MAC is `mac`.
    pub fn build_frame(dest: RxDest, len: u16, fill: u8, head: &[u8], mac: [u8; 6]) -> Vec<u8> {
        let total = head.len().max(len as usize).min(MAX_RX_FRAME);
        let mut f = Vec::with_capacity(total);
        f.extend_from_slice(&head[..head.len().min(total)]);
        f.resize(total, fill);
        let dst = match dest {
            RxDest::Own => Some(mac),
            RxDest::Broadcast => Some([0xff; 6]),
            RxDest::Multicast => Some([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
            RxDest::AsIs => None,
        };
        if let Some(d) = dst {
            let n = f.len().min(6);
            f[..n].copy_from_slice(&d[..n]);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_frames_are_padded_capped_and_addressed() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let f = Op::build_frame(RxDest::Own, 60, 0xaa, &[1, 2, 3, 4, 5, 6, 7, 8], mac);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[..6], &mac);
        assert_eq!(f[6..8], [7, 8]);
        assert!(f[8..].iter().all(|&b| b == 0xaa));
        let big = Op::build_frame(RxDest::AsIs, u16::MAX, 0, &vec![9; 70000], mac);
        assert_eq!(big.len(), MAX_RX_FRAME);
        let tiny = Op::build_frame(RxDest::Broadcast, 3, 0, &[], mac);
        assert_eq!(tiny, vec![0xff; 3]);
        assert_eq!(Width::from_bytes(2).bytes(), 2);
        assert_eq!(Width::from_bytes(7), Width::Dword);
    }
}
