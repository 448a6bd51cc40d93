//! A polling e1000 driver (tests/drivers/e1000.rs) against the 82540EM model: reset,
//! EEPROM MAC read through EERD, ring setup, transmit, receive and interrupt causes —
//! and how the driver bugs it can be told to make surface as test failures.

mod drivers;

use drivers::e1000::{bring_up, Bugs, E1000Driver, RING};
use vm_nic::backends::MacAddr;
use vm_nic::devices::e1000::regs::icr;
use vm_nic::devices::e1000::E1000;
use vm_nic::testkit::{frame, Bench, TestMemory};

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);

#[test]
fn mac_comes_from_the_eeprom() {
    let mut b = Bench::e1000();
    let drv = bring_up(&mut b, Bugs::default()).unwrap();
    assert_eq!(drv.mac, MacAddr::QEMU_DEFAULT.bytes());
}

#[test]
fn link_comes_up_and_is_reported() {
    let mut b = Bench::e1000();
    let drv = bring_up(&mut b, Bugs::default()).unwrap();
    // Link-status change was raised by auto-negotiation; reading ICR clears it.
    b.expect_irq(true);
    let causes = drv.interrupt_causes(&mut b);
    assert_ne!(causes & icr::LSC, 0, "ICR {causes:#x}");
    b.expect_irq(false);
}

#[test]
fn transmits_frames_in_order_around_the_ring() {
    let mut b = Bench::e1000();
    let mut drv = bring_up(&mut b, Bugs::default()).unwrap();
    drv.interrupt_causes(&mut b);
    for tag in 0..(RING as u8 * 2 + 3) {
        let f = frame::tagged(PEER, b.mac(), tag, 60 + tag as usize);
        drv.transmit(&mut b, &f).unwrap();
        b.expect_sent(&f);
    }
    b.expect_register("TDH", (RING as u64 * 2 + 3) % RING as u64);
    let causes = drv.interrupt_causes(&mut b);
    assert_ne!(causes & icr::TXDW, 0, "ICR {causes:#x}");
}

#[test]
fn receives_frames_and_recycles_descriptors() {
    let mut b = Bench::e1000();
    let mut drv = bring_up(&mut b, Bugs::default()).unwrap();
    drv.interrupt_causes(&mut b);
    for tag in 0..20u8 {
        let f = frame::tagged(b.mac(), PEER, tag, 100);
        b.expect_received(&f);
        b.expect_irq(true);
        let causes = drv.interrupt_causes(&mut b);
        assert_ne!(causes & icr::RXT0, 0, "ICR {causes:#x}");
        b.expect_irq(false);
        assert_eq!(drv.receive(&mut b), Some(f));
        assert_eq!(drv.receive(&mut b), None);
    }
}

#[test]
fn frames_for_another_station_are_filtered() {
    let mut b = Bench::e1000();
    bring_up(&mut b, Bugs::default()).unwrap();
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    let f = frame::tagged(other, PEER, 1, 60);
    let err = b.check_received(&f).unwrap_err();
    assert!(err.what.contains("answered Filtered"), "{err}");
}

// ---- Driver bugs, and what the test author sees --------------------------------------

/// A bench with a driver brought up with `bugs`.
fn buggy(bugs: Bugs) -> (Bench<E1000<TestMemory>>, E1000Driver) {
    let mut b = Bench::e1000();
    let drv = bring_up(&mut b, bugs).unwrap_or_else(|e| panic!("{e}"));
    (b, drv)
}

/// TDLEN says 8 descriptors, the driver uses 16: the eighth doorbell (TDT = 8) is
/// rejected and the device says why.
#[test]
#[should_panic(expected = "TDH 7 or TDT 8 beyond a ring of 8 descriptors")]
fn bug_tx_ring_length_shows_the_device_log() {
    let (mut b, mut drv) = buggy(Bugs {
        tx_ring_half_length: true,
        ..Bugs::default()
    });
    for tag in 0..10 {
        let f = frame::tagged(PEER, b.mac(), tag, 60);
        drv.transmit(&mut b, &f).unwrap_or_else(|e| panic!("{e}"));
        b.expect_sent(&f);
    }
}

