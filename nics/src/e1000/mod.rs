//! Intel 8254x gigabit Ethernet: the 82540EM (`e1000`, 8086:100E), the 82544GC
//! (`e1000-82544gc`, 8086:100C) and the 82545EM (`e1000-82545em`, 8086:100F).
//!
//! Written from Intel's "PCI/PCI-X Family of Gigabit Ethernet Controllers Software
//! Developer's Manual" (the 8254x SDM). One file per register group:
//! [`regs`] (the register table with masks and reset values), [`eeprom`], [`phy`],
//! [`interrupts`], [`tx`] with [`offload`] (checksums, TSO), [`rx`] with [`filter`],
//! [`stats`] and [`state`] (save/restore).
//!
//! The device is driven through [`NicDevice`]: BAR0 is the 128 KiB register window, BAR1
//! a 64-byte I/O window with IOADDR at 0 and IODATA at 4. Transmission happens inside the
//! TDT (or TCTL) write; reception through [`NicDevice::receive`]. DMA happens only while
//! the PCI Bus Master bit is set. Frames are assembled in buffers the device owns, so the
//! transmit and receive paths do not allocate per frame.

pub mod eeprom;
pub mod filter;
pub mod interrupts;
pub mod offload;
pub mod phy;
pub mod regs;
pub mod rx;
pub mod state;
pub mod stats;
pub mod tx;

use std::sync::Arc;

use vm_memory::GuestMemory;
use vm_nic_backends::{MacAddr, NetBackend};

use crate::clock::Clock;
use crate::device::{NicConfig, NicDevice, RxOutcome};
use crate::irq::Intx;
use crate::models::ModelError;
use crate::pci::{BarSpec, PciConfig, PciIds};
use crate::state::{NicState, RestoreError};

use eeprom::Eeprom;
use interrupts::IrqTimers;
use phy::Phy;
use regs::{ctrl, eecd, eerd, icr, mdic, Kind, Parts, RegDef};
use stats::Stats;
use tx::TxEngine;

pub use state::E1000State;

/// The three parts of the family this model offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// 82540EM desktop controller, QEMU's `e1000`.
    E82540EM,
    /// 82544GC, QEMU's `e1000-82544gc`.
    E82544GC,
    /// 82545EM, QEMU's `e1000-82545em`.
    E82545EM,
}

impl Variant {
    /// The variant for a QEMU model name.
    pub fn from_model(name: &str) -> Option<Self> {
        match name {
            "e1000" => Some(Variant::E82540EM),
            "e1000-82544gc" => Some(Variant::E82544GC),
            "e1000-82545em" => Some(Variant::E82545EM),
            _ => None,
        }
    }

    /// QEMU's model name.
    pub fn model(self) -> &'static str {
        match self {
            Variant::E82540EM => "e1000",
            Variant::E82544GC => "e1000-82544gc",
            Variant::E82545EM => "e1000-82545em",
        }
    }

    /// PCI identity: device ID, subsystem ID.
    pub fn pci_ids(self) -> PciIds {
        let (device, subsystem) = match self {
            Variant::E82540EM => (0x100e, 0x001e),
            Variant::E82544GC => (0x100c, 0x1107),
            Variant::E82545EM => (0x100f, 0x1001),
        };
        PciIds {
            vendor: 0x8086,
            device,
            revision: 0x03,
            class: 0x02_00_00,
            subsystem_vendor: 0x8086,
            subsystem,
            interrupt_pin: 1,
        }
    }

    /// PHY identifier 2: M88E1000 on the 82544GC, M88E1011 on the others.
    pub fn phy_id2(self) -> u16 {
        match self {
            Variant::E82544GC => 0x0c30,
            _ => 0x0c20,
        }
    }

    /// True if the part has registers marked `parts`.
    pub fn has(self, parts: Parts) -> bool {
        parts == Parts::All || self != Variant::E82544GC
    }
}

