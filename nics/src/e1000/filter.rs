//! Receive address filtering (SDM "Packet Address Filtering" and the filter registers): broadcast (RCTL.BAM), promiscuous
//! modes (UPE, MPE), the 16 exact receive addresses (RAL/RAH with AV), the 4096-bit
//! multicast hash table (MTA, bits chosen by RCTL.MO) and the VLAN filter (VFTA, VFE,
//! with the CFI check of CFIEN).

use vm_memory::GuestMemory;

use super::regs::{self, rctl, RA_ENTRIES};
use super::E1000;

/// What kind of destination address a frame had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// An individual address.
    Unicast,
    /// A group address other than broadcast.
    Multicast,
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
}

impl Dest {
    /// Classifies a destination address.
    pub fn of(da: &[u8]) -> Dest {
        if da.iter().all(|&b| b == 0xff) {
            Dest::Broadcast
        } else if da[0] & 1 != 0 {
            Dest::Multicast
        } else {
            Dest::Unicast
        }
    }
}

/// The 12-bit multicast hash of destination `da` for multicast offset `mo` (RCTL.MO).
pub fn mta_hash(da: &[u8], mo: u32) -> u32 {
    let (a4, a5) = (da[4] as u32, da[5] as u32);
    let h = match mo & 3 {
        0 => a4 >> 4 | a5 << 4,
        1 => a4 >> 3 | a5 << 5,
        2 => a4 >> 2 | a5 << 6,
        _ => a4 | a5 << 8,
    };
    h & 0xfff
}

impl<M: GuestMemory> E1000<M> {
    /// True if one of the 16 receive address registers with AV set and ASEL = 00
    /// (destination) holds `da`.
    fn exact_match(&self, da: &[u8]) -> bool {
        (0..RA_ENTRIES as u32).any(|i| {
            let rah = self.reg(regs::RAH0 + 8 * i);
            if rah & 1 << 31 == 0 || rah >> 16 & 3 != 0 {
                return false;
            }
            let ral = self.reg(regs::RAL0 + 8 * i);
            ral.to_le_bytes() == da[..4] && (rah as u16).to_le_bytes() == da[4..6]
        })
    }

    fn mta_match(&self, da: &[u8]) -> bool {
        let mo = self.reg(regs::RCTL) >> rctl::MO_SHIFT & 3;
        let h = mta_hash(da, mo);
        self.reg(regs::MTA + 4 * (h >> 5)) >> (h & 31) & 1 != 0
    }

    /// The VLAN filter: true if the frame is untagged, filtering is off, or its VLAN ID
    /// is set in VFTA (and, with CFIEN, its CFI bit matches RCTL.CFI).
    fn vlan_match(&self, frame: &[u8]) -> bool {
        let rctl = self.reg(regs::RCTL);
        let vet = self.reg(regs::VET) as u16;
        if frame.len() < 16 || u16::from_be_bytes([frame[12], frame[13]]) != vet {
            return true;
        }
        let tci = u16::from_be_bytes([frame[14], frame[15]]) as u32;
        if rctl & rctl::CFIEN != 0 && (tci >> 12 & 1) != (rctl >> 20 & 1) {
            return false;
        }
        if rctl & rctl::VFE == 0 {
            return true;
        }
        let vid = tci & 0xfff;
        self.reg(regs::VFTA + 4 * (vid >> 5)) >> (vid & 31) & 1 != 0
    }

    /// Decides whether the receive filters pass `frame` (at least 14 bytes long).
    pub(crate) fn filter(&self, frame: &[u8]) -> Option<Dest> {
        let da = &frame[..6];
        let dest = Dest::of(da);
        let rctl = self.reg(regs::RCTL);
        let pass = match dest {
            Dest::Broadcast => rctl & rctl::BAM != 0 || rctl & rctl::MPE != 0,
            Dest::Multicast => rctl & rctl::MPE != 0 || self.exact_match(da) || self.mta_match(da),
            Dest::Unicast => rctl & rctl::UPE != 0 || self.exact_match(da),
        };
        if !pass {
            log::trace!("e1000: frame to {da:02x?} filtered");
            return None;
        }
        if !self.vlan_match(frame) {
            log::trace!("e1000: frame filtered by VLAN filter");
            return None;
        }
        Some(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_uses_the_bits_mo_selects() {
        let da = [0x01, 0x00, 0x5e, 0x00, 0xab, 0xcd];
        assert_eq!(mta_hash(&da, 0), 0xcda);
        assert_eq!(mta_hash(&da, 1), (0xab >> 3 | 0xcd << 5) & 0xfff);
        assert_eq!(mta_hash(&da, 3), 0xdab);
        assert_eq!(Dest::of(&[0xff; 6]), Dest::Broadcast);
        assert_eq!(Dest::of(&da), Dest::Multicast);
    }
}
