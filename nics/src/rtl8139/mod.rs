//! Realtek RTL8139C (PCI revision 0x10, normal mode only, Linux `8139too`) and RTL8139C+
//! (revision 0x20, normal and C+ modes, Linux `8139cp`), 10EC:8139.
//!
//! BAR0 is a 256-byte I/O window and BAR1 a 256-byte memory window onto the same
//! registers; any register may be accessed with 1-, 2- or 4-byte accesses at any offset.
//! `docs/devices/rtl8139.md` lists every register with its status and reset value.
//!
//! Layout of this module, one file per register group: [`regs`] (offsets and bits),
//! `access` (the register file dispatch), [`eeprom`] (93C46), `mii` (BMCR..CSCR, MSR),
//! `timer` (TCTR/TimerInt), `tx_normal`/`rx_normal` (C mode), `cplus_tx`/`cplus_rx` (C+
//! descriptor rings), [`offload`] (checksums, TSO, VLAN), [`filter`] (address filter and
//! CRCs), [`tally`] (DTCCR dump) and [`state`] (save/restore).

mod access;
mod cplus_rx;
mod cplus_tx;
pub mod eeprom;
pub mod filter;
mod mii;
pub mod offload;
pub mod regs;
mod rx_normal;
pub mod state;
pub mod tally;
mod timer;
mod tx_normal;

use std::sync::Arc;

use vm_memory::GuestMemory;
use vm_nic_backends::{MacAddr, NetBackend, MAX_FRAME_LEN};

use crate::clock::Clock;
use crate::device::{NicConfig, NicDevice, RxOutcome};
use crate::irq::Intx;
use crate::models::{parse_int_prop, ModelError};
use crate::pci::{reg as pcireg, BarSpec, PciConfig, PciIds};
use crate::state::{NicState, RestoreError};

use eeprom::Eeprom;
pub use state::{Regs, Rtl8139State};
use tally::Tally;

/// PCI device ID.
pub const DEVICE_ID: u16 = 0x8139;
/// PCI vendor ID (Realtek).
pub const VENDOR_ID: u16 = 0x10EC;
/// Size of each BAR.
pub const BAR_SIZE: u64 = 256;

/// Which chip the model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    /// RTL8139C: PCI revision 0x10, normal (C) mode only. Bound by Linux `8139too`.
    Rtl8139C,
    /// RTL8139C+: PCI revision 0x20, C and C+ modes. Bound by Linux `8139cp`; QEMU's
    /// only rtl8139 and the default.
    Rtl8139CPlus,
}

impl Revision {
    /// The PCI revision ID.
    pub fn id(self) -> u8 {
        match self {
            Revision::Rtl8139C => 0x10,
            Revision::Rtl8139CPlus => 0x20,
        }
    }

    /// The revision with PCI revision ID `id`, if vm-nic models it.
    pub fn from_id(id: u8) -> Option<Revision> {
        match id {
            0x10 => Some(Revision::Rtl8139C),
            0x20 => Some(Revision::Rtl8139CPlus),
            _ => None,
        }
    }

    fn hwverid(self) -> u32 {
        match self {
            Revision::Rtl8139C => regs::tcr::HWVERID_8139C,
            Revision::Rtl8139CPlus => regs::tcr::HWVERID_8139CPLUS,
        }
    }

    fn valid_int(self) -> u16 {
        match self {
            Revision::Rtl8139C => regs::int::VALID_C,
            Revision::Rtl8139CPlus => regs::int::VALID_CPLUS,
        }
    }
}

/// Device-owned frame buffers, allocated once so no frame allocates.
struct Buffers {
    /// The frame being transmitted (C mode descriptor or C+ fragments).
    tx: Vec<u8>,
    /// One TSO segment.
    seg: Vec<u8>,
}

/// The RTL8139 model. Build it with [`create`] (from `-device` properties) or
/// [`Rtl8139::new`].
pub struct Rtl8139<M> {
    rev: Revision,
    mac: MacAddr,
    pci: PciConfig,
    intx: Intx,
    clock: Arc<dyn Clock>,
    mem: M,
    backend: Box<dyn NetBackend>,
    r: Regs,
    eeprom: Eeprom,
    bufs: Buffers,
    work: u64,
    /// Clock time (ns) from which TCTR counts up from `tctr_offset`.
    tctr_base: u64,
    /// TCTR value at `tctr_base`.
    tctr_offset: u64,
    /// Ticks since `tctr_base` at which TimerInt next matches.
    timer_target: Option<u64>,
}

impl<M> std::fmt::Debug for Rtl8139<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtl8139")
            .field("revision", &self.rev)
            .field("mac", &self.mac)
            .field("isr", &format_args!("{:#06x}", self.r.isr))
            .field("imr", &format_args!("{:#06x}", self.r.imr))
            .finish()
    }
}

