//! Turning a fuzzer's bytes into a device run.

use arbitrary::{Arbitrary, Unstructured};
use vm_nic_devices::models::ModelError;

use crate::fuzzing::harness::Harness;
use crate::fuzzing::kind::DeviceKind;
use crate::fuzzing::op::Op;
use crate::fuzzing::outcome::Outcome;
use crate::fuzzing::setup::Setup;

/// Most ops one fuzz input runs (keeps every execution short).
pub const MAX_OPS: usize = 512;

/// A device fuzz input: the prologue to run, then the ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzInput {
    /// The prologue.
    pub setup: Setup,
    /// The ops, at most [`MAX_OPS`].
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for FuzzInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let setup = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            match u.arbitrary() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Ok(FuzzInput { setup, ops })
    }
}

impl FuzzInput {
    /// Decodes fuzzer bytes (never fails: missing bytes read as zeros).
    pub fn from_bytes(data: &[u8]) -> FuzzInput {
        let mut u = Unstructured::new(data);
        FuzzInput::arbitrary(&mut u).unwrap_or(FuzzInput {
            setup: Setup::Bare,
            ops: Vec::new(),
        })
    }

    /// Runs the prologue and the ops on a new `kind` device.
    pub fn run(&self, kind: DeviceKind) -> Result<Outcome, ModelError> {
        let mut h = Harness::new(kind)?;
        let prologue = h.setup_ops(self.setup);
        let _ = h.run(&prologue).and_then(|()| h.run(&self.ops));
        Ok(h.into_outcome())
    }
}

/// What a fuzz target does with one input for device `kind`: decode, run, and panic on
/// any broken oracle. Returns the model's error when the model is not in this build
/// (the caller must then not pretend it fuzzed anything).
pub fn fuzz_device(kind: DeviceKind, data: &[u8]) -> Result<Outcome, ModelError> {
    let outcome = FuzzInput::from_bytes(data).run(kind)?;
    outcome.assert_ok();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_decode_to_a_bounded_input() {
        let empty = FuzzInput::from_bytes(&[]);
        assert!(empty.ops.is_empty());
        let big = vec![0x5a; 1 << 16];
        let input = FuzzInput::from_bytes(&big);
        assert!(!input.ops.is_empty() && input.ops.len() <= MAX_OPS);
    }
}
