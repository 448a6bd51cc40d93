//! ISR/IMR, the TCTR/TimerInt timer, MII/MSR/CSCR and link-change interrupts.

mod rtl8139_support;

use rtl8139_support::*;

#[test]
fn isr_is_write_one_to_clear_and_drives_intx() {
    let mut r = Rig::c();
    r.dev.set_link(false);
    assert_eq!(r.r16(0x3E), 0x20, "LinkChg");
    assert!(!r.irq.level(), "masked");
    r.w16(0x3C, 0x20);
    assert!(r.irq.level());
    r.assert_intx_rule();
    r.w16(0x3E, 0x0000);
    assert!(r.irq.level(), "writing 0 clears nothing");
    r.w16(0x3E, 0x0020);
    assert!(!r.irq.level());
    assert_eq!(r.irq.transitions(), vec![true, false]);
    // Interrupt Disable in the PCI command register masks the line, not ISR.
    r.dev.set_link(true);
    r.dev.config_write(0x04, 2, 0x0407);
    assert!(!r.irq.level());
    assert_ne!(
        r.dev.config_read(0x06, 2) & 0x08,
        0,
        "PCI status interrupt bit"
    );
    r.dev.config_write(0x04, 2, 0x0007);
    assert!(r.irq.level());
}

#[test]
fn timer_raises_pcs_timeout_at_33_mhz() {
    let mut r = Rig::c();
    r.w16(0x3C, 0x4000);
    assert_eq!(r.dev.next_deadline(), None, "TimerInt 0 disables the timer");
    r.w32(0x48, 0);
    r.w32(0x54, 33_000); // 1 ms
    assert_eq!(r.dev.next_deadline(), Some(1_000_000));
    r.clock.advance(999_999);
    r.dev.run_timers();
    assert!(!r.irq.level());
    assert_eq!(r.r32(0x48), 32_999);
    r.clock.advance(1);
    r.dev.run_timers();
    assert!(r.irq.level());
    assert_ne!(r.r16(0x3E) & 0x4000, 0);
    // The next match is one full 32-bit cycle later.
    let next = r.dev.next_deadline().unwrap();
    assert!(next > 130_000_000_000 && next < 130_200_000_000, "{next}");
    r.w16(0x3E, 0x4000);
    // Writing TCTR restarts the count.
    r.w32(0x48, 0x1234);
    assert_eq!(r.r32(0x48), 0);
    assert_eq!(r.dev.next_deadline(), Some(2_000_000));
}

#[test]
fn link_change_updates_mii_msr_and_cscr() {
    let mut r = Rig::c();
    assert_eq!(r.r16(0x64) & 0x24, 0x24);
    assert_eq!(r.r16(0x68), 0x45E1, "ANLPAR");
    assert_eq!(r.r16(0x6A) & 1, 1, "ANER LP_NW_ABLE");
    assert_eq!(r.r8(0x58) & 0x04, 0, "MSR LINKB clear");
    assert_ne!(r.r16(0x74) & 0x0400, 0, "CSCR link OK");
    r.dev.set_link(false);
    assert_eq!(r.r16(0x64) & 0x24, 0);
    assert_eq!(r.r16(0x68), 0);
    assert_eq!(r.r8(0x58) & 0x04, 0x04);
    assert_ne!(r.r16(0x74) & 0x0800, 0, "CSCR link change follows ISR");
    r.w16(0x3E, 0x20);
    assert_eq!(r.r16(0x74) & 0x0C00, 0);
    r.dev.set_link(false);
    assert_eq!(r.r16(0x3E), 0, "no change, no interrupt");
}

#[test]
fn multiple_interrupt_select_keeps_its_12_bits() {
    let mut r = Rig::c();
    r.w16(0x5C, 0xFFFF);
    assert_eq!(r.r16(0x5C), 0x0FFF);
}

#[test]
fn cplus_only_interrupt_bits() {
    let mut c = Rig::c();
    c.w16(0x3C, 0xFFFF);
    assert_eq!(c.r16(0x3C), 0xE07F);
    let mut p = Rig::cplus();
    p.w16(0x3C, 0xFFFF);
    assert_eq!(p.r16(0x3C), 0xE1FF);
    p.w8(0xD9, 0x01);
    assert_ne!(p.r16(0x3E) & 0x100, 0, "TPPoll.FSWInt raises SWInt");
    p.assert_intx_rule();
    c.w8(0xD9, 0x01);
    assert_eq!(c.r16(0x3E), 0, "no TPPoll on the RTL8139C");
}
