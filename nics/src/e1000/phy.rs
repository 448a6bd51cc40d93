//! The integrated copper PHY (Marvell M88E1011-like, M88E1000 on the 82544GC) reached
//! through MDIC at PHY address 1.
//!
//! SDM "MDI Control Register" (MDIC) and the PHY register section of the SDM (IEEE 802.3 clause 22
//! registers 0-15 plus the Marvell-specific 16-30). Auto-negotiation takes
//! [`AUTONEG_NS`] on the injected clock; meanwhile the link is down.

/// PHY address the integrated PHY answers on.
pub const PHY_ADDR: u32 = 1;
/// How long auto-negotiation takes.
pub const AUTONEG_NS: u64 = 500_000_000;

/// PHY register numbers.
pub mod reg {
    /// Basic mode control.
    pub const BMCR: usize = 0;
    /// Basic mode status.
    pub const BMSR: usize = 1;
    /// PHY identifier 1.
    pub const PHYID1: usize = 2;
    /// PHY identifier 2.
    pub const PHYID2: usize = 3;
    /// Auto-negotiation advertisement.
    pub const ANAR: usize = 4;
    /// Link partner ability.
    pub const ANLPAR: usize = 5;
    /// Auto-negotiation expansion.
    pub const ANER: usize = 6;
    /// Next page transmit.
    pub const NPTX: usize = 7;
    /// 1000BASE-T control.
    pub const GCR: usize = 9;
    /// 1000BASE-T status.
    pub const GSR: usize = 10;
    /// Extended status.
    pub const EXT_STATUS: usize = 15;
    /// PHY specific control.
    pub const PSCR: usize = 16;
    /// PHY specific status.
    pub const PSSR: usize = 17;
    /// Interrupt enable.
    pub const IER: usize = 18;
    /// Interrupt status (clear on read).
    pub const ISR: usize = 19;
    /// Extended PHY specific control.
    pub const EPSCR: usize = 20;
    /// Receive error counter.
    pub const RXERR: usize = 21;
    /// LED control.
    pub const LEDCR: usize = 24;
}

/// BMCR bits.
pub mod bmcr {
    /// Software reset (self-clearing).
    pub const RESET: u16 = 1 << 15;
    /// Loopback.
    pub const LOOPBACK: u16 = 1 << 14;
    /// Auto-negotiation enable.
    pub const ANENABLE: u16 = 1 << 12;
    /// Power down.
    pub const PDOWN: u16 = 1 << 11;
    /// Restart auto-negotiation (self-clearing).
    pub const ANRESTART: u16 = 1 << 9;
}

/// BMSR bits.
pub mod bmsr {
    /// Link is up.
    pub const LSTATUS: u16 = 1 << 2;
    /// Auto-negotiation complete.
    pub const ANEGCOMPLETE: u16 = 1 << 5;
    /// Capabilities: 10/100 half/full, extended status, preamble suppression, AN
    /// ability, extended registers.
    pub const CAPS: u16 = 0x7949;
}

/// PHY specific status: 1000 Mb/s, full duplex, resolved, link.
const PSSR_LINK_1000FD: u16 = 0x8000 | 0x2000 | 0x0800 | 0x0400;

/// Which registers a write changes (0 = read-only).
const WRITABLE: [u16; 32] = {
    let mut w = [0u16; 32];
    w[reg::BMCR] = !0x003f;
    w[reg::ANAR] = !0x201f;
    w[reg::NPTX] = 0xb7ff;
    w[reg::GCR] = 0xff00;
    w[reg::PSCR] = 0xffff;
    w[reg::IER] = 0xffff;
    w[reg::EPSCR] = 0xffff;
    w[22] = 0xffff;
    w[reg::LEDCR] = 0xffff;
    w[26] = 0xffff;
    w[29] = 0xffff;
    w[30] = 0xffff;
    w
};