/// An 8254x function. See the [module documentation](self).
pub struct E1000<M> {
    pub(crate) variant: Variant,
    pub(crate) mac: MacAddr,
    pub(crate) pci: PciConfig,
    pub(crate) pm_cap: u8,
    pub(crate) intx: Intx,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mem: M,
    pub(crate) backend: Box<dyn NetBackend>,
    /// BAR0 contents by dword (plain registers, ICR, IMS and control registers).
    pub(crate) regs: Box<[u32]>,
    pub(crate) eeprom: Eeprom,
    pub(crate) phy: Phy,
    pub(crate) timers: IrqTimers,
    pub(crate) stats: Stats,
    pub(crate) tx: TxEngine,
    /// Receive staging buffer (frame + FCS), reused for every frame.
    pub(crate) rx_frame: Vec<u8>,
    pub(crate) ioaddr: u32,
    pub(crate) work: u64,
    /// A frame is waiting for descriptors (RNBC already counted for it).
    pub(crate) rx_stalled: bool,
}

impl<M> std::fmt::Debug for E1000<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E1000")
            .field("variant", &self.variant)
            .field("mac", &self.mac)
            .finish()
    }
}

/// Creates the model from its `-device` properties (the e1000 family has none of its
/// own; any property is an error naming the valid ones, i.e. none).
pub fn create<M>(
    name: &str,
    props: &[(String, String)],
    cfg: NicConfig<M>,
) -> Result<Box<dyn NicDevice<M>>, ModelError>
where
    M: GuestMemory + Send + 'static,
{
    let variant = Variant::from_model(name).ok_or_else(|| ModelError::Unknown(name.to_string()))?;
    if let Some((key, _)) = props.first() {
        return Err(ModelError::UnknownProperty {
            model: name.to_string(),
            key: key.clone(),
            valid: Vec::new(),
        });
    }
    Ok(Box::new(E1000::new(variant, cfg)))
}

#[inline]
fn word(off: u32) -> usize {
    (off / 4) as usize
}

impl<M: GuestMemory> E1000<M> {
    /// Builds the function at power-on.
    pub fn new(variant: Variant, cfg: NicConfig<M>) -> Self {
        let ids = variant.pci_ids();
        let mut pci = PciConfig::new(
            ids,
            &[
                Some(BarSpec::mem32(regs::MMIO_SIZE)),
                Some(BarSpec::io(regs::IO_SIZE)),
            ],
        );
        // Power management capability at 0xDC, where the SDM (section 6.3.3) puts it on
        // every 8254x: version 2, PME from D0/D3hot/D3cold; PMCSR power state and
        // PME_En writable, PME_Status write-1-to-clear.
        pci.place_next_capability(0xdc);
        let pm_cap = pci.add_capability(0x01, &[0x22, 0xc8, 0, 0, 0, 0], &[0, 0, 0x03, 0x01]);
        pci.set_w1c_mask(pm_cap as u16 + 5, &[0x80]);
        let words = eeprom::image(cfg.mac.bytes(), ids.device, ids.subsystem, 0x8086);
        let now = cfg.clock.now_ns();
        let cable = cfg.backend.link_up();
        let mut dev = E1000 {
            variant,
            mac: cfg.mac,
            pci,
            pm_cap,
            intx: Intx::new(cfg.irq),
            clock: cfg.clock,
            mem: cfg.memory,
            backend: cfg.backend,
            regs: vec![0u32; regs::WORDS].into_boxed_slice(),
            eeprom: Eeprom::new(words),
            phy: Phy::new(variant.phy_id2(), cable, now),
            timers: IrqTimers::default(),
            stats: Stats::default(),
            tx: TxEngine::new(),
            rx_frame: Vec::with_capacity(rx::FRAME_CAPACITY),
            ioaddr: 0,
            work: 0,
            rx_stalled: false,
        };
        dev.mac_reset();
        dev
    }

