//! Save/restore: [`E1000State`], a plain struct holding everything the guest can
//! observe, taken by [`E1000::state`] and turned back into a device by
//! [`E1000::from_state`].
//!
//! Not saved: the backend, interrupt line, clock and memory, which the restoring VMM
//! supplies in a fresh [`NicConfig`].

use vm_memory::GuestMemory;
use vm_nic_backends::MacAddr;

use super::eeprom::Eeprom;
use super::offload::Context;
use super::stats::SLOTS;
use super::{regs, Variant, E1000};
use crate::clock::Timer;
use crate::device::NicConfig;

/// Everything guest-visible about one e1000 function.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct E1000State {
    /// QEMU model name of the part.
    pub model: String,
    /// Station address the device was created with.
    pub mac: [u8; 6],
    /// PCI configuration space.
    pub pci_config: Vec<u8>,
    /// BAR0 register contents by dword ([`regs::WORDS`] entries).
    pub regs: Vec<u32>,
    /// The EEPROM: contents (including guest writes), EWEN state and the Microwire
    /// transfer in progress.
    pub eeprom: Eeprom,
    /// PHY registers (32).
    pub phy_regs: Vec<u16>,
    /// Cable (backend link) present.
    pub phy_cable: bool,
    /// PHY link established.
    pub phy_link: bool,
    /// A link loss not yet read from BMSR.
    pub phy_link_latched_low: bool,
    /// Auto-negotiation completion time, if running.
    pub autoneg_deadline: Option<u64>,
    /// Statistics counters by slot.
    pub stats: Vec<u64>,
    /// Latched high dwords of the 64-bit counters.
    pub stats_latched: Vec<u32>,
    /// Deadlines of the ITR, RDTR, RADV, TIDV and TADV timers.
    pub irq_timers: [Option<u64>; 5],
    /// Last interrupt assertion time (for ITR).
    pub last_assert: Option<u64>,
    /// Requested INTx level.
    pub irq_level: bool,
    /// The last TX context descriptor.
    pub tx_context: Context,
    /// The context latched by the packet in progress.
    pub tx_packet_context: Context,
    /// Bytes of a packet being assembled.
    pub tx_packet: Vec<u8>,
    /// Saved TSO header.
    pub tso_hdr: Vec<u8>,
    /// TX packet flags: in packet, first data descriptor next, TSE, GSO, discard.
    pub tx_flags: [bool; 5],
    /// TX packet POPTS.
    pub tx_popts: u8,
    /// TX packet VLAN tag.
    pub tx_vlan: Option<u16>,
    /// TSO segment count and payload sent.
    pub tso_progress: (u16, u32),
    /// IOADDR.
    pub ioaddr: u32,
    /// A received frame is waiting for descriptors.
    pub rx_stalled: bool,
}

/// Why a saved state could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e1000 state: {}", self.0)
    }
}

impl std::error::Error for StateError {}

fn timer_at(deadline: Option<u64>) -> Timer {
    let mut t = Timer::new();
    if let Some(d) = deadline {
        t.arm(0, d);
    }
    t
}

impl<M: GuestMemory> E1000<M> {
    /// Captures the device state.
    pub fn state(&self) -> E1000State {
        let t = &self.timers;
        E1000State {
            model: self.variant.model().to_string(),
            mac: self.mac.bytes(),
            pci_config: self.pci.bytes().to_vec(),
            regs: self.regs.to_vec(),
            eeprom: self.eeprom.clone(),
            phy_regs: self.phy.regs.to_vec(),
            phy_cable: self.phy.cable,
            phy_link: self.phy.link,
            phy_link_latched_low: self.phy.link_latched_low,
            autoneg_deadline: self.phy.autoneg_deadline,
            stats: self.stats.counts.to_vec(),
            stats_latched: self.stats.latched.to_vec(),
            irq_timers: [
                t.itr.deadline(),
                t.rdtr.deadline(),
                t.radv.deadline(),
                t.tidv.deadline(),
                t.tadv.deadline(),
            ],
            last_assert: t.last_assert,
            irq_level: self.intx.requested(),
            tx_context: self.tx.ctx,
            tx_packet_context: self.tx.pkt,
            tx_packet: self.tx.frame[..self.tx.len].to_vec(),
            tso_hdr: self.tx.tso_hdr.to_vec(),
            tx_flags: [
                self.tx.in_packet,
                self.tx.first,
                self.tx.tse,
                self.tx.gso,
                self.tx.discard,
            ],
            tx_popts: self.tx.popts,
            tx_vlan: self.tx.vlan,
            tso_progress: (self.tx.seg, self.tx.sent_payload),
            ioaddr: self.ioaddr,
            rx_stalled: self.rx_stalled,
        }
    }

