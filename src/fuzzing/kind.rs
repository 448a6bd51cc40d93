//! The device kinds the harness builds, with what each one is allowed to do.

use crate::fuzzing::cause::{CauseMask, CauseMaskRegs};
use crate::fuzzing::layout::{RAM_SIZE, REGION_SIZE};
use crate::fuzzing::op::{Descriptor, GuestAddr};

/// A vm-nic device the harness can build, one per fuzz target.
#[allow(non_camel_case_types)] // the variants carry the chip names users know
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// e1000, Intel 82540EM (QEMU's default e1000).
    E1000,
    /// e1000-82544gc, Intel 82544GC.
    E1000_82544GC,
    /// e1000-82545em, Intel 82545EM.
    E1000_82545EM,
    /// rtl8139 revision 0x10: the RTL8139 without C+ mode.
    Rtl8139,
    /// rtl8139 revision 0x20: the RTL8139C+ (QEMU's only revision).
    Rtl8139CPlus,
    /// ne2k_pci, Realtek RTL8029.
    Ne2kPci,
    /// ne2k_isa at iobase 0x300, IRQ 9.
    Ne2kIsa,
}

/// A descriptor format (see [`crate::fuzzing::Descriptor`] for the byte placement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorLayout {
    /// Intel 8254x 16-byte descriptors: address first.
    E1000,
    /// RTL8139C+ 16-byte descriptors: flags and length first, address last.
    Rtl8139CPlus,
}

/// What a device kind may do; the harness's oracles check it after every op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest frame the device may hand to its backend.
    pub max_tx_frame: usize,
    /// Work units ([`vm_nic_devices::NicDevice::work_done`]) one op may take, not
    /// counting frames received.
    pub work_per_op: u64,
    /// Work units one frame offered to `receive` may take.
    pub work_per_rx_frame: u64,
    /// True when the device is a bus master; a device that is not must never write RAM.
    pub dma: bool,
    /// Where the harness reads the interrupt causes and mask to check the PCI
    /// Interrupt Status against them, if anywhere.
    pub cause_mask: Option<CauseMask>,
}

/// Descriptors an e1000 ring may have (TDLEN/RDLEN are 20 bits, 16 bytes each).
const E1000_RING_MAX: u64 = 0x10_0000 / 16;
/// Descriptors an RTL8139C+ ring walk may visit: rings end at the descriptor with EOR
/// and the chip's ring index is 6 bits (64 descriptors); 1024 is a generous bound that
/// still catches a walk that never ends.
const CPLUS_RING_MAX: u64 = 1024;
/// Bytes one descriptor can move at most in the harness: its length field, clipped by
/// guest RAM since a buffer must lie inside RAM to be read.
const fn desc_bytes(len_field_max: u64) -> u64 {
    if len_field_max < RAM_SIZE {
        len_field_max
    } else {
        RAM_SIZE
    }
}

impl DeviceKind {
    /// Every kind, in target order.
    pub const ALL: [DeviceKind; 7] = [
        DeviceKind::E1000,
        DeviceKind::E1000_82544GC,
        DeviceKind::E1000_82545EM,
        DeviceKind::Rtl8139,
        DeviceKind::Rtl8139CPlus,
        DeviceKind::Ne2kPci,
        DeviceKind::Ne2kIsa,
    ];

