//! [`BenchDevice`]: what the bench needs from a device beyond [`NicDevice`] — a
//! side-effect-free view of the registers a driver author looks at first, for
//! [`Bench::register`](super::Bench::register) and for failure messages.
//!
//! Reading registers through the bus would change the device (the e1000 ICR and the
//! RTL8139 ISR clear on read, NE2000 reads depend on the selected page), so the view is
//! taken from the models' save/restore state and register dumps instead.

use vm_nic_devices::e1000::{regs as e1000_regs, E1000};
use vm_nic_devices::ne2000::Ne2000;
use vm_nic_devices::pci::reg;
use vm_nic_devices::rtl8139::{regs as rtl_regs, Rtl8139};
use vm_nic_devices::NicDevice;

use super::TestMemory;

/// The `nic`/`nic_mut` pair of a model that implements [`NicDevice`] itself.
macro_rules! as_nic {
    () => {
        fn nic(&self) -> &dyn NicDevice<TestMemory> {
            self
        }

        fn nic_mut(&mut self) -> &mut dyn NicDevice<TestMemory> {
            self
        }
    };
}

/// A named register value in a device view.
pub type RegisterValue = (&'static str, u64);

/// A device the [`Bench`](super::Bench) can drive and describe.
///
/// Implemented for the three models (with their registers) and for
/// `Box<dyn NicDevice<TestMemory>>` (PCI command and status only).
pub trait BenchDevice: Send {
    /// The device as a [`NicDevice`].
    fn nic(&self) -> &dyn NicDevice<TestMemory>;

    /// The device as a mutable [`NicDevice`].
    fn nic_mut(&mut self) -> &mut dyn NicDevice<TestMemory>;

    /// The registers a driver author checks first, read without side effects. The
    /// default lists the PCI command and status registers.
    fn registers(&self) -> Vec<RegisterValue> {
        pci_registers(self.nic())
    }
}

fn pci_registers(dev: &dyn NicDevice<TestMemory>) -> Vec<RegisterValue> {
    match dev.pci() {
        Some(p) => vec![
            ("PCI_COMMAND", p.read(reg::COMMAND, 2) as u64),
            ("PCI_STATUS", p.read(reg::STATUS, 2) as u64),
        ],
        None => Vec::new(),
    }
}

impl BenchDevice for Box<dyn NicDevice<TestMemory>> {
    fn nic(&self) -> &dyn NicDevice<TestMemory> {
        self.as_ref()
    }

    fn nic_mut(&mut self) -> &mut dyn NicDevice<TestMemory> {
        self.as_mut()
    }
}

impl BenchDevice for E1000<TestMemory> {
    as_nic!();

    /// CTRL, ICR (pending causes, not cleared), IMS, the receive and transmit control and
    /// ring registers, EERD and the PCI command/status.
    fn registers(&self) -> Vec<RegisterValue> {
        use e1000_regs::*;
        let s = self.state();
        let r = |off: u32| s.regs.get((off / 4) as usize).copied().unwrap_or(0) as u64;
        let mut v: Vec<RegisterValue> = [
            ("CTRL", CTRL),
            ("ICR", ICR),
            ("IMS", IMS),
            ("EERD", EERD),
            ("RCTL", RCTL),
            ("RDBAL", RDBAL),
            ("RDBAH", RDBAH),
            ("RDLEN", RDLEN),
            ("RDH", RDH),
            ("RDT", RDT),
            ("TCTL", TCTL),
            ("TDBAL", TDBAL),
            ("TDBAH", TDBAH),
            ("TDLEN", TDLEN),
            ("TDH", TDH),
            ("TDT", TDT),
            ("RAL0", RAL0),
            ("RAH0", RAH0),
        ]
        .iter()
        .map(|&(name, off)| (name, r(off)))
        .collect();
        v.extend(pci_registers(self));
        v
    }
}

impl BenchDevice for Rtl8139<TestMemory> {
    as_nic!();

    /// CR, IMR, ISR, TSD0-3, TSAD0-3, RBSTART, CAPR, CBR, TCR, RCR, CpCmd, RDSAR and the
    /// PCI command/status, from the side-effect-free register dump.
    fn registers(&self) -> Vec<RegisterValue> {
        use rtl_regs::*;
        let d = self.register_dump();
        let b = |off: u8| d[off as usize] as u64;
        let w = |off: u8| u16::from_le_bytes([d[off as usize], d[off as usize + 1]]) as u64;
        let l = |off: u8| {
            let o = off as usize;
            u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]) as u64
        };
        const TSD: [&str; 4] = ["TSD0", "TSD1", "TSD2", "TSD3"];
        const TSADN: [&str; 4] = ["TSAD0", "TSAD1", "TSAD2", "TSAD3"];
        let mut v = vec![("CR", b(CR)), ("IMR", w(IMR)), ("ISR", w(ISR))];
        for n in 0..4u8 {
            v.push((TSD[n as usize], l(TSD0 + 4 * n)));
        }
        for n in 0..4u8 {
            v.push((TSADN[n as usize], l(TSAD0 + 4 * n)));
        }
        v.extend([
            ("RBSTART", l(RBSTART)),
            ("CAPR", w(CAPR)),
            ("CBR", w(CBR)),
            ("TCR", l(TCR)),
            ("RCR", l(RCR)),
            ("CPCMD", w(CPCMD)),
            ("RDSAR", l(RDSAR)),
        ]);
        v.extend(pci_registers(self));
        v
    }
}

impl BenchDevice for Ne2000<TestMemory> {
    as_nic!();

    /// The DP8390 registers as the chip holds them (whatever page is selected), whether
    /// it is started, and the PCI command/status for the RTL8029.
    fn registers(&self) -> Vec<RegisterValue> {
        let s = self.state();
        let mut v = vec![
            ("STARTED", s.started as u64),
            ("PAGE", s.page as u64),
            ("ISR", s.isr.bits() as u64),
            ("IMR", s.imr.bits() as u64),
            ("DCR", s.dcr.bits() as u64),
            ("TCR", s.tcr.bits() as u64),
            ("RCR", s.rcr.bits() as u64),
            ("TSR", s.tsr.bits() as u64),
            ("RSR", s.rsr.bits() as u64),
            ("PSTART", s.pstart as u64),
            ("PSTOP", s.pstop as u64),
            ("BNRY", s.bnry as u64),
            ("CURR", s.curr as u64),
            ("TPSR", s.tpsr as u64),
            ("TBCR", s.tbcr as u64),
            ("RSAR", s.rsar as u64),
            ("RBCR", s.rbcr as u64),
            ("CRDA", s.crda as u64),
        ];
        v.extend(pci_registers(self));
        v
    }
}
