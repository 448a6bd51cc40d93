//! Save/restore of a running NE2000 (PCI and ISA): a save with packets unread in the
//! card's receive ring, a restore into a fresh card, and traffic carrying on — every
//! frame exactly once, in order.

mod drivers;

use drivers::ne2000::{Bugs, Ne2000Driver};
use vm_nic::backends::MacAddr;
use vm_nic::devices::ne2000::Ne2000;
use vm_nic::devices::RxOutcome;
use vm_nic::testkit::{frame, Bench, TestMemory};

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
const FRAMES: u8 = 50;
const SAVE_AT: u8 = 21;

fn run(mut b: Bench<Ne2000<TestMemory>>) {
    b.enumerate();
    let bus = b.device().bus();
    let base = b.bar_address(0).unwrap();
    let drv = Ne2000Driver::start(&mut b, base, Bugs::default()).unwrap();
    let (mut got, mut sent) = (Vec::new(), Vec::new());
    for tag in 0..FRAMES {
        let out = frame::tagged(PEER, b.mac(), tag, 64 + 3 * tag as usize);
        drv.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
        sent.push(out);
        let inbound = frame::tagged(b.mac(), PEER, tag, 80 + 5 * tag as usize);
        assert_eq!(b.receive(&inbound), RxOutcome::Accepted, "tag {tag}");
        if tag % 4 == 3 {
            while let Some(f) = drv.receive(&mut b).unwrap() {
                got.push(f);
            }
        }
        if tag == SAVE_AT {
            let state = b.device().state();
            let level = b.irq().level();
            b.replace_device(|cfg| Ne2000::from_state(&state, bus, cfg).unwrap());
            assert_eq!(
                b.device().state(),
                state,
                "{bus:?}: restored state reads back"
            );
            assert_eq!(b.irq().level(), level);
        }
    }
    while let Some(f) = drv.receive(&mut b).unwrap() {
        got.push(f);
    }
    let want: Vec<Vec<u8>> = (0..FRAMES)
        .map(|t| frame::tagged(b.mac(), PEER, t, 80 + 5 * t as usize))
        .collect();
    drivers::assert_exactly_once(&format!("{bus:?}"), &got, &want, &b.take_sent(), &sent);
}

#[test]
fn save_mid_traffic_restore_and_carry_on_pci() {
    run(Bench::ne2k_pci());
}

#[test]
fn save_mid_traffic_restore_and_carry_on_isa() {
    run(Bench::ne2k_isa());
}