    /// The fuzz target name: `e1000`, `e1000_82544gc`, `e1000_82545em`, `rtl8139_c`,
    /// `rtl8139_cplus`, `ne2k_pci`, `ne2k_isa`.
    pub fn target_name(self) -> &'static str {
        match self {
            DeviceKind::E1000 => "e1000",
            DeviceKind::E1000_82544GC => "e1000_82544gc",
            DeviceKind::E1000_82545EM => "e1000_82545em",
            DeviceKind::Rtl8139 => "rtl8139_c",
            DeviceKind::Rtl8139CPlus => "rtl8139_cplus",
            DeviceKind::Ne2kPci => "ne2k_pci",
            DeviceKind::Ne2kIsa => "ne2k_isa",
        }
    }

    /// The kind fuzz target `name` drives.
    pub fn from_target_name(name: &str) -> Option<DeviceKind> {
        DeviceKind::ALL
            .into_iter()
            .find(|k| k.target_name() == name)
    }

    /// QEMU's model name, as [`vm_nic_devices::models::create`] takes it.
    pub fn model(self) -> &'static str {
        match self {
            DeviceKind::E1000 => "e1000",
            DeviceKind::E1000_82544GC => "e1000-82544gc",
            DeviceKind::E1000_82545EM => "e1000-82545em",
            DeviceKind::Rtl8139 | DeviceKind::Rtl8139CPlus => "rtl8139",
            DeviceKind::Ne2kPci => "ne2k_pci",
            DeviceKind::Ne2kIsa => "ne2k_isa",
        }
    }

    /// The `-device` properties that select this kind.
    pub fn props(self) -> Vec<(String, String)> {
        let rev = match self {
            DeviceKind::Rtl8139 => "0x10",
            DeviceKind::Rtl8139CPlus => "0x20",
            _ => return Vec::new(),
        };
        vec![("revision".to_string(), rev.to_string())]
    }

    /// True for the three e1000 variants.
    pub fn is_e1000(self) -> bool {
        matches!(
            self,
            DeviceKind::E1000 | DeviceKind::E1000_82544GC | DeviceKind::E1000_82545EM
        )
    }

    /// The descriptor format [`crate::fuzzing::Op::PlaceRing`] writes, if the model has
    /// descriptor rings in guest memory.
    pub fn descriptor_layout(self) -> Option<DescriptorLayout> {
        match self {
            k if k.is_e1000() => Some(DescriptorLayout::E1000),
            DeviceKind::Rtl8139 | DeviceKind::Rtl8139CPlus => Some(DescriptorLayout::Rtl8139CPlus),
            _ => None,
        }
    }

    /// What the device may do. The figures, from the datasheets:
    ///
    /// - e1000: a TSO segment is header (8-bit HDRLEN) + MSS, and the model's packet
    ///   buffer is 64 KiB, so no frame exceeds 64 KiB + a 4-byte inserted VLAN tag (plain
    ///   packets are bounded at 16 KiB by the transmit FIFO; [`Limits`] cannot tell the two
    ///   apart, the transmit property tests check the plain bound). A doorbell may walk a
    ///   whole ring (2^16 descriptors), each moving at most all of guest RAM.
    /// - RTL8139 (rev 0x10, no C+ mode): TSD's SIZE field is 13 bits (8191 bytes); 4
    ///   transmit descriptors; the receive ring buffer is at most 64 KiB + 16.
    /// - RTL8139C+: 16-bit descriptor lengths and a 64 KiB transmit buffer; ring walks
    ///   bounded generously at 1024 descriptors (the chip's index is 6 bits).
    /// - NE2000: TBCR is 16 bits; no bus mastering at all (remote DMA goes through the
    ///   data port), so guest RAM must never change.
    pub fn limits(self) -> Limits {
        const UNIT: u64 = 64; // bytes per work unit (NicDevice::work_done)
        const SLACK: u64 = 64;
        match self {
            k if k.is_e1000() => Limits {
                max_tx_frame: 65536 + 4,
                work_per_op: E1000_RING_MAX * (1 + desc_bytes(0x10_0000) / UNIT) + SLACK,
                work_per_rx_frame: E1000_RING_MAX + 65536 / UNIT + SLACK,
                dma: true,
                cause_mask: Some(CauseMask::SavedState),
            },
            DeviceKind::Rtl8139 => Limits {
                max_tx_frame: 8191,
                work_per_op: 4 * (1 + 8191 / UNIT) + SLACK,
                work_per_rx_frame: 1 + (65536 + 16) / UNIT + SLACK,
                dma: true,
                cause_mask: Some(CauseMask::Registers(RTL8139_ISR_IMR)),
            },
            DeviceKind::Rtl8139CPlus => Limits {
                max_tx_frame: 65536 + 4,
                work_per_op: 2 * CPLUS_RING_MAX * (1 + desc_bytes(0xffff) / UNIT) + SLACK,
                work_per_rx_frame: CPLUS_RING_MAX + (65536 + 16) / UNIT + SLACK,
                dma: true,
                cause_mask: Some(CauseMask::Registers(RTL8139_ISR_IMR)),
            },
            _ => Limits {
                max_tx_frame: 0xffff,
                work_per_op: 256 + 0x1_0000 / UNIT + SLACK,
                work_per_rx_frame: 256 + 65536 / UNIT + SLACK,
                dma: false,
                // ne2k_isa has no PCI status bit, so the harness has nothing to compare.
                cause_mask: Some(CauseMask::SavedState),
            },
        }
    }

    /// The 16 bytes `d` becomes in this kind's descriptor layout (all zero for a kind
    /// without rings).
    pub fn descriptor_bytes(self, d: &Descriptor) -> [u8; 16] {
        let addr = match d.addr {
            GuestAddr::InRam(a) => a as u64 % RAM_SIZE,
            GuestAddr::Raw(a) => a,
        };
        let mut b = [0u8; 16];
        match self.descriptor_layout() {
            Some(DescriptorLayout::E1000) => {
                b[0..8].copy_from_slice(&addr.to_le_bytes());
                b[8..10].copy_from_slice(&d.len.to_le_bytes());
                b[10..12].copy_from_slice(&d.flags.to_le_bytes());
                b[12..16].copy_from_slice(&d.extra.to_le_bytes());
            }
            Some(DescriptorLayout::Rtl8139CPlus) => {
                b[0..2].copy_from_slice(&d.len.to_le_bytes());
                b[2..4].copy_from_slice(&d.flags.to_le_bytes());
                b[4..8].copy_from_slice(&d.extra.to_le_bytes());
                b[8..16].copy_from_slice(&addr.to_le_bytes());
            }
            None => {}
        }
        b
    }
}

