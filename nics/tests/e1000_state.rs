//! Save/restore through E1000State.

mod e1000_support;

use std::sync::Arc;

use e1000_support::*;
use vm_nic_backends::memory::RecordingBackend;
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::E1000;
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice};

#[test]
fn state_round_trips_mid_packet() {
    let mut r = Rig::up();
    r.setup_tx(8);
    r.setup_rx(8, RCTL_BAM);
    r.w(IMS, 1 << 7);
    r.w(RDTR, 500);
    r.dev.receive(&eth([0xff; 6], 0x0800, &[1; 80]));
    r.w(0x0028, 0xdead_beef);
    r.ee_command(0b100, 0b11_0000, None);
    r.ee_command(0b101, 0x30, Some(0x4242));
    let f = eth([0x02, 1, 2, 3, 4, 5], 0x0800, &[9; 200]);
    r.tx_legacy(0, &f[..100], 0);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 0, "packet in progress");
    let saved = r.dev.state();

    let irq = IrqRecorder::new();
    let (backend, net) = RecordingBackend::new();
    let cfg = NicConfig {
        mac: MacAddr([0; 6]),
        backend: Box::new(backend),
        irq: Box::new(irq.clone()),
        clock: Arc::new(r.clock.clone()),
        memory: r.mem.clone(),
    };
    let mut d = E1000::from_state(&saved, cfg).unwrap();
    assert_eq!(d.state(), saved);
    assert_eq!(d.mac(), MacAddr(MAC));
    assert_eq!(d.bar_read(0, 0x28, 4), 0xdead_beef);
    assert_eq!(d.state().eeprom.words[0x30], 0x4242);
    // The RX delay timer survives: RXT0 fires at its deadline.
    assert_eq!(d.next_deadline(), saved.irq_timers[1]);
    r.clock.advance(600_000);
    d.run_timers();
    assert!(irq.level());
    // The packet in progress completes on the restored device.
    r.tx_legacy(1, &f[100..], 0x01);
    d.bar_write(0, TDT, 4, 2);
    assert_eq!(net.take_sent(), vec![f]);
}

#[test]
fn bad_state_is_rejected() {
    let r = Rig::up();
    let mut s = r.dev.state();
    s.regs.truncate(10);
    let cfg = NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(RecordingBackend::new().0),
        irq: Box::new(IrqRecorder::new()),
        clock: Arc::new(ManualClock::new()),
        memory: r.mem.clone(),
    };
    assert!(E1000::from_state(&s, cfg).is_err());
}

#[test]
fn a_microwire_read_continues_across_save_and_restore() {
    let mut r = Rig::new(vm_nic_devices::e1000::Variant::E82540EM);
    r.ee_acquire();
    r.ee_shift_out(0b110, 3);
    r.ee_shift_out(0x0d, 6);
    let saved = r.dev.state();
    let cfg = NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(RecordingBackend::new().0),
        irq: Box::new(IrqRecorder::new()),
        clock: Arc::new(r.clock.clone()),
        memory: r.mem.clone(),
    };
    r.dev = E1000::from_state(&saved, cfg).unwrap();
    assert_eq!(
        r.ee_shift_in(16),
        0x100e,
        "device ID word read on the restored device"
    );
}