    /// The part this function is.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Config-space offset of the power-management capability.
    pub fn pm_capability(&self) -> u8 {
        self.pm_cap
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    #[inline]
    pub(crate) fn reg(&self, off: u32) -> u32 {
        self.regs[word(off)]
    }

    #[inline]
    pub(crate) fn set_reg(&mut self, off: u32, v: u32) {
        self.regs[word(off)] = v;
    }

    /// Puts every MAC register at its reset value and reloads the station address from
    /// the EEPROM (power-on, PCI reset and CTRL.RST). The PHY and the EEPROM contents are
    /// not touched.
    pub(crate) fn mac_reset(&mut self) {
        self.regs.fill(0);
        for def in regs::TABLE {
            if def.kind != Kind::Stat && def.reset != 0 {
                for n in 0..def.count as u32 {
                    self.regs[word(def.offset + n * def.stride as u32)] = def.reset;
                }
            }
        }
        self.load_mac_from_eeprom();
        self.eeprom.reset_interface();
        self.timers = IrqTimers::default();
        self.stats = Stats::default();
        self.tx.reset();
        self.rx_stalled = false;
        self.update_irq();
    }

    fn load_mac_from_eeprom(&mut self) {
        let w = &self.eeprom.words;
        let ral = w[0] as u32 | (w[1] as u32) << 16;
        let rah = w[2] as u32 | 1 << 31;
        self.set_reg(regs::RAL0, ral);
        self.set_reg(regs::RAH0, rah);
    }

    /// Reads the register at BAR0 offset `off` (dword aligned) as a 32-bit access.
    pub fn mmio_read(&mut self, off: u32) -> u32 {
        let Some(def) = regs::lookup(off) else {
            log::debug!("e1000: read of unassigned register {off:#07x}");
            return 0;
        };
        if !self.variant.has(def.parts) {
            return 0;
        }
        match def.kind {
            Kind::Plain => self.reg(off) & def.read,
            Kind::Stat => self.stats.read(off),
            Kind::Special => self.read_special(off, def),
        }
    }

    fn read_special(&mut self, off: u32, def: &RegDef) -> u32 {
        match off {
            regs::STATUS => self.status(),
            regs::EECD => {
                let mut v = self.reg(off) & def.read & !(eecd::DO | eecd::GNT);
                if self.eeprom.data_out() {
                    v |= eecd::DO;
                }
                if v & eecd::REQ != 0 && self.variant != Variant::E82544GC {
                    v |= eecd::GNT;
                }
                v
            }
            regs::ICR => self.read_icr(),
            regs::PBA => {
                let rxa = self.reg(off) & 0xffff;
                rxa | (64u32.saturating_sub(rxa) & 0xffff) << 16
            }
            _ => self.reg(off) & def.read,
        }
    }

    /// The STATUS register: link and speed from the PHY, duplex from CTRL when forced.
    fn status(&self) -> u32 {
        let ctrl = self.reg(regs::CTRL);
        let mut s = regs::status::SPEED_1000 | regs::status::ASDV_1000;
        let fd = if ctrl & ctrl::FRCDPX != 0 {
            ctrl & ctrl::FD != 0
        } else {
            true
        };
        if fd {
            s |= regs::status::FD;
        }
        if self.phy.link {
            s |= regs::status::LU;
        }
        s
    }

    /// Writes `value` to the register at BAR0 offset `off` (dword aligned).
    pub fn mmio_write(&mut self, off: u32, value: u32) {
        let Some(def) = regs::lookup(off) else {
            log::debug!("e1000: write {value:#x} to unassigned register {off:#07x} ignored");
            return;
        };
        if !self.variant.has(def.parts) {
            log::debug!("e1000: {} does not exist on {:?}", def.name, self.variant);
            return;
        }
        let old = self.reg(off);
        let new = (old & !def.write) | (value & def.write);
        match def.kind {
            Kind::Stat => log::debug!("e1000: write to read-only counter {}", def.name),
            Kind::Plain => self.set_reg(off, new),
            Kind::Special => self.write_special(off, old, new, value),
        }
    }

    fn write_special(&mut self, off: u32, old: u32, new: u32, value: u32) {
        match off {
            regs::CTRL => self.write_ctrl(old, new),
            regs::EECD => {
                self.set_reg(off, new);
                self.eeprom.write_pins(new);
            }
            regs::EERD => {
                if value & eerd::START != 0 {
                    let addr = (value >> eerd::ADDR_SHIFT) & 0xff;
                    let data = self.eeprom.read_word(addr) as u32;
                    self.set_reg(
                        off,
                        data << eerd::DATA_SHIFT | addr << eerd::ADDR_SHIFT | eerd::DONE,
                    );
                } else {
                    self.set_reg(off, new & !eerd::DONE);
                }
            }
            regs::MDIC => self.write_mdic(value),
            regs::CTRL_EXT => {
                self.set_reg(off, new);
                if value & regs::ctrl_ext::EE_RST != 0 {
                    self.load_mac_from_eeprom();
                }
            }
            regs::ICR => {
                let v = self.reg(off) & !value;
                self.set_reg(off, v);
                self.update_irq();
            }
            regs::ICS => self.raise(value & icr::ALL),
            regs::IMS => {
                let v = self.reg(regs::IMS) | (value & icr::ALL);
                self.set_reg(regs::IMS, v);
                self.update_irq();
            }
            regs::IMC => {
                let v = self.reg(regs::IMS) & !value;
                self.set_reg(regs::IMS, v);
                self.update_irq();
            }
            regs::ITR => {
                self.set_reg(off, new);
                self.update_irq();
            }
            regs::RDTR => {
                self.set_reg(off, new & 0xffff);
                if value & 1 << 31 != 0 {
                    self.flush_rx_delay();
                }
            }
            regs::TIDV => {
                self.set_reg(off, new & 0xffff);
                if value & 1 << 31 != 0 {
                    self.flush_tx_delay();
                }
            }
            regs::RCTL | regs::RDT => {
                self.set_reg(off, new);
            }
            regs::TCTL | regs::TDT => {
                self.set_reg(off, new);
                self.start_xmit();
            }
            regs::WUS => {
                let v = self.reg(off) & !value;
                self.set_reg(off, v);
            }
            _ => self.set_reg(off, new),
        }
    }

    fn write_ctrl(&mut self, old: u32, new: u32) {
        if new & ctrl::RST != 0 {
            log::debug!("e1000: software reset (CTRL.RST)");
            self.mac_reset();
            return;
        }
        self.set_reg(regs::CTRL, new);
        if new & ctrl::PHY_RST != 0 && old & ctrl::PHY_RST == 0 {
            let now = self.now();
            let was = self.phy.link;
            self.phy.reset(now);
            if was != self.phy.link {
                self.raise(icr::LSC);
            }
        }
    }

    fn write_mdic(&mut self, value: u32) {
        let phy_addr = (value >> mdic::PHY_SHIFT) & 0x1f;
        let reg = ((value >> mdic::REG_SHIFT) & 0x1f) as usize;
        let op = (value >> mdic::OP_SHIFT) & 3;
        let mut out = value & !(mdic::READY | mdic::ERROR);
        if phy_addr != phy::PHY_ADDR {
            log::debug!("e1000: MDIC access to absent PHY address {phy_addr}");
            out |= mdic::ERROR;
        } else if op == mdic::OP_READ {
            out = (out & !mdic::DATA_MASK) | self.phy.read(reg) as u32;
        } else if op == mdic::OP_WRITE {
            let now = self.now();
            if self.phy.write(reg, value as u16, now) {
                self.raise(icr::LSC);
            }
        } else {
            log::debug!("e1000: MDIC opcode {op} is reserved");
            out |= mdic::ERROR;
        }
        self.set_reg(regs::MDIC, out | mdic::READY);
        if value & mdic::INT_EN != 0 {
            self.raise(icr::MDAC);
        }
    }

    /// Dword read of the I/O window: IOADDR at 0, IODATA at 4 (the register IOADDR
    /// selects), everything else reads 0.
    fn io_read(&mut self, off: u64) -> u32 {
        match off {
            0 => self.ioaddr,
            4 => {
                let a = self.ioaddr & 0x1_fffc;
                self.mmio_read(a)
            }
            _ => 0,
        }
    }

    fn io_write(&mut self, off: u64, value: u32) {
        match off {
            0 => self.ioaddr = value & 0x1_fffc,
            4 => {
                let a = self.ioaddr;
                self.mmio_write(a, value);
            }
            _ => log::debug!("e1000: write to reserved I/O offset {off:#x}"),
        }
    }

    fn bar_access_read(&mut self, bar: u8, off: u64) -> u32 {
        match bar {
            0 if off < regs::MMIO_SIZE => self.mmio_read(off as u32),
            1 if off < regs::IO_SIZE => self.io_read(off),
            _ => 0,
        }
    }

    fn bar_access_write(&mut self, bar: u8, off: u64, value: u32) {
        match bar {
            0 if off < regs::MMIO_SIZE => self.mmio_write(off as u32, value),
            1 if off < regs::IO_SIZE => self.io_write(off, value),
            _ => log::debug!("e1000: write outside BAR{bar} at {off:#x}"),
        }
    }

    /// A link change seen by the PHY: raises LSC.
    fn cable_changed(&mut self, up: bool) {
        let now = self.now();
        if self.phy.set_cable(up, now) {
            self.raise(icr::LSC);
        }
    }
}

/// Extracts a `size`-byte access at byte `shift` of a dword.
fn narrow(v: u32, shift: u32, size: u8) -> u32 {
    let v = v >> shift;
    match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        _ => v,
    }
}

