//! The register sequences of Linux 8139too (revision 0x10) and 8139cp (revision 0x20),
//! replayed against the model: probe, open, and thousands of frames of varying size in
//! both directions, read back with the drivers' own ring arithmetic.

mod rtl8139_support;

use rtl8139_support::*;
use vm_nic_devices::RxOutcome;

/// 8139too: RX_BUF_IDX 2 (32 KiB ring, WRAP set), buffer padded for the spill.
const RX_BUF_LEN: u32 = 32 * 1024;
const RING: u64 = 0x10000;
const TX_BUFS: u64 = 0x30000;

fn probe_8139too(r: &mut Rig) -> [u8; 6] {
    r.w8(0x5B, b'R');
    let version = r.r32(0x40) & 0x7CC0_0000;
    assert_eq!(version, 0x7400_0000, "RTL-8139C in rtl_chip_info");
    let cfg1 = r.r8(0x52);
    if cfg1 & 0x01 == 0 {
        r.w8(0x50, 0xC0);
        r.w8(0x52, cfg1);
        r.w8(0x50, 0x00);
    }
    let cfg4 = r.r8(0x5A);
    if cfg4 & 0x04 != 0 {
        r.w8(0x50, 0xC0);
        r.w8(0x5A, cfg4 & !0x04);
        r.w8(0x50, 0x00);
    }
    r.w8(0x37, 0x10);
    assert_eq!(r.r8(0x37) & 0x10, 0, "reset completes");
    let addr_len = if r.read_eeprom(0, 8) == 0x8129 { 8 } else { 6 };
    let mut mac = [0u8; 6];
    for i in 0..3 {
        let w = r.read_eeprom(i as u32 + 7, addr_len);
        mac[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
    }
    mac
}

fn open_8139too(r: &mut Rig, mac: [u8; 6]) {
    r.w8(0x37, 0x10);
    r.w8(0x50, 0xC0);
    r.w32(0x00, u32::from_le_bytes(mac[..4].try_into().unwrap()));
    r.w32(
        0x04,
        u16::from_le_bytes(mac[4..].try_into().unwrap()) as u32,
    );
    r.w32(0x30, RING as u32);
    r.w8(0x37, 0x0C);
    let rx_config = (1 << 12) | (1 << 7) | (7 << 13) | (7 << 8) | 0x0A;
    r.w32(0x44, rx_config);
    r.w32(0x40, (3 << 24) | (6 << 8));
    let bmsr = r.r16(0x64);
    assert_ne!(bmsr & 0x04, 0, "mii_check_media sees the link");
    let v = r.r8(0x59) & !0x20;
    r.w8(0x59, v);
    r.w8(0x50, 0x00);
    for i in 0..4u32 {
        r.w32(0x20 + 4 * i as u64, TX_BUFS as u32 + 0x800 * i);
    }
    r.w32(0x4C, 0);
    r.w32(0x08, 0);
    r.w32(0x0C, 0);
    let mi = r.r16(0x5C);
    r.w16(0x5C, mi & 0xF000);
    r.w16(0x3C, 0xC07F);
}

/// 8139too's rtl8139_rx(): returns the frames read, updating `cur_rx` and CAPR.
fn rx_8139too(r: &mut Rig, cur_rx: &mut u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while r.r8(0x37) & 0x01 == 0 {
        let off = *cur_rx % RX_BUF_LEN;
        let status = r.get32(RING + off as u64);
        let rx_size = status >> 16;
        assert!(
            (8..=1792 + 4).contains(&rx_size) && status & 1 != 0,
            "{status:#x}"
        );
        out.push(r.get(RING + off as u64 + 4, rx_size as usize - 4));
        *cur_rx = (*cur_rx + rx_size + 4 + 3) & !3;
        r.w16(0x38, (*cur_rx as u16).wrapping_sub(16));
        let isr = r.r16(0x3E) & 0x51;
        if isr != 0 {
            r.w16(0x3E, 0x51);
        }
        assert!(out.len() < 10_000);
    }
    out
}

#[test]
fn linux_8139too_probe_open_and_traffic() {
    let mut r = Rig::c();
    let mac = probe_8139too(&mut r);
    assert_eq!(mac, MAC);
    open_8139too(&mut r, mac);
    let mut cur_rx = 0u32;
    let mut seed = 12345u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 8) as usize
    };
    let mut pending = Vec::new();
    let mut got = Vec::new();
    for n in 0..3000 {
        let f = frame(MAC, 60 + next() % 1455);
        match r.dev.receive(&f) {
            RxOutcome::Accepted => pending.push(f),
            RxOutcome::NoBuffer => {
                got.extend(rx_8139too(&mut r, &mut cur_rx));
                assert_eq!(
                    r.dev.receive(&f),
                    RxOutcome::Accepted,
                    "frame {n} after drain"
                );
                pending.push(f);
            }
            other => panic!("{other:?}"),
        }
        r.assert_intx_rule();
        if next() % 4 == 0 {
            got.extend(rx_8139too(&mut r, &mut cur_rx));
        }
        // Transmit through the four descriptors as rtl8139_start_xmit does.
        let entry = (n % 4) as u64;
        let t = frame([0xFF; 6], 60 + next() % 1400);
        r.put(TX_BUFS + 0x800 * entry, &t);
        r.w32(0x10 + 4 * entry, (0x8_0000 & 0x3F_0000) | t.len() as u32);
        let st = r.r32(0x10 + 4 * entry);
        assert_ne!(st & 0x8000, 0, "TxStatOK");
        assert_eq!(r.net.take_sent(), vec![t]);
    }
    got.extend(rx_8139too(&mut r, &mut cur_rx));
    assert_eq!(got.len(), pending.len());
    assert!(got == pending, "every frame read back intact, in order");
    assert_eq!(r.r32(0x4C), 0, "nothing missed");
}