/// The PHY's registers and link state machine.
#[derive(Clone, Debug)]
pub struct Phy {
    /// Register file.
    pub regs: [u16; 32],
    /// PHYID2 value for this part.
    id2: u16,
    /// Whether the cable (backend) has a link partner.
    pub cable: bool,
    /// Link established (auto-negotiation done or forced).
    pub link: bool,
    /// When auto-negotiation completes, if it is running.
    pub autoneg_deadline: Option<u64>,
    /// BMSR link status latches low (IEEE 802.3 22.2.4.2.13): a link loss stays visible
    /// until BMSR is read, even if the link has come back since.
    pub link_latched_low: bool,
}

impl Phy {
    /// A PHY at power-on with PHYID2 `id2` (0x0C20 for M88E1011, 0x0C30 for M88E1000),
    /// cable connected as given; the link comes up after auto-negotiation from `now`.
    pub fn new(id2: u16, cable: bool, now: u64) -> Self {
        let mut p = Phy {
            regs: [0; 32],
            id2,
            cable,
            link: false,
            autoneg_deadline: None,
            link_latched_low: false,
        };
        p.reset(now);
        p
    }

    /// PHY reset (BMCR.RESET or CTRL.PHY_RST): registers to defaults, then
    /// auto-negotiation restarts.
    pub fn reset(&mut self, now: u64) {
        let r = &mut self.regs;
        *r = [0; 32];
        r[reg::BMCR] = bmcr::ANENABLE | 0x0140;
        r[reg::BMSR] = bmsr::CAPS;
        r[reg::PHYID1] = 0x0141;
        r[reg::PHYID2] = self.id2;
        r[reg::ANAR] = 0x0de1;
        r[reg::NPTX] = 0x2001;
        r[reg::GCR] = 0x0e00;
        r[reg::EXT_STATUS] = 0x3000;
        r[reg::PSCR] = 0x0068;
        r[reg::EPSCR] = 0x0d60;
        r[reg::LEDCR] = 0x4100;
        self.set_link(false);
        self.restart_autoneg(now);
    }

    fn restart_autoneg(&mut self, now: u64) {
        self.set_link(false);
        if self.powered_down() {
            self.autoneg_deadline = None;
        } else if self.regs[reg::BMCR] & bmcr::ANENABLE != 0 {
            self.autoneg_deadline = self.cable.then(|| now.saturating_add(AUTONEG_NS));
        } else {
            self.autoneg_deadline = None;
            // Forced speed: the link follows the cable at once.
            let cable = self.cable;
            self.set_link(cable);
        }
    }

    /// True while BMCR.PDOWN holds the PHY powered down (no link).
    pub fn powered_down(&self) -> bool {
        self.regs[reg::BMCR] & bmcr::PDOWN != 0
    }

    /// True when the PHY loops transmitted frames back to the receiver.
    pub fn loopback(&self) -> bool {
        self.regs[reg::BMCR] & bmcr::LOOPBACK != 0
    }

    /// Reads register `r` (0-31). ISR clears on read; BMSR shows a latched link loss once.
    pub fn read(&mut self, r: usize) -> u16 {
        let r = r & 31;
        let mut v = self.regs[r];
        if r == reg::ISR {
            self.regs[reg::ISR] = 0;
        }
        if r == reg::BMSR && self.link_latched_low {
            self.link_latched_low = false;
            v &= !bmsr::LSTATUS;
        }
        v
    }

    /// Writes register `r`. Returns true if the link state may have changed.
    pub fn write(&mut self, r: usize, value: u16, now: u64) -> bool {
        let r = r & 31;
        let old_link = self.link;
        let old_bmcr = self.regs[reg::BMCR];
        let w = WRITABLE[r];
        self.regs[r] = (self.regs[r] & !w) | (value & w);
        if r == reg::BMCR {
            let was_down = old_bmcr & bmcr::PDOWN != 0;
            self.regs[reg::BMCR] &= !(bmcr::RESET | bmcr::ANRESTART);
            if value & (bmcr::RESET | bmcr::ANRESTART) != 0 || (was_down && !self.powered_down()) {
                // A soft reset keeps the control settings just written (as the M88 does);
                // it, a restart, or leaving power-down starts auto-negotiation again.
                self.restart_autoneg(now);
            } else if self.powered_down() {
                self.autoneg_deadline = None;
                self.set_link(false);
            } else if value & bmcr::ANENABLE == 0 {
                self.autoneg_deadline = None;
                let cable = self.cable;
                self.set_link(cable);
            }
        }
        old_link != self.link
    }

