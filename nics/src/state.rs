//! Saving and restoring a NIC through the [`NicDevice`](crate::NicDevice) trait.
//!
//! Each model has its own plain state struct ([`E1000State`], [`Rtl8139State`],
//! [`Ne2000State`]) and a `state()` / `from_state()` pair for callers that hold the
//! concrete type. A VMM that holds NICs as `dyn NicDevice` (for instance inside
//! `vm_nic::network::Network` or `vm_nic::runner::Runner`) saves with
//! [`NicDevice::save_state`](crate::NicDevice::save_state) and restores in place with
//! [`NicDevice::restore_state`](crate::NicDevice::restore_state): the device keeps its
//! backend, interrupt line, clock and guest memory, and takes every register, buffer and
//! timer from the state. A refused state leaves the device exactly as it was.

use crate::e1000::E1000State;
use crate::ne2000::Ne2000State;
use crate::rtl8139::Rtl8139State;

/// The saved state of any vm-nic model.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
// Saved rarely and moved little: boxing the larger states would only add noise at every match.
#[allow(clippy::large_enum_variant)]
pub enum NicState {
    /// An e1000 variant (the variant is inside, as its QEMU model name).
    E1000(E1000State),
    /// An RTL8139 or RTL8139C+ (the revision is inside).
    Rtl8139(Rtl8139State),
    /// An NE2000, PCI or ISA (the bus is the device's own, not part of the state).
    Ne2000(Ne2000State),
}

impl NicState {
    /// The model family the state belongs to: `e1000`, `rtl8139` or `ne2000`.
    pub fn family(&self) -> &'static str {
        match self {
            NicState::E1000(_) => "e1000",
            NicState::Rtl8139(_) => "rtl8139",
            NicState::Ne2000(_) => "ne2000",
        }
    }
}

/// Why a device refused a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError {
    /// The refusing device's model name.
    pub model: &'static str,
    /// What is wrong with the state.
    pub reason: String,
}

impl RestoreError {
    /// A refusal by `model` for `reason`.
    pub fn new(model: &'static str, reason: impl Into<String>) -> Self {
        RestoreError {
            model,
            reason: reason.into(),
        }
    }

    /// The refusal for a state of another model family.
    pub(crate) fn wrong_family(model: &'static str, state: &NicState) -> Self {
        RestoreError::new(
            model,
            format!("the state is of a {} device", state.family()),
        )
    }
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused the saved state: {}", self.model, self.reason)
    }
}

impl std::error::Error for RestoreError {}
