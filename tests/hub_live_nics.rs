//! The three-NIC example of docs/qemu-options.md with the real models, driven as guest
//! drivers would (register sequences from the datasheets): the e1000 on vlan 0 (in
//! pcnet's slot) cannot reach the RTL8139 and NE2000 on vlan 1, which reach each other.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic::backends::MacAddr;
use vm_nic::devices::{IrqRecorder, ManualClock, NicDevice};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::NetConfig;
use vm_nic::runner::Runner;

type Mem = GuestMemoryMmap;
type Dev = dyn NicDevice<Mem>;

const LINE: &str =
    "-net nic,model=e1000 -net nic,model=rtl8139,vlan=1, -net nic,model=ne2k_pci,vlan=1";

fn w(d: &mut Dev, bar: u8, off: u64, size: u8, v: u32) {
    d.bar_write(bar, off, size, v)
}

fn r(d: &mut Dev, bar: u8, off: u64, size: u8) -> u32 {
    d.bar_read(bar, off, size)
}

fn pci_enable(d: &mut Dev) {
    // I/O space, memory space, bus master.
    d.config_write(0x04, 2, 0x0007);
}

/// A minimal guest driver for one NIC; each owns a 64 KiB window of guest RAM at `base`.
enum Driver {
    E1000 {
        base: u64,
        tx_tail: u32,
        rx_next: u32,
    },
    Rtl8139 {
        base: u64,
        tx_slot: u64,
        rx_off: u64,
    },
    Ne2k,
}

const E1000_RING: u32 = 8;

impl Driver {
    fn init(model: &str, d: &mut Dev, mem: &Mem, base: u64, mac: MacAddr) -> Driver {
        pci_enable(d);
        match model {
            "e1000" => {
                // SDM 14.4/14.5: receive and transmit initialization, legacy descriptors.
                let ctrl = r(d, 0, 0x0, 4);
                w(d, 0, 0x0, 4, ctrl | 1 << 6); // CTRL.SLU
                let m = mac.0;
                w(
                    d,
                    0,
                    0x5400,
                    4,
                    u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
                );
                w(
                    d,
                    0,
                    0x5404,
                    4,
                    u32::from(m[4]) | u32::from(m[5]) << 8 | 1 << 31,
                );
                for i in 0..u64::from(E1000_RING) {
                    let desc = base + i * 16;
                    mem.write_obj(base + 0x1000 + i * 0x800, GuestAddress(desc))
                        .unwrap();
                    mem.write_obj(0u64, GuestAddress(desc + 8)).unwrap();
                }
                w(d, 0, 0x2800, 4, base as u32); // RDBAL
                w(d, 0, 0x2804, 4, 0);
                w(d, 0, 0x2808, 4, E1000_RING * 16); // RDLEN
                w(d, 0, 0x2810, 4, 0); // RDH
                w(d, 0, 0x2818, 4, E1000_RING - 1); // RDT
                w(d, 0, 0x100, 4, 1 << 1 | 1 << 15 | 1 << 26); // RCTL: EN | BAM | SECRC
                w(d, 0, 0x3800, 4, (base + 0x400) as u32); // TDBAL
                w(d, 0, 0x3804, 4, 0);
                w(d, 0, 0x3808, 4, E1000_RING * 16); // TDLEN
                w(d, 0, 0x3810, 4, 0);
                w(d, 0, 0x3818, 4, 0);
                w(d, 0, 0x400, 4, 1 << 1 | 1 << 3); // TCTL: EN | PSP
                Driver::E1000 {
                    base,
                    tx_tail: 0,
                    rx_next: 0,
                }
            }
            "rtl8139" => {
                // RTL8139C datasheet: reset, receive buffer, RCR, CR.RE|TE.
                w(d, 0, 0x37, 1, 0x10);
                w(d, 0, 0x30, 4, base as u32); // RBSTART: 8 KiB ring (+ WRAP slack)
                w(d, 0, 0x37, 1, 0x0c); // CR: RE | TE
                w(d, 0, 0x44, 4, 0x80 | 0x08 | 0x04 | 0x02); // RCR: WRAP | AB | AM | APM
                w(d, 0, 0x38, 2, 0xfff0); // CAPR = -16: nothing read yet
                Driver::Rtl8139 {
                    base,
                    tx_slot: 0,
                    rx_off: 0,
                }
            }
            "ne2k_pci" => {
                // DP8390D: initialization sequence (section 11.0).
                let v = r(d, 0, 0x1f, 1);
                w(d, 0, 0x1f, 1, v); // reset port
                w(d, 0, 0x00, 1, 0x21); // CR: page 0, STP, abort DMA
                w(d, 0, 0x0e, 1, 0x49); // DCR: word transfers, normal, FIFO 8 bytes
                w(d, 0, 0x0a, 1, 0);
                w(d, 0, 0x0b, 1, 0);
                w(d, 0, 0x0c, 1, 0x04); // RCR: accept broadcast
                w(d, 0, 0x0d, 1, 0x02); // TCR: internal loopback while configuring
                w(d, 0, 0x01, 1, 0x46); // PSTART
                w(d, 0, 0x02, 1, 0x80); // PSTOP
                w(d, 0, 0x03, 1, 0x46); // BNRY
                w(d, 0, 0x07, 1, 0xff); // ISR: clear
                w(d, 0, 0x0f, 1, 0x00); // IMR
                w(d, 0, 0x00, 1, 0x61); // page 1
                for (i, b) in mac.0.iter().enumerate() {
                    w(d, 0, 1 + i as u64, 1, u32::from(*b)); // PAR0-5
                }
                w(d, 0, 0x07, 1, 0x47); // CURR
                for i in 0..8 {
                    w(d, 0, 0x08 + i, 1, 0xff); // MAR0-7
                }
                w(d, 0, 0x00, 1, 0x22); // page 0, STA
                w(d, 0, 0x0d, 1, 0x00); // TCR: normal
                Driver::Ne2k
            }
            other => panic!("no driver for {other}"),
        }
    }