/// The properties `-device rtl8139` accepts.
pub const PROPERTIES: &[&str] = &["revision"];

/// Creates the model from its `-device` properties: `revision=0x10` or `revision=0x20`
/// (the default, as QEMU).
pub fn create<M>(
    name: &str,
    props: &[(String, String)],
    cfg: NicConfig<M>,
) -> Result<Box<dyn NicDevice<M>>, ModelError>
where
    M: GuestMemory + Send + 'static,
{
    let mut rev = Revision::Rtl8139CPlus;
    for (key, value) in props {
        match key.as_str() {
            "revision" => {
                let id = parse_int_prop(name, key, value, 0xFF)?;
                rev = Revision::from_id(id as u8).ok_or_else(|| ModelError::BadValue {
                    model: name.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                    expected: "0x10 (RTL8139C, Linux 8139too) or 0x20 (RTL8139C+, Linux 8139cp)"
                        .to_string(),
                })?;
            }
            _ => {
                return Err(ModelError::UnknownProperty {
                    model: name.to_string(),
                    key: key.clone(),
                    valid: PROPERTIES.to_vec(),
                })
            }
        }
    }
    Ok(Box::new(Rtl8139::new(rev, cfg)))
}

fn pci_config(rev: Revision) -> PciConfig {
    PciConfig::new(
        PciIds {
            vendor: VENDOR_ID,
            device: DEVICE_ID,
            revision: rev.id(),
            class: 0x02_00_00,
            subsystem_vendor: VENDOR_ID,
            subsystem: DEVICE_ID,
            interrupt_pin: 1,
        },
        &[Some(BarSpec::io(BAR_SIZE)), Some(BarSpec::mem32(BAR_SIZE))],
    )
}

impl<M: GuestMemory> Rtl8139<M> {
    /// A powered-on chip of revision `rev` with EEPROM contents built from `cfg.mac`.
    pub fn new(rev: Revision, cfg: NicConfig<M>) -> Self {
        let eeprom = Eeprom::new(Eeprom::default_image(cfg.mac.bytes(), DEVICE_ID));
        let link = cfg.backend.link_up();
        let mut dev = Rtl8139 {
            rev,
            mac: cfg.mac,
            pci: pci_config(rev),
            intx: Intx::new(cfg.irq),
            clock: cfg.clock,
            mem: cfg.memory,
            backend: cfg.backend,
            r: power_on_regs(),
            eeprom,
            bufs: Buffers {
                tx: Vec::with_capacity(MAX_FRAME_LEN + 4),
                seg: Vec::with_capacity(MAX_FRAME_LEN + 4),
            },
            work: 0,
            tctr_base: 0,
            tctr_offset: 0,
            timer_target: None,
        };
        dev.r.link_up = link;
        dev.hard_reset();
        dev
    }

    /// The chip revision.
    pub fn revision(&self) -> Revision {
        self.rev
    }

    /// A copy of the whole device state.
    pub fn state(&self) -> Rtl8139State {
        let mut regs = self.r.clone();
        regs.tctr = self.tctr_now();
        Rtl8139State {
            revision: self.rev.id(),
            mac: self.mac.bytes(),
            pci: self.pci.bytes(),
            regs,
            eeprom: self.eeprom.clone(),
        }
    }

    /// Recreates a device from a saved state, connected to `cfg`'s backend, interrupt line,
    /// clock and memory (`cfg.mac` is ignored: the saved one is used). The interrupt line is
    /// driven to the level the restored registers ask for.
    pub fn from_state(state: &Rtl8139State, cfg: NicConfig<M>) -> Result<Self, ModelError> {
        let rev = saved_revision(state)?;
        let mut dev = Rtl8139::new(
            rev,
            NicConfig {
                mac: MacAddr(state.mac),
                ..cfg
            },
        );
        dev.apply_state(state);
        Ok(dev)
    }

    /// Copies every saved register, the PCI space and the EEPROM from `state`, restarts
    /// TCTR and the timer from the saved count, and drives the line.
    fn apply_state(&mut self, state: &Rtl8139State) {
        self.mac = MacAddr(state.mac);
        self.pci.restore(&state.pci);
        self.r = state.regs.clone();
        self.eeprom = state.eeprom.clone();
        self.tctr_start_at(state.regs.tctr);
        self.rearm_timer();
        self.update_irq();
    }

    /// Power-on / PCI reset: every register to its reset value, then the EEPROM auto-load.
    fn hard_reset(&mut self) {
        let link = self.r.link_up;
        self.r = power_on_regs();
        self.r.link_up = link;
        self.eeprom.deselect();
        self.eeprom.write_enabled = false;
        self.autoload();
        self.tctr_start_at(0);
        self.timer_target = None;
        self.update_irq();
    }

