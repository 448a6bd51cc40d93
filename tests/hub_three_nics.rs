//! The three-NIC example of docs/qemu-options.md on QEMU's hubs: the NIC on vlan 0
//! cannot reach the two on vlan 1, which reach each other — asserted on frames.

mod runner_support;

use std::sync::{Arc, Mutex};

use runner_support::{factory, frame, guest_memory, Handle, Mem};
use vm_nic::backends::MacAddr;
use vm_nic::devices::{ManualClock, NoIrq};
use vm_nic::network::{Guest, Network, NetworkBuilder};
use vm_nic::options::NetConfig;
use vm_nic::runner::Runner;

/// The docs' line with pcnet (not a vm-nic model) replaced by e1000.
const LINE: &str =
    "-net nic,model=e1000 -net nic,model=rtl8139,vlan=1, -net nic,model=ne2k_pci,vlan=1";

fn build() -> (Runner<Mem>, Vec<Handle>) {
    let cfg = NetConfig::parse_line(LINE).unwrap();
    let clock = Arc::new(ManualClock::new());
    let handles = Arc::new(Mutex::new(Vec::new()));
    let net: Network<Mem> = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(handles.clone()))
        .build()
        .unwrap();
    let handles = handles.lock().unwrap().clone();
    for h in &handles {
        h.open(16);
    }
    (Runner::new(net, clock), handles)
}

fn transmit(r: &mut Runner<Mem>, h: &[Handle], nic: usize, f: Vec<u8>) {
    h[nic].lock().to_send.push(f);
    r.network_mut().nic_mut(nic).unwrap().bar_write(0, 0, 4, 1);
    r.pump();
}

#[test]
fn vlan_0_is_isolated_from_vlan_1() {
    let (mut r, h) = build();
    let macs: Vec<MacAddr> = r.network().config().nics.iter().map(|n| n.mac).collect();

    // NIC1 (vlan 0) broadcasts: nobody else is on hub 0.
    transmit(&mut r, &h, 0, frame(MacAddr::BROADCAST, macs[0], 1));
    assert!(h.iter().all(|h| h.received().is_empty()));

    // NIC2 (vlan 1) broadcasts: NIC3 gets it, NIC1 does not, NIC2 does not hear itself.
    let f2 = frame(MacAddr::BROADCAST, macs[1], 2);
    transmit(&mut r, &h, 1, f2.clone());
    assert_eq!(h[2].received(), vec![f2]);
    assert!(h[0].received().is_empty());
    assert!(h[1].received().is_empty());

    // NIC3 answers NIC2 directly; NIC1 addressed from vlan 1 never sees its frame.
    let f3 = frame(macs[1], macs[2], 3);
    transmit(&mut r, &h, 2, f3.clone());
    assert_eq!(h[1].received(), vec![f3]);
    let to_nic1 = frame(macs[0], macs[2], 4);
    transmit(&mut r, &h, 2, to_nic1);
    assert!(h[0].received().is_empty());
    // The hub floods: NIC2 sees the frame addressed to NIC1 (its filter is the model's job).
    assert_eq!(h[1].received().len(), 1);
}

#[test]
fn topology_and_info_network() {
    let (r, _h) = build();
    let net = r.network();
    assert_eq!(net.hub(0).unwrap().port_names(), ["hub0port0"]);
    assert_eq!(net.hub(1).unwrap().port_names(), ["hub1port0", "hub1port1"]);
    assert_eq!(
        net.info_network(),
        "hub 1\n \
         \\ hub1port1: ne2k_pci.0: index=0,type=nic,model=ne2k_pci,macaddr=52:54:00:12:34:58\n \
         \\ hub1port0: rtl8139.0: index=0,type=nic,model=rtl8139,macaddr=52:54:00:12:34:57\n\
         hub 0\n \
         \\ hub0port0: e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\n"
    );
}

#[test]
fn the_docs_line_with_pcnet_fails_on_pcnet_alone() {
    let line = LINE.replacen("model=e1000", "model=pcnet", 1);
    let cfg = NetConfig::parse_line(&line).unwrap();
    let e = match NetworkBuilder::new(&cfg)
        .guest(Guest::<Mem> {
            memory: guest_memory(),
            clock: Arc::new(ManualClock::new()),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .build()
    {
        Ok(_) => panic!("pcnet built"),
        Err(e) => e,
    };
    assert_eq!(e.column, line.find("pcnet").unwrap() + 1);
    assert!(e
        .message
        .starts_with("NIC model 'pcnet' is a QEMU model vm-nic does not support yet"));
}
