//! The PHY behind MDIC: identity, errors for absent PHYs, MDAC, auto-negotiation on the
//! injected clock, link changes from the backend, and Linux's `ethtool -t` loopback test.

mod e1000_support;

use e1000_support::*;
use vm_nic_devices::e1000::Variant;
use vm_nic_devices::NicDevice;

const LSC: u32 = 1 << 2;
const MDAC: u32 = 1 << 9;

#[test]
fn phy_identity_per_variant() {
    for (v, id2) in [
        (Variant::E82540EM, 0x0c20),
        (Variant::E82544GC, 0x0c30),
        (Variant::E82545EM, 0x0c20),
    ] {
        let mut r = Rig::new(v);
        assert_eq!(r.phy_read(2), 0x0141);
        assert_eq!(r.phy_read(3), id2, "{v:?}");
    }
}

#[test]
fn other_phy_addresses_set_mdic_error() {
    let mut r = Rig::new(Variant::E82540EM);
    let v = r.mdic(2 << 26 | 2 << 21 | 2 << 16);
    assert_ne!(v & 1 << 30, 0, "E");
    assert_ne!(v & 1 << 28, 0, "R");
    let v = r.mdic(2 << 26 | 1 << 21 | 2 << 16);
    assert_eq!(v & 1 << 30, 0);
}

#[test]
fn mdic_interrupt_raises_mdac() {
    let mut r = Rig::up();
    r.r(ICR);
    r.w(IMS, MDAC);
    r.mdic(2 << 26 | 1 << 21 | 1 << 29);
    assert!(r.irq.level());
    assert_eq!(r.r(ICR) & MDAC, MDAC);
    assert!(!r.irq.level());
    r.mdic(2 << 26 | 1 << 21);
    assert_eq!(r.r(ICR) & MDAC, 0, "no MDAC without MDIC.I");
}

#[test]
fn autonegotiation_completes_after_the_delay_and_raises_lsc() {
    let mut r = Rig::new(Variant::E82540EM);
    r.w(IMS, LSC);
    assert_eq!(r.phy_read(1) & 0x24, 0, "link down, AN incomplete");
    let d = r.dev.next_deadline().expect("auto-negotiation timer");
    assert_eq!(d, 500_000_000);
    r.advance_ms(499);
    assert_eq!(r.r(STATUS) & 2, 0);
    assert!(!r.irq.level());
    r.advance_ms(1);
    assert_ne!(r.r(STATUS) & 2, 0);
    assert_eq!(r.phy_read(1) & 0x24, 0x24);
    assert_eq!(r.phy_read(17) & 0xec00, 0xac00, "1000/full resolved, link");
    assert!(r.irq.level(), "LSC");
    assert_eq!(r.r(ICR) & LSC, LSC);
    // Restarting auto-negotiation drops the link for another delay.
    r.phy_write(0, 0x1340);
    assert_eq!(r.r(STATUS) & 2, 0);
    assert_eq!(r.r(ICR) & LSC, LSC);
    r.advance_ms(500);
    assert_ne!(r.r(STATUS) & 2, 0);
}

#[test]
fn backend_link_changes_raise_lsc() {
    let mut r = Rig::up();
    r.r(ICR);
    r.w(IMS, LSC);
    r.dev.set_link(false);
    assert_eq!(r.r(STATUS) & 2, 0);
    assert_eq!(r.phy_read(1) & 4, 0);
    assert_eq!(r.r(ICR) & LSC, LSC);
    r.dev.set_link(true);
    r.advance_ms(500);
    assert_ne!(r.r(STATUS) & 2, 0);
    assert_eq!(r.r(ICR) & LSC, LSC);
}

#[test]
fn phy_reset_through_ctrl() {
    let mut r = Rig::up();
    r.phy_write(16, 0x0808);
    let c = r.r(CTRL);
    r.w(CTRL, c | 1 << 31);
    r.w(CTRL, c);
    assert_eq!(r.phy_read(16), 0x0068, "PSCR back to its default");
    assert_eq!(r.r(STATUS) & 2, 0);
    r.advance_ms(500);
    assert_ne!(r.r(STATUS) & 2, 0);
}