    fn send(&mut self, d: &mut Dev, mem: &Mem, frame: &[u8]) {
        match self {
            Driver::E1000 { base, tx_tail, .. } => {
                let buf = *base + 0x5000;
                mem.write_slice(frame, GuestAddress(buf)).unwrap();
                let desc = *base + 0x400 + u64::from(*tx_tail) * 16;
                mem.write_obj(buf, GuestAddress(desc)).unwrap();
                // length, CSO, CMD = EOP | IFCS | RS, status, CSS, special
                let cmd = u64::from(frame.len() as u16) | (0x01 | 0x02 | 0x08) << 24;
                mem.write_obj(cmd, GuestAddress(desc + 8)).unwrap();
                *tx_tail = (*tx_tail + 1) % E1000_RING;
                w(d, 0, 0x3818, 4, *tx_tail);
            }
            Driver::Rtl8139 { base, tx_slot, .. } => {
                let buf = *base + 0x4000 + *tx_slot * 0x800;
                mem.write_slice(frame, GuestAddress(buf)).unwrap();
                w(d, 0, 0x20 + *tx_slot * 4, 4, buf as u32); // TSAD n
                w(d, 0, 0x10 + *tx_slot * 4, 4, frame.len() as u32); // TSD n, OWN = 0
                *tx_slot = (*tx_slot + 1) % 4;
            }
            Driver::Ne2k => {
                let mut f = frame.to_vec();
                f.resize(f.len().max(60).next_multiple_of(2), 0);
                let len = f.len() as u32;
                w(d, 0, 0x07, 1, 0x40); // ISR: clear RDC
                w(d, 0, 0x0a, 1, len & 0xff);
                w(d, 0, 0x0b, 1, len >> 8);
                w(d, 0, 0x08, 1, 0x00); // RSAR: page 0x40
                w(d, 0, 0x09, 1, 0x40);
                w(d, 0, 0x00, 1, 0x12); // remote write, STA
                for pair in f.chunks(2) {
                    w(
                        d,
                        0,
                        0x10,
                        2,
                        u32::from(u16::from_le_bytes([pair[0], pair[1]])),
                    );
                }
                w(d, 0, 0x04, 1, 0x40); // TPSR
                w(d, 0, 0x05, 1, len & 0xff);
                w(d, 0, 0x06, 1, len >> 8);
                w(d, 0, 0x00, 1, 0x26); // TXP, STA, abort DMA
            }
        }
    }

