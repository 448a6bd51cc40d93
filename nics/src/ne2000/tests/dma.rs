//! Remote DMA: transfer widths, byte order, RDC, CRDA, ring wrap, PROM, Send Packet.

use super::*;

fn setup_dma(d: &mut Driver<Ne2000<Mem>, Mem>, addr: u16, count: u16, cmd: u8) {
    d.outb(EN0_RCNTLO, count as u8);
    d.outb(EN0_RCNTHI, (count >> 8) as u8);
    d.outb(EN0_RSARLO, addr as u8);
    d.outb(EN0_RSARHI, (addr >> 8) as u8);
    d.outb(0, cmd | E8390_START);
}

#[test]
fn byte_mode_write_and_read_back() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x48);
    setup_dma(d, 0x4000, 5, E8390_RWRITE);
    for v in [1u8, 2, 3, 4, 5] {
        assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, 0);
        d.outb(NE_DATAPORT, v);
    }
    assert_eq!(
        d.inb(EN0_ISR) & ENISR_RDC,
        ENISR_RDC,
        "RDC when the count reaches 0"
    );
    assert_eq!(
        (d.inb(0x09), d.inb(0x08)),
        (0x40, 0x05),
        "CRDA advanced by 5"
    );
    d.outb(EN0_ISR, ENISR_RDC);
    setup_dma(d, 0x4000, 5, E8390_RREAD);
    let got: Vec<u8> = (0..5).map(|_| d.inb(NE_DATAPORT)).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
    // A 16-bit access in byte mode moves two bytes.
    setup_dma(d, 0x4001, 2, E8390_RREAD);
    assert_eq!(d.inw(NE_DATAPORT), 0x0302);
    // Any of 0x10-0x17 is the data port.
    setup_dma(d, 0x4004, 1, E8390_RREAD);
    assert_eq!(d.inb(0x17), 5);
}

#[test]
fn word_mode_widths_and_byte_order() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x49);
    setup_dma(d, 0x4100, 8, E8390_RWRITE);
    d.outl(NE_DATAPORT, 0x4433_2211);
    d.outw(NE_DATAPORT, 0x6655);
    d.outb(NE_DATAPORT, 0x77); // one word transfer: 0x0077
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    setup_dma(d, 0x4100, 8, E8390_RREAD);
    assert_eq!(d.inl(NE_DATAPORT), 0x4433_2211);
    assert_eq!(
        d.inb(NE_DATAPORT),
        0x55,
        "a byte read in word mode takes a whole word"
    );
    assert_eq!(d.inw(NE_DATAPORT), 0x0077);
    // DCR.BOS: big-endian words.
    d.outb(EN0_DCFG, 0x4b);
    setup_dma(d, 0x4100, 2, E8390_RREAD);
    assert_eq!(d.inw(NE_DATAPORT), 0x1122);
    // Word mode ignores address bit 0 (word-wide memory).
    d.outb(EN0_DCFG, 0x49);
    setup_dma(d, 0x4101, 2, E8390_RREAD);
    assert_eq!(d.inw(NE_DATAPORT), 0x2211);
}

#[test]
fn odd_count_in_word_mode_ends_with_rdc() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x49);
    setup_dma(d, 0x4000, 3, E8390_RREAD);
    d.inw(NE_DATAPORT);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, 0);
    d.inb(NE_DATAPORT);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
}

#[test]
fn zero_count_completes_at_once_and_idle_port_is_inert() {
    let mut b = pci();
    let d = &mut b.drv;
    setup_dma(d, 0x4000, 0, E8390_RREAD);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    d.outb(EN0_ISR, ENISR_RDC);
    // No transfer in progress: reads give 0, writes change nothing, no RDC.
    assert_eq!(d.inl(NE_DATAPORT), 0);
    d.outl(NE_DATAPORT, 0xdead_beef);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, 0);
    assert!(b.drv.dev.state().mem.iter().all(|&x| x == 0));
}

