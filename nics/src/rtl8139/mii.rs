//! The internal PHY seen through BMCR/BMSR/ANAR/ANLPAR/ANER, plus MSR and CSCR. The link
//! partner is an ideal 100BASE-TX full-duplex switch port; auto-negotiation completes at
//! once whenever the link is up.

use vm_memory::GuestMemory;

use super::regs::mii;
use super::Rtl8139;

impl<M: GuestMemory> Rtl8139<M> {
    /// BMCR write: speed, auto-negotiation enable and duplex need the 9346CR config-write
    /// mode; reset and restart-negotiation complete at once.
    pub(super) fn bmcr_write(&mut self, v: u16) {
        let unlocked =
            self.r.cr9346 & super::regs::cr9346::EEM_MASK == super::regs::cr9346::EEM_CONFIG_WRITE;
        let mut new = v;
        if !unlocked {
            if (new ^ self.r.bmcr) & mii::BMCR_LOCKED != 0 {
                log::debug!("rtl8139: BMCR speed/ANE/duplex write while 9346CR is locked");
            }
            new = (new & !mii::BMCR_LOCKED) | (self.r.bmcr & mii::BMCR_LOCKED);
        }
        self.r.bmcr = if new & mii::BMCR_RESET != 0 {
            mii::BMCR_DEFAULT
        } else {
            new & mii::BMCR_LOCKED
        };
    }

    fn negotiated(&self) -> bool {
        self.r.link_up && self.r.bmcr & mii::BMCR_ANE != 0
    }

    pub(super) fn bmsr(&self) -> u16 {
        let mut v = mii::BMSR_BASE;
        if self.r.link_up {
            v |= mii::BMSR_LINK;
        }
        if self.negotiated() {
            v |= mii::BMSR_AN_COMPLETE;
        }
        v
    }

    pub(super) fn anlpar(&self) -> u16 {
        if self.negotiated() {
            mii::ANLPAR_PARTNER
        } else {
            0
        }
    }

    pub(super) fn aner(&self) -> u16 {
        if self.negotiated() {
            mii::ANER_LP_NW_ABLE
        } else {
            0
        }
    }

    /// MSR: flow-control enables as written, LINKB when the link is down, SPEED_10 when
    /// 10 Mbit/s is forced.
    pub(super) fn msr(&self) -> u8 {
        let mut v = self.r.bytes[super::regs::MSR as usize] & 0xC0;
        if !self.r.link_up {
            v |= mii::MSR_LINKB;
        }
        if self.r.bmcr & (mii::BMCR_ANE | mii::BMCR_SPEED100) == 0 {
            v |= 1 << 3;
        }
        v
    }

    /// CSCR: stored bits, link OK, and the link-change flag Linux 8139too reads when ISR
    /// reports PUN/LinkChg (it follows that ISR bit).
    pub(super) fn cscr(&self) -> u16 {
        let mut v = u16::from_le_bytes([self.r.bytes[0x74], self.r.bytes[0x75]]);
        if self.r.link_up {
            v |= mii::CSCR_LINK_OK;
        }
        if self.r.isr & super::regs::int::LINK_CHG != 0 {
            v |= mii::CSCR_LINK_CHANGE;
        }
        v
    }
}
