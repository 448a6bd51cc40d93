//! Two NE2000s on one hub exchange frames in both directions through the full driver
//! sequence of Linux's ne2k-pci / 8390 core: reset, PROM read, init and ring setup,
//! remote-DMA write, transmit, interrupt, ring walk and remote-DMA read. One card is the
//! RTL8029 PCI function in word mode, the other the ISA card in byte mode.

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic_backends::{Hub, MacAddr};
use vm_nic_devices::ne2000::{Ne2000, Ne2000Bus};
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice, RxOutcome};

#[path = "support/ne2000_driver.rs"]
mod driver;

use driver::*;

type Mem = GuestMemoryMmap<()>;

const MAC_A: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x0b];

/// One guest: a card, its interrupt line, and the event loop's held frame (a frame the
/// card answered NoBuffer to waits here, as the NicDevice contract asks).
struct Station {
    drv: Driver<Ne2000<Mem>, Mem>,
    irq: IrqRecorder,
    held: Option<Vec<u8>>,
}

fn station(bus: Ne2000Bus, mac: [u8; 6], hub: &Hub) -> Station {
    let irq = IrqRecorder::new();
    let cfg = NicConfig {
        mac: MacAddr(mac),
        backend: Box::new(hub.add_port()),
        irq: Box::new(irq.clone()),
        clock: Arc::new(ManualClock::new()),
        memory: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap(),
    };
    let mut drv = Driver::new(Ne2000::new(bus, cfg));
    drv.word16 = matches!(bus, Ne2000Bus::Pci);
    // Probe: reset, then read the station address from the PROM as the driver does.
    assert!(drv.reset_8390(), "reset acknowledged through ISR.RST");
    let prom = drv.read_prom();
    // ne2k-pci reads the PROM in word mode: byte reads return it undoubled.
    let mac_read: [u8; 6] = prom[..6].try_into().unwrap();
    assert_eq!(mac_read, mac);
    drv.init(mac_read, true);
    Station {
        drv,
        irq,
        held: None,
    }
}

impl Station {
    /// The event loop: offers waiting frames while the card can take them. Bounded.
    fn pump(&mut self) -> usize {
        let mut buf = vec![0u8; vm_nic_backends::MAX_FRAME_LEN];
        let mut delivered = 0;
        for _ in 0..64 {
            if !self.drv.dev.can_receive() {
                break;
            }
            let f = match self.held.take() {
                Some(f) => f,
                None => match self.drv.dev.backend_mut().recv(&mut buf).unwrap() {
                    Some(n) => buf[..n].to_vec(),
                    None => break,
                },
            };
            match self.drv.dev.receive(&f) {
                RxOutcome::NoBuffer => {
                    self.held = Some(f);
                    break;
                }
                _ => delivered += 1,
            }
        }
        delivered
    }

    /// The interrupt handler (ei_interrupt): while the line is up, service ISR.
    fn service(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for _ in 0..12 {
            if !self.irq.level() {
                break;
            }
            self.drv.outb(0, E8390_NODMA | E8390_PAGE0);
            let isr = self.drv.inb(EN0_ISR);
            let got = if isr & ENISR_OVER != 0 {
                self.drv.rx_overrun()
            } else if isr & (ENISR_RX | ENISR_RX_ERR) != 0 {
                self.drv.receive()
            } else {
                Vec::new()
            };
            for (status, data) in got {
                assert_eq!(status & 0x0f, 0x01, "RSR: received intact");
                frames.push(data);
            }
            if isr & ENISR_TX != 0 {
                self.drv.inb(EN0_TSR);
                self.drv.outb(EN0_ISR, ENISR_TX);
            }
            self.drv
                .outb(EN0_ISR, isr & (ENISR_COUNTERS | ENISR_RDC | ENISR_TX_ERR));
            self.drv.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_START);
        }
        frames
    }

    /// Pumps and services until nothing moves (bounded).
    fn settle(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for _ in 0..200 {
            let moved = self.pump();
            let got = self.service();
            if moved == 0 && got.is_empty() && self.held.is_none() {
                break;
            }
            frames.extend(got);
        }
        frames
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    f
}

/// Checks a received ring packet: the frame followed by its 4-byte FCS.
fn assert_frame(got: &[u8], sent: &[u8]) {
    assert_eq!(got.len(), sent.len() + 4, "frame plus FCS");
    assert_eq!(&got[..sent.len()], sent);
}

#[test]
fn two_cards_exchange_frames_both_ways() {
    let hub = Hub::new(0);
    let mut a = station(Ne2000Bus::Pci, MAC_A, &hub);
    let mut b = station(
        Ne2000Bus::Isa {
            iobase: 0x300,
            irq: 9,
        },
        MAC_B,
        &hub,
    );
    let sizes = [60usize, 61, 64, 100, 255, 256, 257, 511, 1000, 1513, 1514];
    for round in 0..3u8 {
        for (i, &len) in sizes.iter().enumerate() {
            let seed = round.wrapping_mul(16).wrapping_add(i as u8);
            let to_b = frame(MAC_B, MAC_A, len, seed);
            assert_eq!(a.drv.send(&to_b) & 0x01, 0x01, "TSR.PTX");
            let got = b.settle();
            assert_eq!(got.len(), 1, "A->B frame {len}");
            assert_frame(&got[0], &to_b);

            let to_a = frame(MAC_A, MAC_B, len, !seed);
            assert_eq!(b.drv.send(&to_a) & 0x01, 0x01);
            let got = a.settle();
            assert_eq!(got.len(), 1, "B->A frame {len}");
            assert_frame(&got[0], &to_a);
        }
    }
    // Broadcast reaches the other card (and never comes back to the sender).
    let bc = frame([0xff; 6], MAC_A, 342, 7);
    a.drv.send(&bc);
    let got = b.settle();
    assert_frame(&got[0], &bc);
    assert!(a.settle().is_empty());
    // Unicast for someone else is filtered by PAR0-5.
    a.drv
        .send(&frame([0x52, 0x54, 0, 0, 0, 0x0c], MAC_A, 60, 1));
    assert!(b.settle().is_empty());
    assert_eq!(a.drv.dev.backend().counters().dropped, 0);
    assert_eq!(b.drv.dev.backend().counters().dropped, 0);
}

#[test]
fn burst_waits_in_the_hub_while_the_ring_is_full() {
    let hub = Hub::new(1);
    let mut a = station(Ne2000Bus::Pci, MAC_A, &hub);
    let mut b = station(Ne2000Bus::Pci, MAC_B, &hub);
    let sent: Vec<Vec<u8>> = (0..40u8)
        .map(|i| frame(MAC_B, MAC_A, 600 + 20 * i as usize, i))
        .collect();
    for f in &sent {
        a.drv.send(f);
    }
    // B's event loop runs without its driver servicing: the ring fills, then frames wait.
    b.pump();
    b.pump();
    assert!(!b.drv.dev.can_receive(), "ring full");
    assert!(
        b.drv.dev.backend().has_pending(),
        "the rest waits in the hub"
    );
    let got = b.settle();
    assert_eq!(got.len(), sent.len(), "no frame lost");
    for (g, s) in got.iter().zip(&sent) {
        assert_frame(g, s);
    }
    assert_eq!(b.drv.dev.backend().counters().dropped, 0);
    // And B can still answer.
    let reply = frame(MAC_A, MAC_B, 98, 0x55);
    b.drv.send(&reply);
    assert_frame(&a.settle()[0], &reply);
}