const CP_RX: u64 = 0x1000;
const CP_TX: u64 = 0x1400;
const CP_RX_BUFS: u64 = 0x2_0000;
const CP_RING: u64 = 64;

fn open_8139cp(r: &mut Rig) {
    let v = !r.r16(0x3E);
    r.w16(0x3E, v);
    r.w16(0x3C, 0);
    r.w8(0x37, 0);
    r.w16(0xE0, 0);
    let addr_len = if r.read_eeprom(0, 8) == 0x8129 { 8 } else { 6 };
    assert_eq!(addr_len, 6);
    for i in 0..CP_RING {
        let eor = if i == CP_RING - 1 { EOR } else { 0 };
        put_desc(r, CP_RX, i, OWN | eor | 1536, 0, CP_RX_BUFS + i * 0x800);
        put_desc(r, CP_TX, i, if i == CP_RING - 1 { EOR } else { 0 }, 0, 0);
    }
    r.w8(0x37, 0x10);
    r.w8(0x50, 0xC0);
    r.w32(0x00, u32::from_le_bytes(MAC[..4].try_into().unwrap()));
    r.w32(
        0x04,
        u16::from_le_bytes(MAC[4..].try_into().unwrap()) as u32,
    );
    r.w16(0xE0, 0x0020 | 0x0010 | 0x0008 | 0x0003);
    r.w32(0x28, 0);
    r.w32(0x2C, 0);
    r.w32(0xE4, CP_RX as u32);
    r.w32(0xE8, 0);
    r.w32(0x20, CP_TX as u32);
    r.w32(0x24, 0);
    r.w8(0x37, 0x0C);
    r.w8(0xEC, 0x06);
    r.w32(0x44, (5 << 13) | (4 << 8) | 0x0A);
    r.w32(0x08, 0);
    r.w32(0x0C, 0);
    r.w32(0x40, (3 << 24) | (6 << 8));
    let v = r.r8(0x52) | 0x21;
    r.w8(0x52, v);
    r.w8(0x59, 0x40);
    let v = r.r8(0xD8) & 0x01;
    r.w8(0xD8, v);
    r.w16(0x5C, 0);
    r.w8(0x50, 0);
    r.w16(
        0x3C,
        0x0001 | 0x0002 | 0x0010 | 0x0040 | 0x8000 | 0x0020 | 0x0004 | 0x0008 | 0x0080,
    );
}

