//! Every register of pages 0-3: reset values, read/write behaviour, read-back on page 2.

use super::*;

#[test]
fn power_on_values() {
    // DP8390D initialization: CR.RD2 and STP set, ISR.RST set, IMR 0, DCR.LAS set,
    // TCR.LB cleared.
    for mut b in [pci(), isa()] {
        let d = &mut b.drv;
        assert_eq!(d.inb(0), 0x21, "CR = RD2 | STP, page 0");
        assert_eq!(d.inb(EN0_ISR), 0x80);
        assert_eq!(d.read_paged(E8390_PAGE2, 0x0f), 0x00, "IMR");
        assert_eq!(d.read_paged(E8390_PAGE2, 0x0e), 0x04, "DCR.LAS");
        assert_eq!(d.read_paged(E8390_PAGE2, 0x0d), 0x00, "TCR");
        assert!(!b.irq.level());
    }
}

#[test]
fn command_register_run_state_and_pages() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(0, E8390_NODMA | E8390_START);
    assert_eq!(d.inb(0), 0x22);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RESET, 0, "Start clears ISR.RST");
    // Writing neither STA nor STP keeps the run state (Linux's page switches).
    d.outb(0, E8390_NODMA | E8390_PAGE1);
    assert_eq!(d.inb(0), 0x62);
    d.outb(0, E8390_NODMA | E8390_PAGE2);
    assert_eq!(d.inb(0), 0xa2);
    d.outb(0, E8390_NODMA | E8390_PAGE3);
    assert_eq!(d.inb(0), 0xe2);
    // Stop wins over Start and sets ISR.RST again.
    d.outb(0, E8390_NODMA | E8390_STOP | E8390_START);
    assert_eq!(d.inb(0), 0x21);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RESET, ENISR_RESET);
    // Writing RST to ISR has no effect.
    d.outb(EN0_ISR, 0xff);
    assert_eq!(d.inb(EN0_ISR), 0x80);
}

#[test]
fn reset_port_resets_and_keeps_other_registers() {
    let mut b = running();
    let d = &mut b.drv;
    d.outb(EN0_TXCR, E8390_TXOFF);
    d.outb(EN0_DCFG, 0x49);
    let v = d.inb(NE_RESET);
    assert_eq!(v, 0);
    // ISR.RST set, IMR cleared, DCR.LAS set, TCR.LB cleared, CR = 0x21.
    assert_eq!(d.inb(0), 0x21);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RESET, ENISR_RESET);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0f), 0);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0e), 0x4d);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0d), 0x00);
    // Unaffected registers: PSTART, PSTOP, PAR.
    assert_eq!(d.read_paged(E8390_PAGE2, 0x01), 0x4c);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x02), 0x80);
    assert_eq!(d.read_paged(E8390_PAGE1, 0x01), MAC[0]);
    // A write to the reset port is the end of the pulse: no new reset.
    d.outb(0, E8390_NODMA | E8390_START);
    d.outb(NE_RESET, 0);
    assert_eq!(d.inb(0), 0x22);
    // Offsets 0x18-0x1E decode as the reset port too.
    d.inb(0x18);
    assert_eq!(d.inb(0), 0x21);
}

#[test]
fn page0_write_registers_read_back_on_page2() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_STARTPG, 0x46);
    d.outb(EN0_STOPPG, 0x7f);
    d.outb(EN0_TPSR, 0x40);
    d.outb(EN0_RXCR, 0x1f);
    d.outb(EN0_TXCR, 0x1f);
    d.outb(EN0_DCFG, 0xff);
    d.outb(EN0_IMR, 0xff);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x01), 0x46, "PSTART");
    assert_eq!(d.read_paged(E8390_PAGE2, 0x02), 0x7f, "PSTOP");
    assert_eq!(d.read_paged(E8390_PAGE2, 0x04), 0x40, "TPSR");
    // RTL8029AS: RCR bits 7:6 read 1.
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0c), 0xdf, "RCR");
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0d), 0x1f, "TCR");
    assert_eq!(
        d.read_paged(E8390_PAGE2, 0x0e),
        0x7f,
        "DCR (bit 7 does not exist)"
    );
    assert_eq!(d.read_paged(E8390_PAGE2, 0x0f), 0x7f, "IMR (no bit 7)");
    for off in 0x08..=0x0b {
        assert_eq!(d.read_paged(E8390_PAGE2, off), 0xff, "reserved {off:#x}");
    }
    // The ISA DP8390D has no constant read-back bits.
    let mut i = isa();
    i.drv.outb(EN0_RXCR, 0x1f);
    assert_eq!(i.drv.read_paged(E8390_PAGE2, 0x0c), 0x1f);
}

