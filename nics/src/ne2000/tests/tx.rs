//! Transmit: TPSR/TBCR, TSR, ISR.PTX/TXE, loopback modes, CRC inhibit, FIFO.

use super::super::crc::fcs;
use super::*;

#[test]
fn transmit_sends_tbcr_bytes_from_tpsr() {
    let mut b = running();
    let f = frame(PEER, 200, 3);
    let tsr = b.drv.send(&f);
    assert_eq!(tsr, 0x03, "PTX, and bit 1 reads 1 on the RTL8029AS");
    assert_eq!(b.net.take_sent(), vec![f]);
    let clda = (b.drv.inb(0x02) as u16) << 8 | b.drv.inb(0x01) as u16;
    assert_eq!(clda, 0x4000 + 200);
    assert_eq!(b.drv.inb(0x05), 0, "NCR: no collisions");
    assert_eq!(b.drv.inb(0) & E8390_TRANS, 0, "TXP clear when done");
    b.assert_irq_rule();
    // ISA DP8390D: bit 1 reserved, reads 0.
    let mut i = isa();
    i.drv.init(MAC, true);
    assert_eq!(i.drv.send(&frame(PEER, 60, 1)), 0x01);
}

#[test]
fn short_frames_are_sent_unpadded() {
    // The DP8390 sends exactly TBCR bytes; padding is the driver's job.
    let mut b = running();
    b.drv.block_output(&[0xaa; 20], 0x40);
    b.drv.outb(EN0_TCNTLO, 20);
    b.drv.outb(EN0_TCNTHI, 0);
    b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
    assert_eq!(b.net.take_sent(), vec![vec![0xaa; 20]]);
}

#[test]
fn bad_lengths_abort_with_txe() {
    let mut b = running();
    for len in [0u16, 1519, 0xffff] {
        b.drv.outb(EN0_TCNTLO, len as u8);
        b.drv.outb(EN0_TCNTHI, (len >> 8) as u8);
        b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
        assert_eq!(b.drv.inb(EN0_TSR), 0x0a, "ABT (| RTL bit 1) for {len}");
        assert_eq!(b.drv.inb(EN0_ISR) & (ENISR_TX | ENISR_TX_ERR), ENISR_TX_ERR);
        b.drv.outb(EN0_ISR, 0xff);
    }
    assert_eq!(b.net.sent_count(), 0);
}

#[test]
fn transmit_needs_a_started_nic() {
    let mut b = pci();
    b.drv.init(MAC, false);
    b.drv.outb(EN0_TCNTLO, 60);
    b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_STOP);
    assert_eq!(b.net.sent_count(), 0);
    assert_eq!(b.drv.inb(EN0_ISR) & (ENISR_TX | ENISR_TX_ERR), 0);
}

#[test]
fn link_down_reports_carrier_sense_lost() {
    let mut b = running();
    b.dev().set_link(false);
    let tsr = b.drv.send(&frame(PEER, 60, 0));
    assert_eq!(
        tsr & 0x11,
        0x11,
        "PTX | CRS: the DP8390 does not abort on lost carrier"
    );
    assert_eq!(b.net.sent_count(), 0);
    b.dev().set_link(true);
    b.drv.send(&frame(PEER, 60, 0));
    assert_eq!(b.net.sent_count(), 1);
}

/// Puts the running NIC into TCR loopback mode `lb` (RCR accepts physical + broadcast).
fn loopback(lb: u8) -> Bench {
    let mut b = running();
    b.drv.outb(EN0_TXCR, lb << 1);
    b
}

#[test]
fn internal_loopback_delivers_to_own_receiver_only() {
    for lb in [1u8, 2] {
        let mut b = loopback(lb);
        let f = frame(MAC, 100, lb);
        let tsr = b.drv.send(&f);
        assert_eq!(tsr & 0x01, 0x01);
        assert_eq!(b.net.sent_count(), 0, "mode {lb} stays off the wire");
        assert_eq!(b.drv.inb(EN0_ISR) & ENISR_RX, ENISR_RX);
        // Network frames are not received in loopback.
        assert_eq!(b.rx(&frame(MAC, 60, 0)), RxOutcome::Filtered);
        let got = b.drv.receive();
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].1[..100], &f[..]);
        assert_eq!(&got[0].1[100..], &fcs(&f));
    }
}

#[test]
fn external_loopback_sends_and_receives() {
    let mut b = loopback(3);
    let f = frame(MAC, 80, 4);
    b.drv.send(&f);
    assert_eq!(b.net.take_sent(), vec![f.clone()]);
    assert_eq!(b.drv.receive().len(), 1);
}

#[test]
fn loopback_respects_address_filter_and_runts() {
    let mut b = loopback(1);
    // Not for us: transmitted, not received.
    b.drv.send(&frame(PEER, 60, 0));
    assert_eq!(b.drv.inb(EN0_ISR) & ENISR_RX, 0);
    // A 30-byte runt is rejected unless RCR.AR.
    let runt = frame(MAC, 30, 1);
    b.drv.block_output(&runt, 0x40);
    b.drv.outb(EN0_TCNTLO, 30);
    b.drv.outb(EN0_TCNTHI, 0);
    b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
    assert_eq!(b.drv.inb(EN0_ISR) & ENISR_RX, 0, "runt rejected");
    b.drv.outb(EN0_RXCR, E8390_RXCONFIG | 0x02);
    b.drv.outb(0, E8390_NODMA | E8390_TRANS | E8390_START);
    assert_eq!(
        b.drv.inb(EN0_ISR) & ENISR_RX,
        ENISR_RX,
        "runt accepted with AR"
    );
    let got = b.drv.receive();
    assert_eq!(&got[0].1[..30], &runt[..]);
}

#[test]
fn fifo_holds_the_last_eight_loopback_bytes() {
    let mut b = loopback(1);
    let f = frame(MAC, 64, 6);
    b.drv.send(&f);
    let sum = fcs(&f);
    let want: Vec<u8> = f[60..].iter().chain(sum.iter()).copied().collect();
    let got: Vec<u8> = (0..8).map(|_| b.drv.inb(0x06)).collect();
    assert_eq!(got, want);
    assert_eq!(b.drv.inb(0x06), want[0], "the FIFO pointer wraps");
}

#[test]
fn crc_inhibit_loopback_checks_the_guest_fcs() {
    let mut b = loopback(1);
    b.drv.outb(EN0_TXCR, 0x03); // internal loopback + inhibit CRC
    let f = frame(MAC, 60, 8);
    let mut good = f.clone();
    good.extend_from_slice(&fcs(&f));
    b.drv.send(&good);
    assert_eq!(b.drv.inb(EN0_RSR), 0x01, "good guest FCS: PRX");
    b.drv.receive();
    let mut bad = good.clone();
    bad[63] ^= 0xff;
    b.drv.send(&bad);
    assert_eq!(b.drv.inb(EN0_RSR) & 0x03, 0x02, "RSR.CRC");
    assert_eq!(b.drv.inb(EN0_ISR) & ENISR_RX_ERR, ENISR_RX_ERR);
    assert_eq!(b.drv.inb(EN0_COUNTER1), 1, "CRC tally");
    // With SEP the errored packet is stored with its status.
    b.drv.outb(EN0_RXCR, E8390_RXCONFIG | 0x01);
    b.drv.send(&bad);
    let got = b.drv.receive();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0 & 0x03, 0x02);
}