impl<M: GuestMemory + Send> NicDevice<M> for E1000<M> {
    fn model(&self) -> &'static str {
        self.variant.model()
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn pci(&self) -> Option<&PciConfig> {
        Some(&self.pci)
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.pci.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.pci.write(offset, size, value);
        // Interrupt Disable may have changed.
        let level = self.intx.requested();
        self.intx.update_pci(level, &mut self.pci);
    }

    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32 {
        let aligned = offset & !3;
        let shift = ((offset & 3) * 8) as u32;
        if !matches!(size, 1 | 2 | 4) {
            return 0;
        }
        let v = self.bar_access_read(bar, aligned);
        narrow(v, shift, size)
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32) {
        let aligned = offset & !3;
        let shift = ((offset & 3) * 8) as u32;
        let v = match size {
            4 if shift == 0 => value,
            1 | 2 | 4 => {
                // A narrow write updates its bytes of the stored dword.
                let mask: u32 = match size {
                    1 => 0xff,
                    2 => 0xffff,
                    _ => u32::MAX,
                } << shift;
                let cur = if bar == 0 && aligned < regs::MMIO_SIZE {
                    self.reg(aligned as u32)
                } else if bar == 1 && aligned == 0 {
                    self.ioaddr
                } else {
                    0
                };
                (cur & !mask) | (value << shift & mask)
            }
            _ => return,
        };
        self.bar_access_write(bar, aligned, v);
    }

