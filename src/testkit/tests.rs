use super::*;

#[test]
fn enumerate_places_bars_and_the_bus_follows_a_remap() {
    let mut b = Bench::e1000();
    assert_eq!(
        b.bar_address(0),
        None,
        "nothing decodes before firmware runs"
    );
    b.enumerate();
    assert_eq!(b.bar_address(0), Some(MMIO_WINDOW));
    assert_eq!(b.bar_address(1), Some(IO_WINDOW));
    // STATUS through memory and through the IOADDR/IODATA window agree.
    let status = b.mmio_read(MMIO_WINDOW + 0x8, 4);
    b.io_write(IO_WINDOW, 4, 0x8);
    assert_eq!(b.io_read(IO_WINDOW + 4, 4), status);
    // The guest moves BAR0: the old address no longer decodes, the new one does.
    b.config_write(reg::BAR0, 4, 0xfd00_0000);
    assert_eq!(b.mmio_read(MMIO_WINDOW + 0x8, 4), u32::MAX);
    assert!(
        b.logs().last().unwrap().contains("reaches no BAR"),
        "{:?}",
        b.logs()
    );
    assert_eq!(b.mmio_read(0xfd00_0008, 4), status);
}

#[test]
fn decoding_off_is_named_in_the_bus_note() {
    let mut b = Bench::rtl8139(Revision::Rtl8139C);
    b.enumerate();
    b.config_write(reg::COMMAND, 2, 0);
    b.io_write(IO_WINDOW + 0x37, 1, 0x10);
    let last = b.logs().pop().unwrap();
    assert!(last.contains("I/O decoding is off"), "{last}");
}

#[test]
fn isa_window_routes_from_iobase() {
    let mut b = Bench::ne2k_isa();
    b.enumerate();
    assert_eq!(b.bar_address(0), Some(0x300));
    // CR reads back the stopped state after reset: STP | RD2 (abort).
    assert_eq!(b.io_read(0x300, 1), 0x21);
    assert_eq!(b.io_read(0x2ff, 1), 0xff);
}

#[test]
fn model_by_name_and_errors() {
    let b = Bench::model("rtl8139", &[("revision", "0x10")]).unwrap();
    assert_eq!(b.device().model(), "rtl8139");
    let e = Bench::model("pcnet", &[]).unwrap_err();
    assert!(e.to_string().contains("not support"), "{e}");
}

#[test]
fn failure_lists_registers_irq_and_log() {
    let mut b = Bench::e1000();
    b.enumerate();
    b.mmio_write(MMIO_WINDOW + 0x3808, 4, 128); // TDLEN: 8 descriptors
    b.mmio_write(MMIO_WINDOW + 0x0400, 4, 2); // TCTL.EN
    b.mmio_write(MMIO_WINDOW + 0x3818, 4, 9); // TDT beyond the ring
    let f = b.failure("example");
    assert!(f.what.starts_with("e1000: example"));
    assert!(f.registers.contains("TDLEN=0x80"), "{}", f.registers);
    assert!(f.irq.starts_with("deasserted"));
    assert!(
        f.log.iter().any(|l| l.contains("beyond a ring")),
        "{:?}",
        f.log
    );
    let text = f.to_string();
    assert!(text.contains("device log (most recent last):"), "{text}");
}

#[test]
fn advance_runs_due_timers() {
    let mut b = Bench::e1000();
    b.enumerate();
    // Link comes up after auto-negotiation; the e1000 arms its timer at power-on.
    let before = b.device().nic().next_deadline();
    assert!(before.is_some());
    assert!(b.advance(5_000_000_000) >= 1);
    assert!(b
        .device()
        .nic()
        .next_deadline()
        .is_none_or(|d| d > 5_000_000_000));
}
