//! An ISA card served through QEMU's PCI proxy, which carries PCI functions only.
//!
//! The carrier is a PCI function with no behaviour of its own: BAR 0 is an I/O window the
//! size of the card's port range, decoded straight to the card's ports (BAR 0 + offset =
//! `iobase` + offset), and the card's IRQ output drives the function's INTA through an
//! [`Intx`], so the command register's Interrupt Disable bit and the status register's
//! Interrupt Status bit behave as on any PCI function. No PCI driver claims the carrier
//! ([`CARRIER_IDS`]); the guest loads the card's ISA driver at the address and IRQ the
//! firmware gave the function (Linux: `insmod ne.ko io=0x<BAR 0> irq=<the function's
//! IRQ>`). The card's own `iobase` and `irq` properties have no meaning here.
//!
//! This is how vm-nic's real-guest harness runs Linux's ISA `ne` driver against
//! `ne2k_isa`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vm_nic_devices::irq::Intx;
use vm_nic_devices::{
    BarSpec, IrqLine, MacAddr, NetBackend, NicDevice, PciConfig, PciIds, RxOutcome,
};

/// The carrier's identity: vendor 0x1b36 (the range QEMU uses for its own virtual
/// devices) with a device ID no Linux driver matches, class "network controller, other"
/// (no class driver binds it either), INTA.
pub const CARRIER_IDS: PciIds = PciIds {
    vendor: 0x1b36,
    device: 0x00f0,
    revision: 0,
    class: 0x02_80_00,
    subsystem_vendor: 0x1b36,
    subsystem: 0x00f0,
    interrupt_pin: 1,
};

/// The interrupt line handed to the card when it is built: it remembers the level the card
/// drives and passes it straight on to the line it wraps (right for a PCI model, which
/// applies Interrupt Disable itself) until [`IsaCarrier::wrap`] takes that line over.
#[derive(Clone)]
pub struct IsaLine<L: IrqLine + Clone> {
    level: Arc<AtomicBool>,
    captured: Arc<AtomicBool>,
    line: L,
}

impl<L: IrqLine + Clone> IsaLine<L> {
    /// A pass-through line in front of `line`.
    pub fn new(line: L) -> Self {
        IsaLine {
            level: Arc::new(AtomicBool::new(false)),
            captured: Arc::new(AtomicBool::new(false)),
            line,
        }
    }

    /// Stops passing levels on: from now on the carrier drives `line`.
    fn capture(&self) {
        self.captured.store(true, Ordering::SeqCst);
    }

    fn level(&self) -> bool {
        self.level.load(Ordering::SeqCst)
    }
}

impl<L: IrqLine + Clone> IrqLine for IsaLine<L> {
    fn set_level(&self, asserted: bool) {
        self.level.store(asserted, Ordering::SeqCst);
        if !self.captured.load(Ordering::SeqCst) {
            self.line.set_level(asserted);
        }
    }
}

/// An ISA card behind a PCI function (see the module docs).
pub struct IsaCarrier<L: IrqLine + Clone + 'static> {
    card: Box<dyn NicDevice<GuestMemoryMmap>>,
    cfg: PciConfig,
    card_line: IsaLine<L>,
    intx: Intx,
}

impl<L: IrqLine + Clone + 'static> IsaCarrier<L> {
    /// Puts `card`, built with `card_line` as its interrupt line, behind a carrier
    /// function whose INTA drives the line `card_line` wraps. Gives `card` back (and
    /// leaves the line passing levels through) when it has no ISA port range to carry.
    pub fn wrap(
        card: Box<dyn NicDevice<GuestMemoryMmap>>,
        card_line: IsaLine<L>,
    ) -> Result<Self, Box<dyn NicDevice<GuestMemoryMmap>>> {
        let Some(isa) = card.isa() else {
            return Err(card);
        };
        let size = u64::from(isa.ports).next_power_of_two().max(4);
        let cfg = PciConfig::new(CARRIER_IDS, &[Some(BarSpec::io(size))]);
        card_line.capture();
        let intx = Intx::new(Box::new(card_line.line.clone()));
        let mut carrier = IsaCarrier {
            card,
            cfg,
            card_line,
            intx,
        };
        carrier.sync_irq();
        Ok(carrier)
    }

    /// The card's current level, through Interrupt Disable, onto INTA.
    fn sync_irq(&mut self) {
        let level = self.card_line.level();
        self.intx.update_pci(level, &mut self.cfg);
    }
}