#[test]
fn abort_stops_a_transfer_without_rdc() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x48);
    setup_dma(d, 0x4000, 4, E8390_RWRITE);
    d.outb(NE_DATAPORT, 9);
    d.outb(0, E8390_NODMA | E8390_START);
    d.outb(NE_DATAPORT, 8);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, 0);
    let st = b.drv.dev.state();
    assert_eq!(&st.mem[..2], &[9, 0]);
}

#[test]
fn remote_address_wraps_from_pstop_to_pstart() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x48);
    d.outb(EN0_STARTPG, 0x50);
    d.outb(EN0_STOPPG, 0x60);
    setup_dma(d, 0x5ffe, 4, E8390_RWRITE);
    for v in [0xa1, 0xa2, 0xa3, 0xa4] {
        d.outb(NE_DATAPORT, v);
    }
    assert_eq!(
        (d.inb(0x09), d.inb(0x08)),
        (0x50, 0x02),
        "CRDA wrapped to PSTART"
    );
    setup_dma(d, 0x5ffe, 4, E8390_RREAD);
    let got: Vec<u8> = (0..4).map(|_| d.inb(NE_DATAPORT)).collect();
    assert_eq!(got, vec![0xa1, 0xa2, 0xa3, 0xa4]);
    let st = b.drv.dev.state();
    assert_eq!(&st.mem[0x1000..0x1002], &[0xa3, 0xa4], "page 0x50");
    assert_eq!(st.mem[0x2000], 0, "page 0x60 untouched");
}

#[test]
fn prom_is_read_only_and_absent_memory_reads_ff() {
    let mut b = pci();
    let d = &mut b.drv;
    d.outb(EN0_DCFG, 0x48);
    setup_dma(d, 0x0000, 4, E8390_RWRITE);
    d.outl(NE_DATAPORT, 0);
    setup_dma(d, 0x0000, 2, E8390_RREAD);
    assert_eq!([d.inb(NE_DATAPORT), d.inb(NE_DATAPORT)], [MAC[0], MAC[0]]);
    for addr in [0x0020u16, 0x3fff, 0x8000, 0xffff] {
        setup_dma(d, addr, 1, E8390_RREAD);
        assert_eq!(d.inb(NE_DATAPORT), 0xff, "{addr:#06x}");
    }
    // Writes to absent memory vanish: RAM unchanged.
    setup_dma(d, 0x8000, 2, E8390_RWRITE);
    d.outw(NE_DATAPORT, 0x1234);
    assert!(b.drv.dev.state().mem.iter().all(|&x| x == 0));
}

#[test]
fn send_packet_command_reads_one_packet_and_advances_bnry() {
    let mut b = running();
    b.drv.outb(EN0_DCFG, 0x59); // word mode + ARM
                                // Send Packet convention: BNRY points at the next packet to read.
    b.drv.outb(EN0_BOUNDARY, 0x4c);
    let f1 = frame(MAC, 300, 3);
    let f2 = frame(MAC, 70, 4);
    assert_eq!(b.rx(&f1), RxOutcome::Accepted);
    assert_eq!(b.rx(&f2), RxOutcome::Accepted);
    let d = &mut b.drv;
    d.outb(0, 0x18 | E8390_START);
    let total = 4 + 300 + 4;
    let data: Vec<u8> = (0..total / 4)
        .flat_map(|_| d.inl(NE_DATAPORT).to_le_bytes())
        .collect();
    assert_eq!(data[1], 0x4e, "header next page");
    assert_eq!(&data[4..304], &f1[..]);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    assert_eq!(d.inb(EN0_BOUNDARY), 0x4e, "BNRY moved to the next packet");
    assert_eq!(d.read_paged(E8390_PAGE2, 0x03), 0x4e, "RNPP");
    // Without DCR.ARM the command is not executed.
    d.outb(EN0_ISR, ENISR_RDC);
    d.outb(EN0_DCFG, 0x49);
    d.outb(0, 0x18 | E8390_START);
    assert_eq!(d.inb(EN0_BOUNDARY), 0x4e);
    assert_eq!(d.inb(EN0_ISR) & ENISR_RDC, 0);
}
