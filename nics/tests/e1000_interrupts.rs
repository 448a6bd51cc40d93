//! Interrupt delivery through the IrqLine: causes, mask, INTx level, INT_ASSERTED,
//! Interrupt Disable, and moderation timing (ITR, RDTR/RADV, TIDV/TADV, FPD).

mod e1000_support;

use e1000_support::*;
use vm_nic_devices::NicDevice;

const TXDW: u32 = 1;
const TXQE: u32 = 2;
const RXDMT0: u32 = 1 << 4;
const RXO: u32 = 1 << 6;
const RXT0: u32 = 1 << 7;
const TXD_LOW: u32 = 1 << 15;

#[test]
fn ics_ims_imc_drive_the_line() {
    let mut r = Rig::up();
    r.r(ICR);
    assert!(!r.irq.level());
    r.w(ICS, RXT0);
    assert!(!r.irq.level(), "masked");
    r.w(IMS, RXT0);
    assert!(r.irq.level(), "unmasking a pending cause asserts");
    assert_eq!(r.r(IMS), RXT0);
    r.w(IMC, RXT0);
    assert!(!r.irq.level());
    assert_eq!(r.r(IMS), 0);
    r.w(IMS, RXT0 | TXDW);
    assert!(r.irq.level());
    let icr = r.r(ICR);
    assert_eq!(icr, RXT0 | 1 << 31, "INT_ASSERTED with the cause");
    assert!(!r.irq.level(), "reading ICR clears and deasserts");
    assert_eq!(r.r(ICR), 0);
    assert_eq!(r.irq.transitions(), vec![true, false, true, false]);
}

#[test]
fn icr_read_clears_masked_causes_too() {
    let mut r = Rig::up();
    r.r(ICR);
    r.w(ICS, TXQE);
    assert_eq!(r.r(ICR), TXQE, "no INT_ASSERTED when nothing is enabled");
    assert_eq!(r.r(ICR), 0);
}

#[test]
fn linux_interrupt_test_sequence() {
    // e1000_intr_test, unshared: each of causes 0-9 masked must not post, unmasked must.
    let mut r = Rig::up();
    r.w(IMC, 0xffff_ffff);
    r.r(ICR);
    for i in 0..10 {
        let mask = 1 << i;
        r.w(IMC, mask);
        r.w(ICS, mask);
        assert!(!r.irq.level(), "cause {i} masked");
        r.w(IMS, mask);
        r.w(ICS, mask);
        assert!(r.irq.level(), "cause {i} enabled");
        assert_ne!(r.r(ICR) & mask, 0);
        r.w(IMC, !mask & 0x7fff);
        r.w(ICS, !mask & 0x7fff);
        assert!(!r.irq.level(), "others masked");
        r.r(ICR);
    }
}

#[test]
fn interrupt_disable_holds_the_line_but_keeps_status() {
    let mut r = Rig::up();
    r.r(ICR);
    r.w(IMS, RXT0);
    r.dev.config_write(0x04, 2, 0x0407);
    r.w(ICS, RXT0);
    assert!(!r.irq.level());
    assert_ne!(r.dev.config_read(0x06, 2) & 8, 0, "PCI interrupt status");
    r.dev.config_write(0x04, 2, 0x0007);
    assert!(r.irq.level());
}

#[test]
fn itr_spaces_assertions() {
    let mut r = Rig::up();
    r.r(ICR);
    r.w(IMS, RXT0);
    r.w(ITR, 1000); // 256 us
    r.w(ICS, RXT0);
    assert!(r.irq.level(), "the first interrupt is not delayed");
    r.r(ICR);
    r.w(ICS, RXT0);
    assert!(!r.irq.level(), "held back by ITR");
    assert_eq!(r.dev.next_deadline(), Some(r_now(&r) + 256_000));
    r.advance_ns(255_999);
    assert!(!r.irq.level());
    r.advance_ns(1);
    assert!(r.irq.level(), "asserted once the interval passed");
    assert_eq!(r.r(ICR), RXT0 | 1 << 31);
}

fn r_now(r: &Rig) -> u64 {
    use vm_nic_devices::Clock;
    r.clock.now_ns()
}

fn rx_setup(r: &mut Rig) {
    r.setup_rx(16, RCTL_BAM);
    r.r(ICR);
    r.w(IMS, RXT0);
}

#[test]
fn rdtr_delays_rxt0_and_restarts_per_packet() {
    let mut r = Rig::up();
    rx_setup(&mut r);
    r.w(RDTR, 100); // 102.4 us
    let f = eth([0xff; 6], 0x0800, &[0; 64]);
    r.dev.receive(&f);
    assert!(!r.irq.level());
    r.advance_ns(50_000);
    r.dev.receive(&f);
    r.advance_ns(100_000);
    assert!(!r.irq.level(), "the second packet restarted the timer");
    r.advance_ns(2_400);
    assert!(r.irq.level());
}