    /// Loads IDR0-5 and the Config bytes from the EEPROM (power-on, or 9346CR auto-load).
    fn autoload(&mut self) {
        let mac = self.eeprom.mac();
        self.r.bytes[regs::IDR0 as usize..6].copy_from_slice(&mac);
        // Config3 (EEPROM byte 0x0D) and Config0/1 (0x14/0x15) come from the image;
        // Config1 always reports both I/O and memory mapping enabled.
        self.r.bytes[regs::CONFIG0 as usize] = self.eeprom.byte(0x14) & 0x07;
        self.r.bytes[regs::CONFIG1 as usize] = (self.eeprom.byte(0x15) & 0xF3) | 0x0C;
        self.r.bytes[regs::CONFIG3 as usize] = self.eeprom.byte(0x0D);
        self.r.bytes[regs::CONFIG4 as usize] = self.eeprom.byte(0x16) & 0xF5;
    }

    /// CR.RST: stops TX and RX, empties the ring pointers and the interrupt state;
    /// IDR, MAR, configuration and PCI state are kept.
    fn soft_reset(&mut self) {
        let r = &mut self.r;
        r.cr = 0;
        r.tsd = [regs::tsd::OWN; 4];
        r.tx_pending = 0;
        r.tx_next = 0;
        r.capr = 0xFFF0;
        r.cbr = 0;
        r.isr = 0;
        r.imr = 0;
        r.cpcmd = 0;
        r.tx_npq_index = 0;
        r.tx_hpq_index = 0;
        r.rx_index = 0;
        r.erbcr = 0;
        r.ersr = 0;
        self.update_irq();
    }

    /// Recomputes the interrupt level: asserted while any unmasked ISR bit is set.
    fn update_irq(&mut self) {
        let level = self.r.isr & self.r.imr != 0;
        self.intx.update_pci(level, &mut self.pci);
    }

    /// Sets ISR bits (those the chip has) and updates the line.
    fn raise(&mut self, bits: u16) {
        self.r.isr |= bits & self.rev.valid_int();
        self.update_irq();
    }

    /// A DMA address outside guest memory: the PCI master abort the chip reports as
    /// ISR.SERR (and the received-master-abort bit of the PCI status register).
    fn master_abort(&mut self) {
        let st = self.pci.read(pcireg::STATUS, 2) as u16 | (1 << 13);
        self.pci.set_raw(pcireg::STATUS, &st.to_le_bytes());
        self.raise(regs::int::SERR);
    }

    fn rx_enabled(&self) -> bool {
        self.r.cr & regs::cr::RE != 0
    }

    fn tx_enabled(&self) -> bool {
        self.r.cr & regs::cr::TE != 0
    }

    fn cplus_tx_mode(&self) -> bool {
        self.rev == Revision::Rtl8139CPlus && self.r.cpcmd & regs::cpcmd::TX_ON != 0
    }

    fn cplus_rx_mode(&self) -> bool {
        self.rev == Revision::Rtl8139CPlus && self.r.cpcmd & regs::cpcmd::RX_ON != 0
    }

    fn loopback(&self) -> bool {
        self.r.tcr & regs::tcr::LBK == regs::tcr::LBK
    }

    fn idr(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.r.bytes[..6]);
        m
    }

    fn mar(&self) -> [u8; 8] {
        let mut m = [0u8; 8];
        m.copy_from_slice(&self.r.bytes[8..16]);
        m
    }

    fn bytes_u32(&self, off: u8) -> u32 {
        let o = off as usize;
        u32::from_le_bytes([
            self.r.bytes[o],
            self.r.bytes[o + 1],
            self.r.bytes[o + 2],
            self.r.bytes[o + 3],
        ])
    }

    fn bytes_u64(&self, off: u8) -> u64 {
        self.bytes_u32(off) as u64 | (self.bytes_u32(off + 4) as u64) << 32
    }

    /// Sends a finished frame: to our own receiver in loopback mode, else to the backend.
    fn emit(&mut self, frame: &[u8]) {
        self.work += 1 + frame.len() as u64 / 64;
        if self.loopback() {
            let outcome = self.receive_frame(frame);
            log::debug!(
                "rtl8139: loopback frame of {} bytes: {outcome:?}",
                frame.len()
            );
        } else if let Err(e) = self.backend.send(frame) {
            log::debug!("rtl8139: backend refused a {}-byte frame: {e}", frame.len());
        }
    }

    fn receive_frame(&mut self, frame: &[u8]) -> RxOutcome {
        if self.cplus_rx_mode() {
            self.cplus_receive(frame)
        } else {
            self.normal_receive(frame)
        }
    }

    /// The registers read as a 256-byte block (what `ethtool -d` shows), without side
    /// effects.
    pub fn register_dump(&self) -> [u8; 256] {
        let mut d = [0u8; 256];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.read_byte(i as u8);
        }
        d
    }
}

