//! A polling RTL8139 C-mode driver (tests/drivers/rtl8139.rs) against both chip
//! revisions: reset, MAC from IDR, receive ring and transmit buffers, transmit, receive,
//! interrupt causes — and how a driver bug surfaces.

mod drivers;

use drivers::rtl8139::{Bugs, Rtl8139Driver};
use vm_nic::backends::MacAddr;
use vm_nic::devices::rtl8139::regs::int;
use vm_nic::devices::rtl8139::{Revision, Rtl8139};
use vm_nic::testkit::{frame, Bench, TestMemory};

const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);

fn bring_up(rev: Revision, bugs: Bugs) -> (Bench<Rtl8139<TestMemory>>, Rtl8139Driver) {
    let mut b = Bench::rtl8139(rev);
    b.enumerate();
    let d = Rtl8139Driver::start(&mut b, bugs).unwrap_or_else(|e| panic!("{e}"));
    (b, d)
}

#[test]
fn mac_is_loaded_from_the_eeprom() {
    let (_, d) = bring_up(Revision::Rtl8139C, Bugs::default());
    assert_eq!(d.mac, MacAddr::QEMU_DEFAULT.bytes());
}

#[test]
fn traffic_both_ways_on_both_revisions() {
    for rev in [Revision::Rtl8139C, Revision::Rtl8139CPlus] {
        let (mut b, mut d) = bring_up(rev, Bugs::default());
        // Enough frames to wrap the 8 KiB ring several times.
        for tag in 0..60u8 {
            let out = frame::tagged(PEER, b.mac(), tag, 60 + 13 * tag as usize);
            d.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
            b.expect_sent(&out);
            let isr = d.interrupt_causes(&mut b);
            assert_eq!(isr & int::TOK, int::TOK, "ISR {isr:#06x}");
            let inbound = frame::tagged(b.mac(), PEER, tag, 60 + 17 * tag as usize);
            b.expect_received(&inbound);
            b.expect_irq(true);
            let isr = d.interrupt_causes(&mut b);
            assert_eq!(isr & int::ROK, int::ROK, "ISR {isr:#06x}");
            b.expect_irq(false);
            assert_eq!(
                d.receive(&mut b).unwrap(),
                Some(inbound),
                "{rev:?} tag {tag}"
            );
            assert_eq!(d.receive(&mut b).unwrap(), None);
        }
    }
}

// ---- Driver bugs ---------------------------------------------------------------------

/// The driver never enabled bus mastering: the chip cannot fetch the buffer, and says so.
#[test]
#[should_panic(expected = "rtl8139: transmit waits: bus mastering is off")]
fn bug_no_bus_master_shows_the_device_log() {
    let (mut b, mut d) = bring_up(
        Revision::Rtl8139C,
        Bugs {
            no_bus_master: true,
        },
    );
    let out = frame::tagged(PEER, b.mac(), 1, 60);
    d.transmit(&mut b, &out).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bug_no_bus_master_failure_text() {
    let (mut b, mut d) = bring_up(
        Revision::Rtl8139C,
        Bugs {
            no_bus_master: true,
        },
    );
    let out = frame::tagged(PEER, b.mac(), 1, 60);
    let e = d.transmit(&mut b, &out).unwrap_err();
    assert!(
        e.what
            .contains("TSD0 is 0x0000003c: transmit not OK (TOK clear)"),
        "{e}"
    );
    assert!(e.registers.contains("PCI_COMMAND=0x1"), "{e}");
    b.expect_nothing_sent();
}
