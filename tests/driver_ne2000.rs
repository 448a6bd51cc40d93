//! A polling NE2000 driver (tests/drivers/ne2000.rs) against the RTL8029 PCI model and
//! the ISA card: reset, PROM MAC read by remote DMA, ring setup, transmit, receive,
//! interrupt causes — and how driver bugs surface.

mod drivers;

use drivers::ne2000::{Bugs, Ne2000Driver, ISR_PRX, ISR_PTX};
use vm_nic::backends::MacAddr;
use vm_nic::devices::ne2000::Ne2000;
use vm_nic::testkit::{frame, Bench, TestMemory};

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);

fn pci(bugs: Bugs) -> (Bench<Ne2000<TestMemory>>, Ne2000Driver) {
    let mut b = Bench::ne2k_pci();
    b.enumerate();
    let base = b.bar_address(0).expect("the I/O BAR is placed");
    let d = Ne2000Driver::start(&mut b, base, bugs).unwrap_or_else(|e| panic!("{e}"));
    (b, d)
}

#[test]
fn mac_comes_from_the_prom() {
    let (_, d) = pci(Bugs::default());
    assert_eq!(d.mac, MacAddr::QEMU_DEFAULT.bytes());
}

#[test]
fn transmit_and_receive_with_interrupts() {
    let (mut b, d) = pci(Bugs::default());
    for tag in 0..40u8 {
        let out = frame::tagged(PEER, b.mac(), tag, 60 + 7 * tag as usize);
        d.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
        b.expect_sent(&out);
        let inbound = frame::tagged(b.mac(), PEER, tag, 60 + 11 * tag as usize);
        b.expect_received(&inbound);
        b.expect_irq(true);
        let isr = d.interrupt_causes(&mut b);
        assert_eq!(isr & ISR_PRX, ISR_PRX, "ISR {isr:#04x}");
        b.expect_irq(false);
        assert_eq!(d.receive(&mut b).unwrap(), Some(inbound));
        assert_eq!(d.receive(&mut b).unwrap(), None);
    }
}

#[test]
fn isa_card_works_the_same() {
    let mut b = Bench::ne2k_isa();
    let base = b.bar_address(0).unwrap();
    let d = Ne2000Driver::start(&mut b, base, Bugs::default()).unwrap();
    let out = frame::tagged(MacAddr::BROADCAST, b.mac(), 3, 64);
    d.transmit(&mut b, &out).unwrap();
    b.expect_sent(&out);
    assert_eq!(
        d.interrupt_causes(&mut b) & ISR_PTX,
        0,
        "acknowledged by transmit"
    );
}

// ---- Driver bugs ---------------------------------------------------------------------

/// TBCR never written: the card aborts the transmission and logs the byte count.
#[test]
#[should_panic(expected = "transmit of 0 bytes (TBCR) aborted")]
fn bug_missing_tbcr_shows_the_device_log() {
    let (mut b, d) = pci(Bugs {
        skip_tbcr: true,
        ..Bugs::default()
    });
    let out = frame::tagged(PEER, b.mac(), 1, 60);
    d.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bug_missing_tbcr_failure_text() {
    let (mut b, d) = pci(Bugs {
        skip_tbcr: true,
        ..Bugs::default()
    });
    let out = frame::tagged(PEER, b.mac(), 1, 60);
    let e = d.transmit(&mut b, &out).unwrap_err();
    assert!(
        e.what
            .contains("packet not transmitted: ISR 0x08 (PTX clear)"),
        "{e}"
    );
    assert!(e.registers.contains("TBCR=0x0"), "{e}");
    b.expect_nothing_sent();
}

/// PSTART and PSTOP swapped: every received frame is dropped, and the log says the
/// ring is misconfigured with the four pointers.
#[test]
fn bug_swapped_ring_bounds_failure_text() {
    let (mut b, _d) = pci(Bugs {
        swapped_ring_bounds: true,
        ..Bugs::default()
    });
    let inbound = frame::tagged(b.mac(), PEER, 1, 60);
    let e = b.check_received(&inbound).unwrap_err().to_string();
    assert!(e.contains("answered Dropped"), "{e}");
    assert!(
        e.contains("receive ring misconfigured (PSTART 0x80 PSTOP 0x46"),
        "{e}"
    );
}