    /// The cable was plugged or unplugged. Returns true if the link changed.
    pub fn set_cable(&mut self, up: bool, now: u64) -> bool {
        let old = self.link;
        if up == self.cable {
            return false;
        }
        self.cable = up;
        if up {
            self.restart_autoneg(now);
        } else {
            self.autoneg_deadline = None;
            self.set_link(false);
        }
        old != self.link
    }

    /// Completes auto-negotiation if it is due at `now`. Returns true if the link came up.
    pub fn run_timer(&mut self, now: u64) -> bool {
        match self.autoneg_deadline {
            Some(d) if d <= now => {
                self.autoneg_deadline = None;
                let was = self.link;
                self.set_link(self.cable);
                self.link && !was
            }
            _ => false,
        }
    }

    fn set_link(&mut self, up: bool) {
        if self.link && !up {
            self.link_latched_low = true;
        }
        self.link = up;
        let r = &mut self.regs;
        if up {
            r[reg::BMSR] |= bmsr::LSTATUS;
            r[reg::PSSR] = PSSR_LINK_1000FD;
            if r[reg::BMCR] & bmcr::ANENABLE != 0 {
                r[reg::BMSR] |= bmsr::ANEGCOMPLETE;
                r[reg::ANLPAR] = 0x45e1;
                r[reg::ANER] = 0x0001;
                r[reg::GSR] = 0x3c00;
            }
        } else {
            r[reg::BMSR] &= !(bmsr::LSTATUS | bmsr::ANEGCOMPLETE);
            r[reg::PSSR] = 0;
            r[reg::ANLPAR] = 0;
            r[reg::ANER] = 0;
            r[reg::GSR] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoneg_completes_after_the_delay() {
        let mut p = Phy::new(0x0c20, true, 0);
        assert!(!p.link);
        assert!(!p.run_timer(AUTONEG_NS - 1));
        assert!(p.run_timer(AUTONEG_NS));
        assert_eq!(p.read(reg::BMSR) & 0x24, 0x24);
        assert_eq!(p.read(reg::PSSR), 0xac00);
    }

    #[test]
    fn link_loss_latches_in_bmsr_until_read() {
        let mut p = Phy::new(0x0c20, true, 0);
        p.run_timer(AUTONEG_NS);
        p.read(reg::BMSR);
        p.set_cable(false, AUTONEG_NS);
        p.set_cable(true, AUTONEG_NS);
        p.run_timer(2 * AUTONEG_NS);
        assert!(p.link);
        assert_eq!(
            p.read(reg::BMSR) & bmsr::LSTATUS,
            0,
            "the loss is reported once"
        );
        assert_ne!(p.read(reg::BMSR) & bmsr::LSTATUS, 0);
    }

    #[test]
    fn power_down_drops_the_link_until_powered_up() {
        let mut p = Phy::new(0x0c20, true, 0);
        p.run_timer(AUTONEG_NS);
        assert!(p.write(reg::BMCR, 0x1140 | bmcr::PDOWN, AUTONEG_NS));
        assert!(!p.link);
        assert_eq!(p.autoneg_deadline, None);
        assert!(!p.set_cable(false, AUTONEG_NS) && !p.set_cable(true, AUTONEG_NS));
        assert!(!p.link, "no link while powered down");
        p.write(reg::BMCR, 0x1140, 2 * AUTONEG_NS);
        assert!(!p.run_timer(3 * AUTONEG_NS - 1));
        assert!(
            p.run_timer(3 * AUTONEG_NS),
            "auto-negotiation after power-up"
        );
    }

    #[test]
    fn ids_are_read_only() {
        let mut p = Phy::new(0x0c30, true, 0);
        p.write(reg::PHYID1, 0, 0);
        assert_eq!(p.read(reg::PHYID1), 0x0141);
        assert_eq!(p.read(reg::PHYID2), 0x0c30);
    }
}