    /// Every frame received so far, as the driver reads them out of the ring.
    fn recv(&mut self, d: &mut Dev, mem: &Mem) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Driver::E1000 { base, rx_next, .. } => loop {
                let desc = *base + u64::from(*rx_next) * 16;
                let word: u64 = mem.read_obj(GuestAddress(desc + 8)).unwrap();
                if (word >> 32) & 1 == 0 {
                    break; // DD clear
                }
                let len = (word & 0xffff) as usize;
                let mut f = vec![0; len];
                mem.read_slice(
                    &mut f,
                    GuestAddress(*base + 0x1000 + u64::from(*rx_next) * 0x800),
                )
                .unwrap();
                out.push(f);
                mem.write_obj(0u64, GuestAddress(desc + 8)).unwrap();
                w(d, 0, 0x2818, 4, *rx_next); // RDT
                *rx_next = (*rx_next + 1) % E1000_RING;
            },
            Driver::Rtl8139 { base, rx_off, .. } => {
                while r(d, 0, 0x37, 1) & 0x01 == 0 {
                    let hdr: u32 = mem.read_obj(GuestAddress(*base + *rx_off)).unwrap();
                    let len = (hdr >> 16) as usize; // includes the 4-byte CRC
                    let mut f = vec![0; len.saturating_sub(4)];
                    mem.read_slice(&mut f, GuestAddress(*base + *rx_off + 4))
                        .unwrap();
                    out.push(f);
                    *rx_off = (*rx_off + len as u64 + 4 + 3) & !3 & 0x1fff;
                    w(d, 0, 0x38, 2, (*rx_off as u32).wrapping_sub(16) & 0xffff);
                    // CAPR
                }
            }
            Driver::Ne2k => loop {
                w(d, 0, 0x00, 1, 0x62); // page 1
                let curr = r(d, 0, 0x07, 1);
                w(d, 0, 0x00, 1, 0x22);
                let bnry = r(d, 0, 0x03, 1);
                let next = if bnry + 1 >= 0x80 { 0x46 } else { bnry + 1 };
                if next == curr {
                    break;
                }
                let hdr = ne2k_read(d, next << 8, 4);
                // The count covers the 4-byte header and the frame with its FCS, which
                // the DP8390 stores like the rest of the frame.
                let count = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
                out.push(ne2k_read(d, (next << 8) + 4, count.saturating_sub(8)));
                let nxt = u32::from(hdr[1]);
                w(d, 0, 0x03, 1, if nxt <= 0x46 { 0x7f } else { nxt - 1 });
            },
        }
        out
    }
}