/// RTL8139 ISR (0x3E) and IMR (0x3C), 16 bits each, on BAR0; reading either has no
/// side effect (ISR clears by writing 1s).
const RTL8139_ISR_IMR: CauseMaskRegs = CauseMaskRegs {
    bar: 0,
    cause: 0x3e,
    mask: 0x3c,
    width: 2,
};

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.target_name())
    }
}

// The layout relies on RAM being two regions; keep the constants honest.
const _: () = assert!(RAM_SIZE == 2 * REGION_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_models_exist() {
        for k in DeviceKind::ALL {
            assert_eq!(DeviceKind::from_target_name(k.target_name()), Some(k));
            assert!(vm_nic_devices::models::is_supported(k.model()), "{k}");
        }
        assert_eq!(DeviceKind::from_target_name("pcnet"), None);
    }

    #[test]
    fn descriptor_layouts_follow_the_datasheets() {
        let d = Descriptor {
            addr: GuestAddr::InRam(RAM_SIZE as u32 + 0x1234),
            len: 0x5ea,
            flags: 0x8b00,
            extra: 0x1122_3344,
        };
        let e = DeviceKind::E1000.descriptor_bytes(&d);
        assert_eq!(&e[0..8], &0x1234u64.to_le_bytes());
        assert_eq!(&e[8..10], &[0xea, 0x05]);
        assert_eq!(e[11], 0x8b, "CMD byte");
        let r = DeviceKind::Rtl8139CPlus.descriptor_bytes(&d);
        assert_eq!(u32::from_le_bytes(r[0..4].try_into().unwrap()), 0x8b00_05ea);
        assert_eq!(&r[8..16], &0x1234u64.to_le_bytes());
        assert_eq!(DeviceKind::Ne2kIsa.descriptor_bytes(&d), [0; 16]);
        let raw = Descriptor {
            addr: GuestAddr::Raw(u64::MAX),
            ..d
        };
        assert_eq!(&DeviceKind::E1000.descriptor_bytes(&raw)[..8], &[0xff; 8]);
    }
}
