//! Save/restore through the plain state struct.

mod rtl8139_support;

use rtl8139_support::*;
use vm_nic_devices::rtl8139::Rtl8139;
use vm_nic_devices::RxOutcome;

fn busy_device() -> (
    Rig,
    Rtl8139<vm_memory::GuestMemoryMmap>,
    vm_nic_devices::ManualClock,
) {
    let rig = Rig::cplus();
    let (cfg, _, _, clock) = config(&rig.mem);
    let mut dev = Rtl8139::new(vm_nic_devices::rtl8139::Revision::Rtl8139CPlus, cfg);
    use vm_nic_devices::NicDevice;
    dev.config_write(0x04, 2, 0x0007);
    dev.config_write(0x10, 4, 0xC001);
    let w = |d: &mut Rtl8139<_>, off: u64, size: u8, v: u32| d.bar_write(0, off, size, v);
    w(&mut dev, 0x50, 1, 0xC0);
    w(&mut dev, 0x59, 1, 0x40);
    w(&mut dev, 0x50, 1, 0x00);
    w(&mut dev, 0x08, 4, 0xDEAD_BEEF);
    w(&mut dev, 0x30, 4, 0x10000);
    w(&mut dev, 0x44, 4, 0x8A);
    w(&mut dev, 0x37, 1, 0x0C);
    w(&mut dev, 0x3C, 2, 0x4001);
    w(&mut dev, 0x48, 4, 0);
    w(&mut dev, 0x54, 4, 1_000_000);
    dev.set_link(false);
    assert_eq!(dev.receive(&frame([0xFF; 6], 80)), RxOutcome::Accepted);
    (rig, dev, clock)
}

#[test]
fn state_round_trips() {
    let (_rig, dev, clock) = busy_device();
    clock.advance(12_345);
    let saved = dev.state();
    assert_eq!(saved.regs.tctr, 407, "12.345 us at 33 MHz");
    let mut restored = Rig::restore(&saved);
    assert_eq!(restored.dev.pci().unwrap().bytes(), saved.pci);
    assert!(
        restored.irq.level(),
        "ISR.ROK & IMR restored onto the new line"
    );
    assert_eq!(restored.r32(0x48), 407);
    assert_eq!(restored.r32(0x08), 0xDEAD_BEEF);
    assert_eq!(restored.r8(0x59), 0x40);
    assert_eq!(restored.r16(0x3A), 88);
    assert_eq!(restored.r16(0x64) & 0x04, 0, "link down");
    assert_eq!(restored.read_eeprom(7, 6), 0x5452);
    // The timer keeps its phase: TimerInt - TCTR ticks remain.
    let due = restored.dev.next_deadline().unwrap();
    let expect = ((1_000_000u64 - 407) * 1_000_000_000).div_ceil(33_000_000);
    assert_eq!(due, expect);
    // Saving the restored device gives the same state again.
    let restored_dev = Rtl8139::from_state(&saved, config(&restored.mem).0).unwrap();
    assert_eq!(restored_dev.state(), saved);
    assert_eq!(restored_dev.register_dump(), dev.register_dump());
}

#[test]
fn bad_revision_in_state_is_refused() {
    let (rig, dev, _) = busy_device();
    let mut s = dev.state();
    s.revision = 0x30;
    assert!(Rtl8139::from_state(&s, config(&rig.mem).0).is_err());
}