/// Linux's e1000_loopback_test for the 82540/82545 (integrated PHY loopback) followed
/// by e1000_run_loopback_test: 10 rounds of 64 1024-byte frames; RDT is never advanced.
fn linux_loopback(r: &mut Rig) -> Result<(), u32> {
    // e1000_setup_desc_rings.
    let count = 256u64;
    r.w(TDBAL, TX_RING as u32);
    r.w(TDBAH, 0);
    r.w(TDLEN, 256 * 16);
    r.w(TDH, 0);
    r.w(TDT, 0);
    r.w(TCTL, TCTL_PSP | TCTL_EN | 0x0f << 4 | 0x40 << 12);
    for i in 0..count {
        // EOP | IFCS | RPS, 1024 bytes.
        r.tx_desc(i, TX_BUF + i * 1024, 1024 | 0x13 << 24, 0);
    }
    // RX: a 4 KiB-aligned ring well away from the TX ring.
    let rx_ring = 0x8000u64;
    for i in 0..count {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&(RX_BUF + i * 2048).to_le_bytes());
        r.write_mem(rx_ring + i * 16, &d);
    }
    let rctl = r.r(RCTL);
    r.w(RCTL, rctl & !RCTL_EN);
    r.w(RDBAL, rx_ring as u32);
    r.w(RDBAH, 0);
    r.w(RDLEN, 256 * 16);
    r.w(RDH, 0);
    r.w(RDT, 0);
    r.w(RCTL, RCTL_EN | RCTL_BAM);
    // e1000_integrated_phy_loopback.
    r.phy_write(16, 0x0808);
    r.phy_write(0, 0x9140);
    r.phy_write(0, 0x8140);
    r.phy_write(0, 0x4140);
    let mut ctrl = r.r(CTRL) & !(3 << 8);
    ctrl |= 1 << 11 | 1 << 12 | 2 << 8 | 1 | 1 << 7;
    r.w(CTRL, ctrl);
    r.phy_write(29, 0x001f);
    r.phy_write(30, 0x8ffc);
    r.phy_write(29, 0x001a);
    r.phy_write(30, 0x8ff0);
    // e1000_run_loopback_test.
    r.w(RDT, count as u32 - 1);
    let (mut k, mut l) = (0u64, 0u64);
    for _ in 0..=((count / 64) * 2 + 1) {
        for _ in 0..64 {
            let mut f = vec![0xffu8; 1024];
            f[512..512 + 511].fill(0xaa);
            f[512 + 10] = 0xbe;
            f[512 + 12] = 0xaf;
            r.write_mem(TX_BUF + k * 1024, &f);
            k = (k + 1) % count;
        }
        r.w(TDT, k as u32);
        r.advance_ms(200);
        let mut good = 0;
        for _ in 0..count {
            let d = r.read_mem(RX_BUF + l * 2048, 1024);
            if d[3] == 0xff && d[512 + 10] == 0xbe && d[512 + 12] == 0xaf {
                good += 1;
            }
            l = (l + 1) % count;
            if good == 64 {
                break;
            }
        }
        if good != 64 {
            return Err(13);
        }
    }
    // e1000_loopback_cleanup.
    let rctl = r.r(RCTL);
    r.w(RCTL, rctl & !(3 << 6));
    let bmcr = r.phy_read(0);
    r.phy_write(0, bmcr & !(1 << 14));
    Ok(())
}

#[test]
fn linux_ethtool_loopback_test_passes_on_every_variant() {
    for v in [Variant::E82540EM, Variant::E82544GC, Variant::E82545EM] {
        let mut r = Rig::new(v);
        r.wait_link();
        assert_eq!(linux_loopback(&mut r), Ok(()), "{v:?}");
        assert_eq!(
            r.net.sent_count(),
            0,
            "loopback frames never reach the wire"
        );
    }
}

#[test]
fn mac_loopback_delivers_to_our_own_receiver() {
    let mut r = Rig::up();
    r.setup_rx(8, RCTL_BAM | 1 << 6);
    r.setup_tx(8);
    let f = eth([0xff; 6], 0x0800, &[7; 100]);
    r.tx_legacy(0, &f, 0x0b);
    r.w(TDT, 1);
    assert_eq!(r.net.sent_count(), 0);
    let (len, st, _, _) = r.rx_status(0);
    assert_eq!(len as usize, f.len() + 4, "frame + FCS");
    assert_eq!(st & 3, 3);
    assert_eq!(r.rx_data(0, f.len()), f);
}

#[test]
fn phy_power_down_as_linux_does_on_ifdown() {
    // e1000_power_down_phy / e1000_power_up_phy: BMCR.PDOWN set, then cleared.
    let mut r = Rig::up();
    r.r(ICR);
    r.w(IMS, LSC);
    let bmcr = r.phy_read(0);
    r.phy_write(0, bmcr | 1 << 11);
    assert_eq!(r.r(STATUS) & 2, 0, "link down while powered down");
    assert_eq!(r.r(ICR) & LSC, LSC);
    r.advance_ms(1000);
    assert_eq!(r.r(STATUS) & 2, 0);
    r.phy_write(0, bmcr);
    r.advance_ms(500);
    assert_ne!(r.r(STATUS) & 2, 0, "auto-negotiated again after power-up");
}
