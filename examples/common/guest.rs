//! A tiny e1000 driver playing the guest: it reaches the device only through the VMM's
//! [`PciHost`] (MMIO by address) and guest RAM, as a real guest would.

use vm_memory::{Bytes, GuestAddress};
use vm_nic::network::Network;

use super::{Mem, PciHost};

const RING: u64 = 16;
const TX_RING: u64 = 0x1_0000;
const RX_RING: u64 = 0x1_1000;
const TX_BUFS: u64 = 0x2_0000;
const RX_BUFS: u64 = 0x6_0000;

/// Register offsets (Intel 8254x SDM chapter 13).
const CTRL: u64 = 0x0000;
const ICR: u64 = 0x00c0;
const IMS: u64 = 0x00d0;
const RCTL: u64 = 0x0100;
const TCTL: u64 = 0x0400;
const RDBAL: u64 = 0x2800;
const RDLEN: u64 = 0x2808;
const RDT: u64 = 0x2818;
const TDBAL: u64 = 0x3800;
const TDLEN: u64 = 0x3808;
const TDT: u64 = 0x3818;
const RAL0: u64 = 0x5400;
const RAH0: u64 = 0x5404;

pub struct GuestE1000 {
    pub bar0: u64,
    pub mac: [u8; 6],
    tx_tail: u64,
    rx_next: u64,
}

impl GuestE1000 {
    fn w(&self, host: &PciHost, net: &mut Network<Mem>, off: u64, v: u32) {
        assert!(
            host.mmio_write(net, self.bar0 + off, 4, v),
            "BAR0 decodes {off:#x}"
        );
    }

    fn r(&self, host: &PciHost, net: &mut Network<Mem>, off: u64) -> u32 {
        host.mmio_read(net, self.bar0 + off, 4)
            .expect("BAR0 decodes")
    }

    /// Rings, receive address, receiver and transmitter on, interrupts unmasked.
    pub fn init(
        host: &PciHost,
        net: &mut Network<Mem>,
        mem: &Mem,
        bar0: u64,
        mac: [u8; 6],
    ) -> Self {
        let d = GuestE1000 {
            bar0,
            mac,
            tx_tail: 0,
            rx_next: 0,
        };
        for i in 0..RING {
            let mut desc = [0u8; 16];
            desc[..8].copy_from_slice(&(RX_BUFS + i * 2048).to_le_bytes());
            mem.write_slice(&desc, GuestAddress(RX_RING + 16 * i))
                .unwrap();
        }
        d.w(
            host,
            net,
            RAL0,
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        d.w(
            host,
            net,
            RAH0,
            u32::from_le_bytes([mac[4], mac[5], 0, 0]) | 1 << 31,
        );
        d.w(host, net, TDBAL, TX_RING as u32);
        d.w(host, net, TDLEN, (RING * 16) as u32);
        d.w(host, net, TCTL, 1 << 1 | 1 << 3);
        d.w(host, net, RDBAL, RX_RING as u32);
        d.w(host, net, RDLEN, (RING * 16) as u32);
        d.w(host, net, RDT, (RING - 1) as u32);
        d.w(host, net, RCTL, 1 << 1 | 1 << 15 | 1 << 26); // EN, BAM, SECRC
        let ctrl = d.r(host, net, CTRL);
        d.w(host, net, CTRL, ctrl | 1 << 6); // SLU
        d.w(host, net, IMS, 1 << 7 | 1 << 2); // RXT0, LSC
        d
    }

    /// Queues `frame` and writes the doorbell (the device transmits inside this write).
    pub fn transmit(&mut self, host: &PciHost, net: &mut Network<Mem>, mem: &Mem, frame: &[u8]) {
        let buf = TX_BUFS + self.tx_tail * 2048;
        mem.write_slice(frame, GuestAddress(buf)).unwrap();
        let mut desc = [0u8; 16];
        desc[..8].copy_from_slice(&buf.to_le_bytes());
        desc[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
        desc[11] = 0x0b; // EOP | IFCS | RS
        mem.write_slice(&desc, GuestAddress(TX_RING + 16 * self.tx_tail))
            .unwrap();
        self.tx_tail = (self.tx_tail + 1) % RING;
        self.w(host, net, TDT, self.tx_tail as u32);
    }

    /// The interrupt handler: reads (and so clears) ICR, then takes every received frame.
    pub fn interrupt(
        &mut self,
        host: &PciHost,
        net: &mut Network<Mem>,
        mem: &Mem,
    ) -> (u32, Vec<Vec<u8>>) {
        let icr = self.r(host, net, ICR);
        let mut frames = Vec::new();
        for _ in 0..RING {
            let at = RX_RING + 16 * self.rx_next;
            let mut desc = [0u8; 16];
            mem.read_slice(&mut desc, GuestAddress(at)).unwrap();
            if desc[12] & 1 == 0 {
                break;
            }
            let len = u16::from_le_bytes([desc[8], desc[9]]) as usize;
            let mut f = vec![0; len];
            mem.read_slice(&mut f, GuestAddress(RX_BUFS + 2048 * self.rx_next))
                .unwrap();
            frames.push(f);
            mem.write_slice(&[0], GuestAddress(at + 12)).unwrap();
            self.w(host, net, RDT, self.rx_next as u32);
            self.rx_next = (self.rx_next + 1) % RING;
        }
        (icr, frames)
    }
}

/// An ARP request from 10.0.2.15 (the guest's address on user-net) for `target`.
pub fn arp_request(mac: [u8; 6], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[10, 0, 2, 15]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// True if `f` is an ARP reply telling `target`'s MAC to us.
pub fn is_arp_reply_from(f: &[u8], target: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[28..32] == target
}
