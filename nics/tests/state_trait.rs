//! Save/restore through the `NicDevice` trait (`save_state` / `restore_state`), as a VMM
//! holding NICs as `dyn NicDevice` does it: in place, keeping the device's surroundings.

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::MacAddr;
use vm_nic_devices::models::create;
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice, NicState};

type Mem = GuestMemoryMmap;

fn nic(model: &str, revision: Option<&str>) -> (Box<dyn NicDevice<Mem>>, IrqRecorder) {
    let irq = IrqRecorder::new();
    let cfg = NicConfig {
        mac: MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
        backend: Box::new(NullBackend::new()),
        irq: Box::new(irq.clone()),
        clock: Arc::new(ManualClock::new()),
        memory: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap(),
    };
    let props: Vec<(String, String)> = revision
        .map(|r| vec![("revision".to_string(), r.to_string())])
        .unwrap_or_default();
    (create(model, &props, cfg).unwrap(), irq)
}

/// Register writes that leave a model in a state unlike power-on, with an interrupt
/// requested where the model allows it: (bar, offset, size, value).
fn history(model: &str, variant: u32) -> Vec<(u8, u64, u8, u32)> {
    match model {
        // IMS, ICS (raises LSC), RDBAL, TDLEN.
        m if m.starts_with("e1000") => vec![
            (0, 0xd0, 4, 0x4 | variant),
            (0, 0xc8, 4, 0x4),
            (0, 0x2800, 4, 0x1000 + variant),
            (0, 0x3808, 4, 0x80),
        ],
        // IMR, RCR, RBSTART; TCTR is derived from the clock.
        "rtl8139" => vec![
            (0, 0x3c, 2, 0x0005 | variant),
            (0, 0x44, 4, 0x0000_000f),
            (0, 0x30, 4, 0x2000 + variant),
        ],
        // Page 0: PSTART, PSTOP, BNRY, IMR; then page 1 CURR; remote byte count.
        _ => vec![
            (0, 0x00, 1, 0x21),
            (0, 0x01, 1, 0x46),
            (0, 0x02, 1, 0x80),
            (0, 0x03, 1, 0x46 + variant),
            (0, 0x0f, 1, 0x1f),
            (0, 0x00, 1, 0x61),
            (0, 0x07, 1, 0x47 + variant),
            (0, 0x00, 1, 0x22),
        ],
    }
}

fn live(
    model: &str,
    revision: Option<&str>,
    variant: u32,
) -> (Box<dyn NicDevice<Mem>>, IrqRecorder) {
    let (mut d, irq) = nic(model, revision);
    if d.pci().is_some() {
        d.config_write(0x04, 2, 0x0007);
    }
    for (bar, off, size, v) in history(model, variant) {
        d.bar_write(bar, off, size, v);
    }
    (d, irq)
}

const MODELS: &[(&str, Option<&str>)] = &[
    ("e1000", None),
    ("e1000-82544gc", None),
    ("e1000-82545em", None),
    ("rtl8139", Some("0x10")),
    ("rtl8139", Some("0x20")),
    ("ne2k_pci", None),
    ("ne2k_isa", None),
];

#[test]
fn every_model_restores_in_place_over_a_different_history() {
    for &(model, rev) in MODELS {
        let (source, source_irq) = live(model, rev, 0);
        let saved = source.save_state().expect("our models can be saved");
        let (mut target, target_irq) = live(model, rev, 2);
        assert_ne!(
            target.save_state().unwrap(),
            saved,
            "{model}: histories differ"
        );
        target.restore_state(&saved).unwrap();
        assert_eq!(target.save_state().unwrap(), saved, "{model} {rev:?}");
        assert_eq!(
            target_irq.level(),
            source_irq.level(),
            "{model}: the line follows the restored state"
        );
    }
}

#[test]
fn a_state_of_another_model_is_refused_and_changes_nothing() {
    let states: Vec<NicState> = MODELS
        .iter()
        .map(|&(m, r)| live(m, r, 0).0.save_state().unwrap())
        .collect();
    for (i, &(model, rev)) in MODELS.iter().enumerate() {
        for (j, state) in states.iter().enumerate() {
            // The same model, or the NE2000's other bus and an e1000 of another variant
            // are refused too; only the identical kind is accepted.
            if i == j {
                continue;
            }
            let (mut d, _) = live(model, rev, 1);
            let before = d.save_state().unwrap();
            let e = d.restore_state(state).unwrap_err();
            assert!(!e.reason.is_empty(), "{model}: {e}");
            assert_eq!(d.save_state().unwrap(), before, "{model} unchanged by {e}");
        }
    }
}

#[test]
fn a_malformed_state_is_refused_and_changes_nothing() {
    for &(model, rev) in MODELS {
        let (mut d, _) = live(model, rev, 1);
        let before = d.save_state().unwrap();
        let mut bad = before.clone();
        match &mut bad {
            NicState::E1000(s) => s.regs.truncate(3),
            NicState::Rtl8139(s) => s.revision = 0x33,
            NicState::Ne2000(s) => s.mem.truncate(7),
        }
        let e = d.restore_state(&bad).unwrap_err();
        assert_eq!(e.model, d.model());
        assert!(e.to_string().contains("refused the saved state"), "{e}");
        assert_eq!(d.save_state().unwrap(), before, "{model}");
    }
}