    /// Rebuilds a device from `state`, connected to the surroundings in `cfg` (whose
    /// `mac` is ignored in favour of the saved one).
    pub fn from_state(state: &E1000State, cfg: NicConfig<M>) -> Result<Self, StateError> {
        let variant = validate(state)?;
        let mut cfg = cfg;
        cfg.mac = MacAddr(state.mac);
        let mut d = E1000::new(variant, cfg);
        d.apply_state(state);
        Ok(d)
    }

    /// In-place restore for [`crate::NicDevice::restore_state`]: the state must be of
    /// this device's variant; the device is reset, then takes everything from `state`.
    pub(crate) fn restore_in_place(&mut self, state: &E1000State) -> Result<(), StateError>
    where
        M: Send,
    {
        let variant = validate(state)?;
        if variant != self.variant {
            return Err(StateError(format!(
                "the state is of a {}, this device is a {}",
                variant.model(),
                self.variant.model()
            )));
        }
        crate::NicDevice::reset(self);
        self.mac = MacAddr(state.mac);
        self.apply_state(state);
        Ok(())
    }

    /// Copies every saved field of a validated `state` into the device.
    fn apply_state(&mut self, state: &E1000State) {
        let d = self;
        let mut pci = [0u8; 256];
        pci.copy_from_slice(&state.pci_config);
        d.pci.restore(&pci);
        d.regs.copy_from_slice(&state.regs);
        d.eeprom = state.eeprom.clone();
        d.phy.regs.copy_from_slice(&state.phy_regs);
        d.phy.cable = state.phy_cable;
        d.phy.link = state.phy_link;
        d.phy.link_latched_low = state.phy_link_latched_low;
        d.phy.autoneg_deadline = state.autoneg_deadline;
        d.stats.counts.copy_from_slice(&state.stats);
        d.stats.latched.copy_from_slice(&state.stats_latched);
        let [itr, rdtr, radv, tidv, tadv] = state.irq_timers;
        d.timers.itr = timer_at(itr);
        d.timers.rdtr = timer_at(rdtr);
        d.timers.radv = timer_at(radv);
        d.timers.tidv = timer_at(tidv);
        d.timers.tadv = timer_at(tadv);
        d.timers.last_assert = state.last_assert;
        d.tx.ctx = state.tx_context;
        d.tx.pkt = state.tx_packet_context;
        d.tx.len = state.tx_packet.len();
        d.tx.frame[..d.tx.len].copy_from_slice(&state.tx_packet);
        d.tx.tso_hdr.copy_from_slice(&state.tso_hdr);
        [d.tx.in_packet, d.tx.first, d.tx.tse, d.tx.gso, d.tx.discard] = state.tx_flags;
        d.tx.popts = state.tx_popts;
        d.tx.vlan = state.tx_vlan;
        (d.tx.seg, d.tx.sent_payload) = state.tso_progress;
        d.ioaddr = state.ioaddr;
        d.rx_stalled = state.rx_stalled;
        let level = state.irq_level;
        d.intx.update_pci(level, &mut d.pci);
    }
}

/// Checks the shape of `state` (every table its expected length) and returns its variant.
fn validate(state: &E1000State) -> Result<Variant, StateError> {
    let variant = Variant::from_model(&state.model)
        .ok_or_else(|| StateError(format!("unknown model {:?}", state.model)))?;
    let check = |what: &str, got: usize, want: usize| {
        if got == want {
            Ok(())
        } else {
            Err(StateError(format!(
                "{what} has {got} entries, expected {want}"
            )))
        }
    };
    check("pci_config", state.pci_config.len(), 256)?;
    check("regs", state.regs.len(), regs::WORDS)?;
    check("phy_regs", state.phy_regs.len(), 32)?;
    check("stats", state.stats.len(), SLOTS)?;
    check("stats_latched", state.stats_latched.len(), SLOTS)?;
    check("tso_hdr", state.tso_hdr.len(), 256)?;
    if state.tx_packet.len() > super::tx::FRAME_CAPACITY {
        return Err(StateError("tx_packet longer than the frame buffer".into()));
    }
    Ok(variant)
}
