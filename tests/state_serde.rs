//! Saved NIC state through serde (the `serde` feature): a whole network's NICs are saved
//! with `NicDevice::save_state`, written out as JSON, read back and restored in place into
//! a second network built from the same options — what a VMM's migration stream does.

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic::devices::{ManualClock, NicState, NoIrq};
use vm_nic::network::{Guest, Network, NetworkBuilder};
use vm_nic::options::NetConfig;

fn network(cfg: &NetConfig) -> Network<GuestMemoryMmap> {
    let ram = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    NetworkBuilder::new(cfg)
        .guest(Guest {
            memory: ram,
            clock: Arc::new(ManualClock::new()),
            irq: Box::new(|_index, _spec| Box::new(NoIrq)),
        })
        .build()
        .unwrap()
}

#[test]
fn every_model_state_survives_json_and_restores_in_place() {
    let cfg = NetConfig::parse_line(
        "-device e1000 -device e1000-82544gc \
         -device e1000-82545em -device rtl8139 \
         -device ne2k_pci",
    )
    .unwrap();
    let mut source = network(&cfg);
    // Make each state differ from power-on: bus master on, and a register or two.
    for i in 0..source.nic_count() {
        let nic = source.nic_mut(i).unwrap();
        nic.config_write(0x04, 2, 0x0007);
        match nic.model() {
            m if m.starts_with("e1000") => nic.bar_write(0, 0xd0, 4, 0x9d),
            "rtl8139" => nic.bar_write(0, 0x3c, 2, 0x0005),
            _ => nic.bar_write(0, 0x0f, 1, 0x15),
        }
    }
    let saved: Vec<NicState> = (0..source.nic_count())
        .map(|i| source.nic(i).unwrap().save_state().unwrap())
        .collect();
    let json = serde_json::to_string(&saved).unwrap();
    let loaded: Vec<NicState> = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, saved);

    let mut target = network(&cfg);
    for (i, state) in loaded.iter().enumerate() {
        let nic = target.nic_mut(i).unwrap();
        assert_ne!(
            nic.save_state().as_ref(),
            Some(state),
            "nic {i} starts different"
        );
        nic.restore_state(state).unwrap();
        assert_eq!(nic.save_state().as_ref(), Some(state), "nic {i}");
    }
}

#[test]
fn a_corrupted_stream_is_an_error_not_a_device() {
    let cfg = NetConfig::parse_line("-device rtl8139").unwrap();
    let net = network(&cfg);
    let state = net.nic(0).unwrap().save_state().unwrap();
    let json = serde_json::to_string(&state).unwrap();
    // The 256-byte PCI space one byte short is refused by the deserializer itself.
    let at = json.find("\"pci\":[").expect("the state has the PCI space") + 7;
    let comma = at + json[at..].find(',').unwrap();
    let short = format!("{}{}", &json[..at], &json[comma + 1..]);
    let e = serde_json::from_str::<NicState>(&short).unwrap_err();
    assert!(e.to_string().contains("256"), "{e}");
}