#[test]
fn radv_bounds_the_delay() {
    let mut r = Rig::up();
    rx_setup(&mut r);
    r.w(RDTR, 100);
    r.w(RADV, 150); // 153.6 us
    let f = eth([0xff; 6], 0x0800, &[0; 64]);
    for _ in 0..3 {
        r.dev.receive(&f);
        r.advance_ns(60_000);
    }
    // 180 us have passed; RDTR kept restarting but RADV fired at 153.6 us.
    assert!(r.irq.level());
}

#[test]
fn rdtr_fpd_flushes() {
    let mut r = Rig::up();
    rx_setup(&mut r);
    r.w(RDTR, 1000);
    r.dev.receive(&eth([0xff; 6], 0x0800, &[0; 64]));
    assert!(!r.irq.level());
    r.w(RDTR, 1 << 31 | 1000);
    assert!(r.irq.level());
    assert_eq!(r.r(RDTR), 1000, "FPD is write-only");
}

#[test]
fn rx_without_delay_interrupts_at_once_and_rdmts_fires() {
    let mut r = Rig::up();
    r.setup_rx(8, RCTL_BAM); // RDMTS 1/2: fires at <= 4 free
    r.r(ICR);
    r.w(IMS, RXT0 | RXDMT0);
    let f = eth([0xff; 6], 0x0800, &[0; 64]);
    r.dev.receive(&f);
    assert_eq!(r.r(ICR), RXT0 | 1 << 31);
    r.dev.receive(&f);
    r.dev.receive(&f);
    assert_eq!(r.r(ICR) & RXDMT0, RXDMT0, "4 of 8 descriptors left");
}

#[test]
fn out_of_descriptors_raises_rxo() {
    let mut r = Rig::up();
    r.setup_rx(8, RCTL_BAM);
    r.r(ICR);
    r.w(IMS, RXO);
    let f = eth([0xff; 6], 0x0800, &[0; 64]);
    for _ in 0..7 {
        assert_eq!(r.dev.receive(&f), vm_nic_devices::RxOutcome::Accepted);
    }
    assert!(!r.irq.level());
    assert_eq!(r.dev.receive(&f), vm_nic_devices::RxOutcome::NoBuffer);
    assert!(r.irq.level());
}

fn tx_setup(r: &mut Rig) {
    r.setup_tx(16);
    r.r(ICR);
    r.w(IMS, TXDW);
}

#[test]
fn txdw_immediate_without_ide() {
    let mut r = Rig::up();
    tx_setup(&mut r);
    r.tx_legacy(0, &eth([0xff; 6], 0x0800, &[0; 64]), 0x0b);
    r.w(TDT, 1);
    assert!(r.irq.level());
    assert_eq!(r.r(ICR) & (TXDW | TXQE), TXDW | TXQE);
}

#[test]
fn tidv_and_tadv_delay_txdw() {
    let mut r = Rig::up();
    tx_setup(&mut r);
    r.w(TIDV, 100);
    r.w(TADV, 120);
    let f = eth([0xff; 6], 0x0800, &[0; 64]);
    r.tx_legacy(0, &f, 0x8b); // IDE
    r.w(TDT, 1);
    assert!(!r.irq.level());
    r.advance_ns(80_000);
    r.tx_legacy(1, &f, 0x8b);
    r.w(TDT, 2);
    r.advance_ns(40_000);
    assert!(!r.irq.level(), "TIDV restarted at 80 us");
    r.advance_ns(2_880);
    assert!(r.irq.level(), "TADV fired at 122.88 us");
}

#[test]
fn tidv_fpd_flushes() {
    let mut r = Rig::up();
    tx_setup(&mut r);
    r.w(TIDV, 1000);
    r.tx_legacy(0, &eth([0xff; 6], 0x0800, &[0; 64]), 0x8b);
    r.w(TDT, 1);
    assert!(!r.irq.level());
    r.w(TIDV, 1 << 31 | 1000);
    assert!(r.irq.level());
}

#[test]
fn txd_low_threshold() {
    let mut r = Rig::up();
    r.setup_tx(16);
    r.r(ICR);
    r.w(TXDCTL, 1 << 25);
    r.tx_legacy(0, &eth([0xff; 6], 0x0800, &[0; 64]), 0x03);
    r.w(TDT, 1);
    assert_eq!(r.r(ICR) & TXD_LOW, TXD_LOW);
}