#[test]
fn linux_8139cp_open_and_traffic() {
    let mut r = Rig::cplus();
    open_8139cp(&mut r);
    let mut rx_tail = 0u64;
    let mut tx_head = 0u64;
    let mut seed = 777u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 8) as usize
    };
    for n in 0..2000 {
        let f = tcp_frame(next() % 1400);
        assert_eq!(r.dev.receive(&f), RxOutcome::Accepted, "frame {n}");
        // cp_rx_poll
        r.w16(0x3E, 0x0001 | 0x0002 | 0x0010 | 0x0040);
        let status = r.get32(CP_RX + 16 * rx_tail);
        assert_eq!(status & (OWN | FS | LS), FS | LS);
        let len = (status & 0x1FFF) as usize - 4;
        assert_eq!(
            len,
            f.len().max(60),
            "short frames arrive padded to 60 bytes"
        );
        assert_eq!(r.get(CP_RX_BUFS + rx_tail * 0x800, f.len()), f);
        assert_eq!(
            (status >> 16) & 3,
            1,
            "TCP, checksum OK: CHECKSUM_UNNECESSARY"
        );
        assert_eq!(status & (1 << 13), 0);
        let eor = if rx_tail == CP_RING - 1 { EOR } else { 0 };
        put_desc(
            &r,
            CP_RX,
            rx_tail,
            OWN | eor | 1536,
            0,
            CP_RX_BUFS + rx_tail * 0x800,
        );
        rx_tail = (rx_tail + 1) % CP_RING;
        // cp_start_xmit, two fragments, first descriptor handed over last.
        let t = frame([0xFF; 6], 100 + next() % 1300);
        let split = 14 + next() % 50;
        r.put(0x6_0000, &t);
        let second = (tx_head + 1) % CP_RING;
        let eor2 = if second == CP_RING - 1 { EOR } else { 0 };
        put_desc(
            &r,
            CP_TX,
            second,
            OWN | LS | eor2 | (t.len() - split) as u32,
            0,
            0x6_0000 + split as u64,
        );
        let eor1 = if tx_head == CP_RING - 1 { EOR } else { 0 };
        put_desc(
            &r,
            CP_TX,
            tx_head,
            OWN | FS | eor1 | split as u32,
            0,
            0x6_0000,
        );
        r.w8(0xD9, 0x40);
        assert_eq!(r.net.take_sent(), vec![t]);
        // cp_tx
        for d in [tx_head, second] {
            let st = r.get32(CP_TX + 16 * d);
            assert_eq!(st & (OWN | (1 << 23) | (1 << 25)), 0);
        }
        tx_head = (tx_head + 2) % CP_RING;
        let isr = r.r16(0x3E);
        r.w16(0x3E, isr & !(0x0001 | 0x0002 | 0x0010 | 0x0040));
        r.assert_intx_rule();
    }
    // ethtool -S: tally dump.
    r.w32(0x14, 0);
    r.w32(0x10, 0x7_0000 | 0x08);
    assert_eq!(r.r32(0x10) & 0x08, 0);
    assert_eq!(
        u64::from_le_bytes(r.get(0x7_0000, 8).try_into().unwrap()),
        2000
    );
    // ethtool -e: 64 words through 6-bit addresses.
    let words: Vec<u16> = (0..64).map(|w| r.read_eeprom(w, 6)).collect();
    assert_eq!(words[0], 0x8129);
    assert_eq!(words[2], 0x8139);
}

/// An event loop as `vm-nic remote` runs one: after every register access it offers
/// frames while `can_receive()` says yes, keeping one answered `NoBuffer` for later.
struct EventLoop {
    r: Rig,
    held: Option<Vec<u8>>,
    sent: u32,
    total: u32,
}

impl EventLoop {
    /// Frame `seq` of the stream: full-size mostly, some shorter, numbered.
    fn stream_frame(seq: u32) -> Vec<u8> {
        let len = if seq % 7 == 3 {
            60 + (seq as usize * 37) % 1400
        } else {
            1514
        };
        let mut f = frame(MAC, len);
        f[14..18].copy_from_slice(&seq.to_le_bytes());
        f
    }