impl<L: IrqLine + Clone + 'static> NicDevice<GuestMemoryMmap> for IsaCarrier<L> {
    fn model(&self) -> &'static str {
        self.card.model()
    }

    fn mac(&self) -> MacAddr {
        self.card.mac()
    }

    fn pci(&self) -> Option<&PciConfig> {
        Some(&self.cfg)
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.cfg.write(offset, size, value);
        // The Interrupt Disable bit may have changed.
        self.sync_irq();
    }

    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32 {
        let v = self.card.bar_read(bar, offset, size);
        self.sync_irq();
        v
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32) {
        self.card.bar_write(bar, offset, size, value);
        self.sync_irq();
    }

    fn set_memory(&mut self, mem: GuestMemoryMmap) {
        self.card.set_memory(mem);
    }

    fn can_receive(&self) -> bool {
        self.card.can_receive()
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        let out = self.card.receive(frame);
        self.sync_irq();
        out
    }

    fn set_link(&mut self, up: bool) {
        self.card.set_link(up);
        self.sync_irq();
    }

    fn next_deadline(&self) -> Option<u64> {
        self.card.next_deadline()
    }

    fn run_timers(&mut self) {
        self.card.run_timers();
        self.sync_irq();
    }

    fn reset(&mut self) {
        self.cfg.reset();
        self.card.reset();
        self.sync_irq();
    }

    fn backend(&self) -> &dyn NetBackend {
        self.card.backend()
    }

    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        self.card.backend_mut()
    }

    fn work_done(&self) -> u64 {
        self.card.work_done()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vm_nic_devices::pci::{command, reg};
    use vm_nic_devices::{Clock, IrqRecorder, ManualClock};

    use super::*;

    fn carrier(device: &str) -> (IsaCarrier<IrqRecorder>, IrqRecorder) {
        let rec = IrqRecorder::new();
        let line = IsaLine::new(rec.clone());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
        let card = crate::remote::device::build_nic(
            device,
            &["user,id=n0".to_string()],
            Box::new(line.clone()),
            clock,
            GuestMemoryMmap::default(),
        )
        .unwrap();
        let c = IsaCarrier::wrap(card, line).map_err(|_| ()).unwrap();
        (c, rec)
    }

    /// Places BAR 0 at `base` and turns on I/O decoding.
    fn enable(c: &mut IsaCarrier<IrqRecorder>, base: u32) {
        c.config_write(reg::BAR0, 4, u32::MAX);
        assert_eq!(c.config_read(reg::BAR0, 4), 0xffff_ffe1, "32 ports of I/O");
        c.config_write(reg::BAR0, 4, base);
        c.config_write(reg::COMMAND, 2, command::IO as u32);
    }

    #[test]
    fn identity_is_the_carriers_and_bar0_reaches_the_cards_ports() {
        let (mut c, _) = carrier("ne2k_isa,netdev=n0,mac=52:54:00:12:34:56,iobase=0x280");
        assert_eq!(c.config_read(reg::VENDOR_ID, 2), 0x1b36);
        assert_eq!(c.config_read(reg::DEVICE_ID, 2), 0x00f0);
        assert_eq!(c.config_read(0x0a, 2), 0x0280, "network controller, other");
        assert_eq!(c.config_read(0x3d, 1), 1, "INTA");
        enable(&mut c, 0xc100);
        assert_eq!(c.pci().unwrap().decode(0xc110, true), Some((0, 0x10)));
        // The station address PROM through remote DMA, byte-wide: each byte doubled on
        // an NE2000's 16-bit PROM.
        for (off, v) in [
            (0x0e, 0x48),
            (0x0a, 12),
            (0x0b, 0),
            (0x08, 0),
            (0x09, 0),
            (0, 0x0a),
        ] {
            c.bar_write(0, off, 1, v);
        }
        let prom: Vec<u32> = (0..12).map(|_| c.bar_read(0, 0x10, 1)).collect();
        assert_eq!(
            prom,
            [0x52, 0x52, 0x54, 0x54, 0, 0, 0x12, 0x12, 0x34, 0x34, 0x56, 0x56]
        );
    }

    #[test]
    fn the_cards_irq_drives_inta_through_interrupt_disable() {
        let (mut c, rec) = carrier("ne2k_isa,netdev=n0");
        enable(&mut c, 0xc100);
        // Reset through the reset port sets ISR.RST; unmask nothing yet: line low.
        c.bar_read(0, 0x1f, 1);
        c.bar_write(0, 0x07, 1, 0xff); // clear ISR
        assert!(!rec.level());
        // Remote DMA of 0 bytes completes at once (ISR.RDC); unmask RDC: line high.
        c.bar_write(0, 0x0f, 1, 0x40);
        c.bar_write(0, 0x0a, 1, 0);
        c.bar_write(0, 0x0b, 1, 0);
        c.bar_write(0, 0x00, 1, 0x0a);
        assert_ne!(c.bar_read(0, 0x07, 1) & 0x40, 0, "RDC set");
        assert!(rec.level(), "INTA follows the card");
        assert_ne!(c.config_read(reg::STATUS, 2) & 0x08, 0, "Interrupt Status");
        // Interrupt Disable lowers INTA; the status bit still shows the request.
        c.config_write(
            reg::COMMAND,
            2,
            (command::IO | command::INTX_DISABLE) as u32,
        );
        assert!(!rec.level());
        assert_ne!(c.config_read(reg::STATUS, 2) & 0x08, 0);
        c.config_write(reg::COMMAND, 2, command::IO as u32);
        assert!(rec.level());
        // Acknowledging in the card lowers it.
        c.bar_write(0, 0x07, 1, 0x40);
        assert!(!rec.level());
        assert_eq!(c.config_read(reg::STATUS, 2) & 0x08, 0);
    }

    #[test]
    fn a_pci_model_is_not_wrapped_and_keeps_its_own_line() {
        let rec = IrqRecorder::new();
        let line = IsaLine::new(rec.clone());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
        let card = crate::remote::device::build_nic(
            "ne2k_pci,netdev=n0",
            &["user,id=n0".to_string()],
            Box::new(line.clone()),
            clock,
            GuestMemoryMmap::default(),
        )
        .unwrap();
        let Err(card) = IsaCarrier::wrap(card, line.clone()) else {
            panic!("a PCI model was wrapped");
        };
        assert_eq!(card.model(), "ne2k_pci");
        line.set_level(true);
        assert!(rec.level(), "the line still passes levels through");
    }
}