/// Remote DMA read of `len` bytes from NE2000 buffer address `addr`.
fn ne2k_read(d: &mut Dev, addr: u32, len: usize) -> Vec<u8> {
    let even = len.next_multiple_of(2) as u32;
    w(d, 0, 0x0a, 1, even & 0xff);
    w(d, 0, 0x0b, 1, even >> 8);
    w(d, 0, 0x08, 1, addr & 0xff);
    w(d, 0, 0x09, 1, addr >> 8);
    w(d, 0, 0x00, 1, 0x0a); // remote read, STA
    let mut out = Vec::with_capacity(even as usize);
    for _ in 0..even / 2 {
        out.extend_from_slice(&(r(d, 0, 0x10, 2) as u16).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn frame(dst: MacAddr, src: MacAddr, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(60, tag);
    f
}

struct Rig {
    runner: Runner<Mem>,
    mem: Mem,
    clock: ManualClock,
    drivers: Vec<Driver>,
    macs: Vec<MacAddr>,
}

impl Rig {
    fn new() -> Rig {
        let cfg = NetConfig::parse_line(LINE).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        let clock = ManualClock::new();
        let net = NetworkBuilder::new(&cfg)
            .guest(Guest {
                memory: mem.clone(),
                clock: Arc::new(clock.clone()),
                irq: Box::new(|_, _| Box::new(IrqRecorder::new())),
            })
            .build()
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let mut runner = Runner::new(net, Arc::new(clock.clone()));
        let macs: Vec<MacAddr> = cfg.nics.iter().map(|n| n.mac).collect();
        let mut drivers = Vec::new();
        for (i, spec) in cfg.nics.iter().enumerate() {
            let d = runner.network_mut().nic_mut(i).unwrap();
            drivers.push(Driver::init(
                &spec.model,
                d,
                &mem,
                0x10_0000 * (i as u64 + 1),
                spec.mac,
            ));
        }
        let mut rig = Rig {
            runner,
            mem,
            clock,
            drivers,
            macs,
        };
        // Let auto-negotiation (the e1000's PHY) complete on the injected clock.
        for _ in 0..10 {
            rig.clock.advance(500_000_000);
            rig.runner
                .run_once(Some(std::time::Duration::ZERO))
                .unwrap();
        }
        rig
    }

    fn send(&mut self, nic: usize, f: &[u8]) {
        let d = self.runner.network_mut().nic_mut(nic).unwrap();
        self.drivers[nic].send(d, &self.mem, f);
        for _ in 0..3 {
            self.runner
                .run_once(Some(std::time::Duration::ZERO))
                .unwrap();
        }
    }

    fn recv(&mut self, nic: usize) -> Vec<Vec<u8>> {
        let d = self.runner.network_mut().nic_mut(nic).unwrap();
        self.drivers[nic].recv(d, &self.mem)
    }
}

#[test]
fn vlan_0_cannot_reach_vlan_1_and_vlan_1_nics_reach_each_other() {
    let mut rig = Rig::new();
    let m = rig.macs.clone();
    for i in 0..3 {
        assert!(
            rig.runner.network().nic(i).unwrap().can_receive(),
            "NIC {i} is not receiving"
        );
    }

    rig.send(0, &frame(MacAddr::BROADCAST, m[0], 1));
    let sent = |rig: &Rig, i: usize| {
        rig.runner
            .network()
            .nic(i)
            .unwrap()
            .backend()
            .counters()
            .sent_frames
    };
    assert_eq!(sent(&rig, 0), 1, "the e1000 transmitted onto hub 0");
    assert!(
        rig.recv(1).is_empty(),
        "rtl8139 on vlan 1 saw vlan 0's broadcast"
    );
    assert!(
        rig.recv(2).is_empty(),
        "ne2k_pci on vlan 1 saw vlan 0's broadcast"
    );

    let b = frame(MacAddr::BROADCAST, m[1], 2);
    rig.send(1, &b);
    assert_eq!(rig.recv(2), vec![b]);
    assert!(
        rig.recv(0).is_empty(),
        "e1000 on vlan 0 saw vlan 1's broadcast"
    );
    assert!(rig.recv(1).is_empty(), "rtl8139 heard itself");

    let u = frame(m[1], m[2], 3);
    rig.send(2, &u);
    assert_eq!(rig.recv(1), vec![u]);
    assert!(rig.recv(0).is_empty());

    // And back: the RTL8139 answers the NE2000 by unicast.
    let back = frame(m[2], m[1], 4);
    rig.send(1, &back);
    assert_eq!(rig.recv(2), vec![back]);
}