/// Register values after power-on, before the EEPROM auto-load.
fn power_on_regs() -> Regs {
    let mut bytes = [0u8; 256];
    // PHY1_PARM, TW_PARM, PHY2_PARM reset values (RTL8139C datasheet).
    bytes[regs::PHY1_PARM as usize..regs::PHY1_PARM as usize + 4]
        .copy_from_slice(&0x8CD8_0000u32.to_le_bytes());
    bytes[regs::TW_PARM as usize..regs::TW_PARM as usize + 4]
        .copy_from_slice(&0xCB38_DE43u32.to_le_bytes());
    bytes[regs::ANAR as usize..regs::ANAR as usize + 2]
        .copy_from_slice(&regs::mii::ANAR_DEFAULT.to_le_bytes());
    Regs {
        bytes,
        tsd: [regs::tsd::OWN; 4],
        tx_pending: 0,
        tx_next: 0,
        cr: 0,
        capr: 0xFFF0,
        cbr: 0,
        imr: 0,
        isr: 0,
        tcr: 0,
        rcr: 0,
        tctr: 0,
        timer_int: 0,
        mpc: 0,
        cr9346: 0,
        clock_halted: false,
        bmcr: regs::mii::BMCR_DEFAULT,
        cpcmd: 0,
        tx_npq_index: 0,
        tx_hpq_index: 0,
        rx_index: 0,
        tally: Tally::default(),
        link_up: true,
        erbcr: 0,
        ersr: 0,
    }
}

impl<M: GuestMemory + Send> NicDevice<M> for Rtl8139<M> {
    fn model(&self) -> &'static str {
        "rtl8139"
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
        // Interrupt Disable may have changed; bus mastering may let a waiting TX go.
        self.update_irq();
        self.kick_normal_tx();
    }

    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32 {
        if bar > 1 || !matches!(size, 1 | 2 | 4) || offset >= BAR_SIZE {
            log::debug!("rtl8139: read of BAR{bar}+{offset:#x} size {size} ignored");
            return u32::MAX >> (32 - 8 * size.clamp(1, 4) as u32);
        }
        self.read(offset as u8, size)
    }

    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32) {
        if bar > 1 || !matches!(size, 1 | 2 | 4) || offset >= BAR_SIZE {
            log::debug!("rtl8139: write of BAR{bar}+{offset:#x} size {size} ignored");
            return;
        }
        self.write(offset as u8, size, value);
    }

    fn set_memory(&mut self, mem: M) {
        self.mem = mem;
    }

    fn can_receive(&self) -> bool {
        if !self.rx_enabled() || !self.pci.bus_master() {
            return false;
        }
        if self.cplus_rx_mode() {
            self.cplus_can_receive()
        } else {
            self.normal_can_receive()
        }
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        self.work += 1 + frame.len() as u64 / 64;
        self.receive_frame(frame)
    }

    fn set_link(&mut self, up: bool) {
        if self.r.link_up != up {
            self.r.link_up = up;
            self.raise(regs::int::LINK_CHG);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        self.timer_deadline()
    }

    fn run_timers(&mut self) {
        self.fire_timer();
    }

    fn reset(&mut self) {
        self.pci.reset();
        self.hard_reset();
    }

    fn backend(&self) -> &dyn NetBackend {
        self.backend.as_ref()
    }

    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        self.backend.as_mut()
    }

    fn work_done(&self) -> u64 {
        self.work
    }

    fn save_state(&self) -> Option<NicState> {
        Some(NicState::Rtl8139(self.state()))
    }

    fn restore_state(&mut self, state: &NicState) -> Result<(), RestoreError> {
        let NicState::Rtl8139(s) = state else {
            return Err(RestoreError::wrong_family("rtl8139", state));
        };
        let rev = saved_revision(s).map_err(|e| RestoreError::new("rtl8139", e.to_string()))?;
        if rev != self.rev {
            return Err(RestoreError::new(
                "rtl8139",
                format!(
                    "the state is of revision {:#x}, this device is revision {:#x}",
                    rev.id(),
                    self.rev.id()
                ),
            ));
        }
        self.hard_reset();
        self.apply_state(s);
        Ok(())
    }
}

/// The chip revision a saved state was taken from.
fn saved_revision(state: &Rtl8139State) -> Result<Revision, ModelError> {
    Revision::from_id(state.revision).ok_or_else(|| ModelError::BadValue {
        model: "rtl8139".to_string(),
        key: "revision".to_string(),
        value: format!("{:#x}", state.revision),
        expected: "0x10 or 0x20".to_string(),
    })
}