/// The same bug seen through the fallible helper: the failure carries the registers.
#[test]
fn bug_tx_ring_length_failure_names_tdlen_and_the_tail() {
    let (mut b, mut drv) = buggy(Bugs {
        tx_ring_half_length: true,
        ..Bugs::default()
    });
    let mut failure = None;
    for tag in 0..10 {
        let f = frame::tagged(PEER, b.mac(), tag, 60);
        if let Err(e) = drv.transmit(&mut b, &f) {
            failure = Some(e);
            break;
        }
    }
    let f = failure.expect("the eighth transmit fails");
    assert!(
        f.what
            .contains("transmit descriptor 7 not written back (DD clear)"),
        "{f}"
    );
    assert!(f.registers.contains("TDLEN=0x80"), "{f}");
    assert!(f.registers.contains("TDT=0x8"), "{f}");
    assert!(
        f.log
            .iter()
            .any(|l| l.contains("TDH 7 or TDT 8 beyond a ring of 8 descriptors")),
        "{f}"
    );
}

/// A missed TDT write: nothing is sent, and the registers show TDH == TDT.
#[test]
#[should_panic(expected = "transmit descriptor 0 not written back (DD clear)")]
fn bug_missed_tail_write_is_a_clear_failure() {
    let (mut b, mut drv) = buggy(Bugs {
        skip_tdt_write: true,
        ..Bugs::default()
    });
    let f = frame::tagged(PEER, b.mac(), 0, 60);
    drv.transmit(&mut b, &f).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bug_missed_tail_write_failure_shows_equal_head_and_tail() {
    let (mut b, mut drv) = buggy(Bugs {
        skip_tdt_write: true,
        ..Bugs::default()
    });
    let f = frame::tagged(PEER, b.mac(), 0, 60);
    let err = drv.transmit(&mut b, &f).unwrap_err();
    assert!(err.registers.contains("TDH=0x0"), "{err}");
    assert!(err.registers.contains("TDT=0x0"), "{err}");
    let err = b.check_sent(&f).unwrap_err().to_string();
    assert!(err.contains("it transmitted nothing"), "{err}");
}

/// No receive descriptors posted: the frame is refused for lack of buffers, RDT=0 in
/// the registers.
#[test]
fn bug_no_receive_descriptors_failure() {
    let (mut b, _drv) = buggy(Bugs {
        skip_rdt_write: true,
        ..Bugs::default()
    });
    let f = frame::tagged(b.mac(), PEER, 0, 60);
    let err = b.check_received(&f).unwrap_err();
    assert!(err.what.contains("answered NoBuffer"), "{err}");
    assert!(err.what.contains("can_receive() is now false"), "{err}");
    assert!(
        err.registers.contains("RDH=0x0") && err.registers.contains("RDT=0x0"),
        "{err}"
    );
}

/// A transmitted frame that differs from the expected one: the diff names the field.
#[test]
fn wrong_frame_contents_are_diffed() {
    let mut b = Bench::e1000();
    let mut drv = bring_up(&mut b, Bugs::default()).unwrap();
    let sent = frame::tagged(PEER, b.mac(), 1, 60);
    drv.transmit(&mut b, &sent).unwrap();
    let expected = frame::tagged(MacAddr::BROADCAST, b.mac(), 1, 60);
    let err = b.check_sent(&expected).unwrap_err().to_string();
    assert!(
        err.contains("first difference at byte 0 (destination MAC)"),
        "{err}"
    );
}

/// The failure text docs/driver-testing.md shows is what the bench prints today.
#[test]
fn guide_failure_text_is_current() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/driver-testing.md"
    ))
    .unwrap();
    let after = guide.split("which prints:\n\n```text\n").nth(1).unwrap();
    let shown = after.split("```").next().unwrap();
    let mut bench = Bench::e1000();
    bench.enumerate();
    let bar0 = bench.bar_address(0).unwrap();
    bench.mmio_write(bar0 + 0x3808, 4, 8 * 16);
    bench.mmio_write(bar0 + 0x0400, 4, 1 << 1);
    bench.mmio_write(bar0 + 0x3818, 4, 9);
    let failure = bench.check_sent(&[0u8; 60]).unwrap_err();
    assert_eq!(failure.to_string(), shown);
}