    fn pump(&mut self) {
        for _ in 0..16 {
            if !self.r.dev.can_receive() {
                return;
            }
            let f = match self.held.take() {
                Some(f) => f,
                None if self.sent < self.total => {
                    self.sent += 1;
                    Self::stream_frame(self.sent - 1)
                }
                None => return,
            };
            match self.r.dev.receive(&f) {
                RxOutcome::Accepted => {}
                RxOutcome::NoBuffer => {
                    self.held = Some(f);
                    return;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    fn r8(&mut self, off: u64) -> u8 {
        let v = self.r.r8(off);
        self.pump();
        v
    }
    fn r16(&mut self, off: u64) -> u16 {
        let v = self.r.r16(off);
        self.pump();
        v
    }
    fn w16(&mut self, off: u64, v: u16) {
        self.r.w16(off, v);
        self.pump();
    }
}

const RX_ACK_BITS: u16 = 0x0051; // RxFIFOOver | RxOverflow | RxOK
const INTR_MASK: u16 = 0xC07F;

/// 8139too's rtl8139_isr_ack().
fn isr_ack(ev: &mut EventLoop) {
    let status = ev.r16(0x3E) & RX_ACK_BITS;
    if status != 0 {
        ev.w16(0x3E, RX_ACK_BITS);
    }
}

/// 8139too's rtl8139_rx() with a NAPI budget; checks every frame against the stream.
fn napi_rx(ev: &mut EventLoop, cur_rx: &mut u32, want: &mut u32, budget: u32) -> u32 {
    let mut received = 0;
    while received < budget && ev.r8(0x37) & 0x01 == 0 {
        let off = *cur_rx % RX_BUF_LEN;
        let status = ev.r.get32(RING + off as u64);
        let rx_size = status >> 16;
        assert!(
            (8..=1792 + 4).contains(&rx_size) && status & 1 != 0,
            "frame {want}: rx status {status:#x} at {off:#x}"
        );
        let data = ev.r.get(RING + off as u64 + 4, rx_size as usize - 4);
        let expect = EventLoop::stream_frame(*want);
        assert!(
            data == expect.as_slice(),
            "frame {want} intact at ring offset {off:#x}"
        );
        *want += 1;
        received += 1;
        *cur_rx = (*cur_rx + rx_size + 4 + 3) & !3;
        ev.w16(0x38, (*cur_rx as u16).wrapping_sub(16));
        isr_ack(ev);
    }
    if received == 0 {
        isr_ack(ev);
    }
    received
}

/// A bulk download to an 8139too guest the way Linux reads it: the interrupt handler
/// (called on every timer tick, as with `irqpoll`) schedules NAPI on RxAckBits, the poll
/// only reads the ring when ISR shows RxAckBits, at most 64 frames per poll, acking
/// ISR after each frame. The host keeps the ring full. A frame waiting for ring space
/// must leave the driver a reason to come back (ISR.RXOVW): without it the driver
/// stops polling with the ring full and the host never gets room again.
#[test]
fn linux_8139too_napi_bulk_download_never_wedges() {
    let mut r = Rig::c();
    let mac = probe_8139too(&mut r);
    open_8139too(&mut r, mac);
    let mut ev = EventLoop {
        r,
        held: None,
        sent: 0,
        total: 20_000,
    };
    ev.pump();
    let (mut cur_rx, mut want, mut napi) = (0u32, 0u32, false);
    let mut seed = 99u32;
    let mut idle_ticks = 0;
    for _tick in 0..200_000 {
        if want == ev.total {
            break;
        }
        let before = want;
        // rtl8139_interrupt()
        let status = ev.r16(0x3E);
        if status & INTR_MASK != 0 {
            if status & RX_ACK_BITS != 0 && !napi {
                napi = true;
                ev.w16(0x3C, INTR_MASK & !RX_ACK_BITS);
            }
            let ackstat = status & !(RX_ACK_BITS | 0x0008);
            if ackstat != 0 {
                ev.w16(0x3E, ackstat);
            }
        }
        // rtl8139_poll(), sometimes deferred a tick (softirq pace varies).
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        if napi && (seed >> 16) % 5 != 0 {
            let budget = 64;
            let mut done = 0;
            if ev.r16(0x3E) & RX_ACK_BITS != 0 {
                done = napi_rx(&mut ev, &mut cur_rx, &mut want, budget);
            }
            if done < budget {
                napi = false;
                ev.w16(0x3C, INTR_MASK);
            }
        }
        idle_ticks = if want == before { idle_ticks + 1 } else { 0 };
        assert!(
            idle_ticks < 100,
            "ring wedged after {want} of {} frames: ISR {:#06x}, ring empty {}, frame held {}",
            ev.total,
            ev.r.r16(0x3E),
            ev.r.r8(0x37) & 1 != 0,
            ev.held.is_some()
        );
    }
    assert_eq!(want, ev.total, "every frame read back, in order");
    assert_eq!(ev.r.r32(0x4C), 0, "none missed");
}
