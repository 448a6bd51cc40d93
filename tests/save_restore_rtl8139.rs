//! Save/restore of a running RTL8139 (both revisions, C mode): a save with frames unread
//! in the receive ring, a restore into a fresh device, and traffic carrying on — every
//! frame exactly once, in order.

mod drivers;

use drivers::rtl8139::{Bugs, Rtl8139Driver};
use vm_nic::backends::MacAddr;
use vm_nic::devices::rtl8139::{Revision, Rtl8139};
use vm_nic::devices::RxOutcome;
use vm_nic::testkit::{frame, Bench};

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
const FRAMES: u8 = 50;
const SAVE_AT: u8 = 17;

fn run(rev: Revision) {
    let mut b = Bench::rtl8139(rev);
    b.enumerate();
    let mut drv = Rtl8139Driver::start(&mut b, Bugs::default()).unwrap();
    let (mut got, mut sent) = (Vec::new(), Vec::new());
    for tag in 0..FRAMES {
        let out = frame::tagged(PEER, b.mac(), tag, 64 + 3 * tag as usize);
        drv.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
        sent.push(out);
        let inbound = frame::tagged(b.mac(), PEER, tag, 80 + 5 * tag as usize);
        assert_eq!(b.receive(&inbound), RxOutcome::Accepted, "tag {tag}");
        if tag % 3 == 2 {
            while let Some(f) = drv.receive(&mut b).unwrap() {
                got.push(f);
            }
            drv.interrupt_causes(&mut b);
        }
        if tag == SAVE_AT {
            let state = b.device().state();
            let level = b.irq().level();
            b.replace_device(|cfg| Rtl8139::from_state(&state, cfg).unwrap());
            assert_eq!(b.device().state().regs.isr, state.regs.isr);
            assert_eq!(b.device().state().regs.cbr, state.regs.cbr);
            assert_eq!(b.irq().level(), level);
        }
    }
    while let Some(f) = drv.receive(&mut b).unwrap() {
        got.push(f);
    }
    let want: Vec<Vec<u8>> = (0..FRAMES)
        .map(|t| frame::tagged(b.mac(), PEER, t, 80 + 5 * t as usize))
        .collect();
    drivers::assert_exactly_once(&format!("{rev:?}"), &got, &want, &b.take_sent(), &sent);
}

#[test]
fn save_mid_traffic_restore_and_carry_on_rtl8139c() {
    run(Revision::Rtl8139C);
}

#[test]
fn save_mid_traffic_restore_and_carry_on_rtl8139cplus() {
    run(Revision::Rtl8139CPlus);
}