#[test]
fn page2_writes_local_dma_registers() {
    let mut b = pci();
    let d = &mut b.drv;
    d.write_paged(E8390_PAGE2, 0x01, 0x34);
    d.write_paged(E8390_PAGE2, 0x02, 0x52);
    assert_eq!(d.inb(0x01), 0x34, "CLDA0");
    assert_eq!(d.inb(0x02), 0x52, "CLDA1");
    assert_eq!(
        d.read_paged(E8390_PAGE2, 0x06),
        0x52,
        "address counter high"
    );
    assert_eq!(d.read_paged(E8390_PAGE2, 0x07), 0x34, "address counter low");
    d.write_paged(E8390_PAGE2, 0x07, 0x10);
    d.write_paged(E8390_PAGE2, 0x06, 0x41);
    assert_eq!((d.inb(0x02), d.inb(0x01)), (0x41, 0x10));
    d.write_paged(E8390_PAGE2, 0x03, 0x55);
    d.write_paged(E8390_PAGE2, 0x05, 0x66);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x03), 0x55, "RNPP");
    assert_eq!(d.read_paged(E8390_PAGE2, 0x05), 0x66, "LNPP");
    // Page 2 writes never reach PSTART/PSTOP.
    assert_eq!(d.read_paged(E8390_PAGE2, 0x01), 0x00);
}

#[test]
fn page1_addresses_read_write() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(0, E8390_NODMA | E8390_PAGE1 | E8390_STOP);
    for off in 1..=0x0f {
        d.outb(off, 0xa0 | off);
    }
    for off in 1..=0x0f {
        assert_eq!(d.inb(off), 0xa0 | off, "page 1 offset {off:#x}");
    }
    d.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    // BNRY is page 0 read/write.
    d.outb(EN0_BOUNDARY, 0x5a);
    assert_eq!(d.inb(EN0_BOUNDARY), 0x5a);
}

#[test]
fn rtl8029_id_bytes_on_pci_only() {
    let mut b = pci();
    assert_eq!(b.drv.inb(0x0a), 0x50);
    assert_eq!(b.drv.inb(0x0b), 0x43);
    let mut i = isa();
    assert_eq!(i.drv.inb(0x0a), 0xff);
    assert_eq!(i.drv.inb(0x0b), 0xff);
}

#[test]
fn isr_write_one_to_clear_and_interrupt_line() {
    let mut b = running();
    b.drv.outb(EN0_IMR, 0x00);
    // Two events: a received frame (PRX) and a transmitted one (PTX).
    assert_eq!(b.rx(&frame(MAC, 100, 1)), RxOutcome::Accepted);
    b.drv.outb(EN0_TCNTLO, 60);
    b.drv.outb(EN0_TCNTHI, 0);
    b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
    assert_eq!(b.drv.inb(EN0_ISR), ENISR_RX | ENISR_TX);
    assert!(!b.irq.level(), "masked");
    b.drv.outb(EN0_IMR, ENISR_TX);
    assert!(b.irq.level());
    b.drv.outb(EN0_ISR, ENISR_RX);
    assert_eq!(b.drv.inb(EN0_ISR), ENISR_TX, "only the written bit cleared");
    assert!(b.irq.level());
    b.drv.outb(EN0_ISR, ENISR_TX);
    assert!(!b.irq.level());
    assert_eq!(b.irq.transitions(), vec![true, false]);
    b.assert_irq_rule();
}

#[test]
fn pci_interrupt_disable_masks_the_line() {
    let mut b = running();
    b.rx(&frame(MAC, 100, 1));
    assert!(b.irq.level());
    b.dev().config_write(0x04, 2, 0x0401);
    assert!(!b.irq.level());
    assert_ne!(
        b.dev().config_read(0x06, 2) & 0x08,
        0,
        "status.INTERRUPT still set"
    );
    b.dev().config_write(0x04, 2, 0x0001);
    assert!(b.irq.level());
}

#[test]
fn isa_line_follows_isr_and_imr() {
    let mut b = isa();
    b.drv.word16 = false;
    b.drv.init(MAC, true);
    assert_eq!(b.rx(&frame(MAC, 80, 2)), RxOutcome::Accepted);
    assert!(b.irq.level());
    b.drv.outb(EN0_ISR, ENISR_RX);
    assert!(!b.irq.level());
}

