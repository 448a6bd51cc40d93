//! Save/restore of a running e1000: traffic in both directions, a save with received
//! frames still unread in the ring and the interrupt pending, a restore into a fresh
//! device (new backend and interrupt line, same guest RAM), and traffic carrying on —
//! every frame arrives exactly once, in order.

mod drivers;

use drivers::e1000::{bring_up, Bugs};
use vm_nic::backends::MacAddr;
use vm_nic::devices::e1000::E1000;
use vm_nic::devices::RxOutcome;
use vm_nic::testkit::frame;

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
const FRAMES: u8 = 60;
const SAVE_AT: u8 = 23;

#[test]
fn save_mid_traffic_restore_and_carry_on() {
    let mut b = vm_nic::testkit::Bench::e1000();
    let mut drv = bring_up(&mut b, Bugs::default()).unwrap();
    drv.interrupt_causes(&mut b);
    let (mut got, mut sent) = (Vec::new(), Vec::new());
    let mut held: Option<Vec<u8>> = None;
    for tag in 0..FRAMES {
        let out = frame::tagged(PEER, b.mac(), tag, 64 + tag as usize);
        drv.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
        sent.push(out);
        // Inbound: offer the held frame first (as the runner does), then a new one.
        let inbound = frame::tagged(b.mac(), PEER, tag, 70 + tag as usize);
        for f in held.take().into_iter().chain([inbound]) {
            if held.is_some() || b.receive(&f) == RxOutcome::NoBuffer {
                held.get_or_insert(f);
            }
        }
        // The driver drains the ring only every fifth frame, so frames sit unread.
        if tag % 5 == 4 {
            while let Some(f) = drv.receive(&mut b) {
                got.push(f);
            }
        }
        if tag == SAVE_AT {
            let state = b.device().state();
            let level = b.irq().level();
            assert!(
                level,
                "an unacknowledged receive interrupt is pending at the save"
            );
            let old = b.replace_device(|cfg| E1000::from_state(&state, cfg).unwrap());
            drop(old);
            assert_eq!(
                b.device().state(),
                state,
                "restored state reads back identically"
            );
            assert_eq!(
                b.irq().level(),
                level,
                "the new line is driven as the old one was"
            );
        }
    }
    loop {
        if let Some(f) = held.take() {
            if b.receive(&f) == RxOutcome::NoBuffer {
                held = Some(f);
            }
        }
        match drv.receive(&mut b) {
            Some(f) => got.push(f),
            None if held.is_none() => break,
            None => panic!("{}", b.failure("a held frame is never taken")),
        }
    }
    let want: Vec<Vec<u8>> = (0..FRAMES)
        .map(|t| frame::tagged(b.mac(), PEER, t, 70 + t as usize))
        .collect();
    drivers::assert_exactly_once("e1000", &got, &want, &b.take_sent(), &sent);
}