    fn set_memory(&mut self, mem: M) {
        self.mem = mem;
    }

    fn can_receive(&self) -> bool {
        self.rx_ready()
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        self.receive_frame(frame, false)
    }

    fn set_link(&mut self, up: bool) {
        self.cable_changed(up);
    }

    fn next_deadline(&self) -> Option<u64> {
        crate::clock::earliest([self.timers.next_deadline(), self.phy.autoneg_deadline])
    }

    fn run_timers(&mut self) {
        let now = self.now();
        if self.phy.run_timer(now) {
            self.raise(icr::LSC);
        }
        self.fire_irq_timers(now);
    }

    fn reset(&mut self) {
        self.pci.reset();
        self.mac_reset();
        let now = self.now();
        self.phy.reset(now);
        self.eeprom.write_enabled = false;
        self.ioaddr = 0;
        let level = self.intx.requested();
        self.intx.update_pci(level, &mut self.pci);
    }

    fn backend(&self) -> &dyn NetBackend {
        &*self.backend
    }

    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        &mut *self.backend
    }

    fn work_done(&self) -> u64 {
        self.work
    }

    fn save_state(&self) -> Option<NicState> {
        Some(NicState::E1000(self.state()))
    }

    fn restore_state(&mut self, state: &NicState) -> Result<(), RestoreError> {
        let model = self.variant.model();
        match state {
            NicState::E1000(s) => self
                .restore_in_place(s)
                .map_err(|e| RestoreError::new(model, e.0)),
            other => Err(RestoreError::wrong_family(model, other)),
        }
    }
}