#[test]
fn tally_counters_count_clear_on_read_and_raise_cnt() {
    let mut b = running();
    b.drv.set_multicast(&[0; 8], 0x24); // monitor mode + broadcast
    for i in 0..130u32 {
        assert_eq!(b.rx(&frame([0xff; 6], 64, i as u8)), RxOutcome::Dropped);
    }
    assert_eq!(b.drv.inb(EN0_RSR), 0x70, "MPA | PHY | DIS");
    assert_ne!(
        b.drv.inb(EN0_ISR) & ENISR_COUNTERS,
        0,
        "CNT once CNTR2 MSB set"
    );
    assert_eq!(b.drv.inb(EN0_COUNTER2), 130);
    assert_eq!(b.drv.inb(EN0_COUNTER2), 0, "cleared by the read");
    for i in 0..250u32 {
        b.rx(&frame([0xff; 6], 64, i as u8));
    }
    assert_eq!(b.drv.inb(EN0_COUNTER2), 192, "counters stop at 192");
    assert_eq!(b.drv.inb(EN0_COUNTER0), 0);
    assert_eq!(b.drv.inb(EN0_COUNTER1), 0);
    b.assert_irq_rule();
}

#[test]
fn page3_rtl8029_config_registers() {
    let mut b = pci();
    let d = &mut b.drv;
    assert_eq!(
        d.read_paged(E8390_PAGE3, 0x03),
        0x00,
        "CONFIG0: twisted pair"
    );
    // Locked: CONFIG3 ignores writes while 9346CR.EEM != 11.
    d.write_paged(E8390_PAGE3, 0x06, 0x40);
    assert_eq!(d.read_paged(E8390_PAGE3, 0x06), 0x00);
    // Linux's set_realtek_fdx.
    d.outb(0, 0xc0 | E8390_NODMA);
    d.outb(0x01, 0xc0);
    d.outb(0x06, 0x40);
    d.outb(0x05, 0x80);
    d.outb(0x01, 0x00);
    d.outb(0, E8390_PAGE0 | E8390_NODMA);
    assert_eq!(d.read_paged(E8390_PAGE3, 0x06), 0x40, "CONFIG3.FUDUP");
    assert_eq!(d.read_paged(E8390_PAGE3, 0x05), 0x80, "CONFIG2.PL1");
    assert_eq!(d.read_paged(E8390_PAGE3, 0x01), 0x00, "9346CR");
    // Auto-load restores the power-on configuration.
    d.write_paged(E8390_PAGE3, 0x01, 0x40);
    assert_eq!(d.read_paged(E8390_PAGE3, 0x06), 0x00);
    assert_eq!(d.read_paged(E8390_PAGE3, 0x01), 0x00);
    d.write_paged(E8390_PAGE3, 0x09, b'H');
    assert_eq!(d.read_paged(E8390_PAGE3, 0x0e), 0xff, "reserved");
    // ISA: page 3 does not exist on the DP8390D.
    let mut i = isa();
    i.drv.write_paged(E8390_PAGE3, 0x01, 0xc0);
    assert_eq!(i.drv.read_paged(E8390_PAGE3, 0x01), 0xff);
}

#[test]
fn wide_accesses_to_registers_split_into_bytes() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outw(EN0_STARTPG, 0x8046);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x01), 0x46);
    assert_eq!(d.read_paged(E8390_PAGE2, 0x02), 0x80);
    // ISR (0x07) read as the high byte of a 16-bit read at 0x06 (FIFO).
    assert_eq!(d.inw(0x06) >> 8, 0x80);
    // Offsets past the 32-byte window read as an undriven bus.
    assert_eq!(b.dev().bar_read(0, 0x20, 4), u32::MAX);
    b.dev().bar_write(0, 0x40, 1, 0);
}

#[test]
fn device_reset_is_a_power_on() {
    let mut b = running();
    b.dev().config_write(0x04, 2, 0x0001);
    b.rx(&frame(MAC, 300, 1));
    assert!(b.irq.level());
    NicDevice::reset(b.dev());
    assert!(!b.irq.level(), "line released");
    assert_eq!(b.dev().config_read(0x04, 2), 0, "PCI command cleared");
    let st = b.dev().state();
    assert!(st.mem.iter().all(|&x| x == 0), "packet RAM cleared");
    assert_eq!((st.pstart, st.pstop, st.curr, st.par), (0, 0, 0, [0; 6]));
    assert_eq!(b.drv.inb(0), 0x21);
    assert_eq!(b.drv.inb(EN0_ISR), 0x80);
    // The PROM keeps the MAC.
    assert_eq!(&b.drv.read_prom()[..6], &MAC);
}
