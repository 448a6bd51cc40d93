//! A guest-driver-like rig for the e1000 integration tests: guest RAM, a recording
//! backend, an interrupt recorder and a manual clock, with helpers doing what a driver
//! does (register access, EEPROM bit-bang, MDIC, ring setup).
#![allow(dead_code)]

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::{Variant, E1000};
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice};

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const RAM: u64 = 0x40_0000;
pub const TX_RING: u64 = 0x1000;
pub const RX_RING: u64 = 0x2000;
pub const TX_BUF: u64 = 0x10_0000;
pub const RX_BUF: u64 = 0x20_0000;

// Register offsets used by the tests (SDM table 13-2).
pub const CTRL: u64 = 0x0;
pub const STATUS: u64 = 0x8;
pub const EECD: u64 = 0x10;
pub const EERD: u64 = 0x14;
pub const MDIC: u64 = 0x20;
pub const ICR: u64 = 0xc0;
pub const ITR: u64 = 0xc4;
pub const ICS: u64 = 0xc8;
pub const IMS: u64 = 0xd0;
pub const IMC: u64 = 0xd8;
pub const RCTL: u64 = 0x100;
pub const TCTL: u64 = 0x400;
pub const RDBAL: u64 = 0x2800;
pub const RDBAH: u64 = 0x2804;
pub const RDLEN: u64 = 0x2808;
pub const RDH: u64 = 0x2810;
pub const RDT: u64 = 0x2818;
pub const RDTR: u64 = 0x2820;
pub const RADV: u64 = 0x282c;
pub const TDBAL: u64 = 0x3800;
pub const TDBAH: u64 = 0x3804;
pub const TDLEN: u64 = 0x3808;
pub const TDH: u64 = 0x3810;
pub const TDT: u64 = 0x3818;
pub const TIDV: u64 = 0x3820;
pub const TXDCTL: u64 = 0x3828;
pub const TADV: u64 = 0x382c;
pub const RXCSUM: u64 = 0x5000;
pub const MTA: u64 = 0x5200;
pub const RAL0: u64 = 0x5400;
pub const RAH0: u64 = 0x5404;
pub const VFTA: u64 = 0x5600;

pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_BAM: u32 = 1 << 15;
pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;

pub struct Rig {
    pub dev: E1000<GuestMemoryMmap>,
    pub mem: GuestMemoryMmap,
    pub irq: IrqRecorder,
    pub clock: ManualClock,
    pub net: RecordingHandle,
}

impl Rig {
    /// A device of `variant` with PCI memory, I/O and bus mastering enabled; the link
    /// has not come up yet (auto-negotiation is running).
    pub fn new(variant: Variant) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        let irq = IrqRecorder::new();
        let clock = ManualClock::new();
        let (backend, net) = RecordingBackend::new();
        let cfg = NicConfig {
            mac: MacAddr(MAC),
            backend: Box::new(backend),
            irq: Box::new(irq.clone()),
            clock: Arc::new(clock.clone()),
            memory: mem.clone(),
        };
        let mut dev = E1000::new(variant, cfg);
        dev.config_write(0x04, 2, 0x0007);
        Rig {
            dev,
            mem,
            irq,
            clock,
            net,
        }
    }

    /// An 82540EM with its link up.
    pub fn up() -> Rig {
        let mut r = Rig::new(Variant::E82540EM);
        r.wait_link();
        r
    }

    pub fn wait_link(&mut self) {
        self.advance_ms(600);
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.advance_ns(ms * 1_000_000);
    }

    pub fn advance_ns(&mut self, ns: u64) {
        self.clock.advance(ns);
        self.dev.run_timers();
    }

    pub fn r(&mut self, off: u64) -> u32 {
        self.dev.bar_read(0, off, 4)
    }

    pub fn w(&mut self, off: u64, v: u32) {
        self.dev.bar_write(0, off, 4, v)
    }

    pub fn write_mem(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }

    pub fn read_mem(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }

    // --- MDIC ---
    pub fn mdic(&mut self, v: u32) -> u32 {
        self.w(MDIC, v);
        self.r(MDIC)
    }

    pub fn phy_read(&mut self, reg: u32) -> u16 {
        let v = self.mdic(2 << 26 | 1 << 21 | reg << 16);
        assert_ne!(v & 1 << 28, 0, "MDIC ready");
        v as u16
    }

    pub fn phy_write(&mut self, reg: u32, val: u16) {
        let v = self.mdic(1 << 26 | 1 << 21 | reg << 16 | val as u32);
        assert_ne!(v & 1 << 28, 0, "MDIC ready");
    }

    // --- EEPROM bit-bang, as Linux's e1000_hw.c does it ---
    fn ee_clock(&mut self, eecd: u32) {
        self.w(EECD, eecd | 1);
        self.w(EECD, eecd);
    }

    pub fn ee_shift_out(&mut self, data: u32, bits: u32) {
        let base = self.r(EECD) & !(1 | 4);
        for i in (0..bits).rev() {
            let di = if data >> i & 1 != 0 { 4 } else { 0 };
            self.w(EECD, base | di);
            self.ee_clock(base | di);
        }
        self.w(EECD, base);
    }

    pub fn ee_shift_in(&mut self, bits: u32) -> u32 {
        let base = self.r(EECD) & !(1 | 4 | 8);
        let mut v = 0;
        for _ in 0..bits {
            self.w(EECD, base | 1);
            v = v << 1 | (self.r(EECD) >> 3 & 1);
            self.w(EECD, base);
        }
        v
    }

    /// Requests the EEPROM (REQ/GNT on the 82540 and later) and selects it.
    pub fn ee_acquire(&mut self) {
        let v = self.r(EECD) | 1 << 6;
        self.w(EECD, v);
        let v = self.r(EECD) & !(1 | 4);
        self.w(EECD, v);
        self.w(EECD, v | 2);
    }

    pub fn ee_release(&mut self) {
        let v = self.r(EECD) & !(2 | 1 | 1 << 6);
        self.w(EECD, v);
    }

    /// Deselects and reselects the chip between instructions.
    pub fn ee_standby(&mut self) {
        let v = self.r(EECD) & !(2 | 1);
        self.w(EECD, v);
        self.w(EECD, v | 1);
        self.w(EECD, v | 1 | 2);
        self.w(EECD, v | 2);
    }

    pub fn ee_read(&mut self, addr: u32) -> u16 {
        self.ee_acquire();
        self.ee_shift_out(0b110, 3);
        self.ee_shift_out(addr, 6);
        let v = self.ee_shift_in(16) as u16;
        self.ee_release();
        v
    }

    /// Sends a 3-bit opcode + 6-bit address instruction (EWEN, EWDS, ERAL, ERASE).
    pub fn ee_command(&mut self, opcode: u32, addr: u32, data: Option<u16>) {
        self.ee_acquire();
        self.ee_shift_out(opcode, 3);
        self.ee_shift_out(addr, 6);
        if let Some(d) = data {
            self.ee_shift_out(d as u32, 16);
        }
        self.ee_standby();
        // Ready: DO high.
        assert_ne!(self.r(EECD) & 8, 0, "EEPROM ready after programming");
        self.ee_release();
    }

    // --- rings ---
    pub fn setup_tx(&mut self, count: u32) {
        self.w(TDBAL, TX_RING as u32);
        self.w(TDBAH, 0);
        self.w(TDLEN, count * 16);
        self.w(TDH, 0);
        self.w(TDT, 0);
        self.w(TCTL, TCTL_EN | TCTL_PSP | 0x0f << 4 | 0x40 << 12);
    }

    /// Writes TX descriptor `i` with raw lower/upper dwords.
    pub fn tx_desc(&self, i: u64, addr: u64, lower: u32, upper: u32) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&lower.to_le_bytes());
        d[12..16].copy_from_slice(&upper.to_le_bytes());
        self.write_mem(TX_RING + i * 16, &d);
    }

    /// A legacy descriptor carrying `data` (copied to a per-slot buffer), `cmd` bits.
    pub fn tx_legacy(&self, i: u64, data: &[u8], cmd: u8) {
        let buf = TX_BUF + i * 0x1_0000;
        self.write_mem(buf, data);
        self.tx_desc(i, buf, data.len() as u32 | (cmd as u32) << 24, 0);
    }

    pub fn setup_rx(&mut self, count: u32, rctl: u32) {
        for i in 0..count as u64 {
            let mut d = [0u8; 16];
            d[0..8].copy_from_slice(&(RX_BUF + i * 0x4000).to_le_bytes());
            self.write_mem(RX_RING + i * 16, &d);
        }
        self.w(RDBAL, RX_RING as u32);
        self.w(RDBAH, 0);
        self.w(RDLEN, count * 16);
        self.w(RDH, 0);
        self.w(RDT, count - 1);
        self.w(RCTL, rctl | RCTL_EN);
    }

    /// (length, status, errors, special) of RX descriptor `i`.
    pub fn rx_status(&self, i: u64) -> (u16, u8, u8, u16) {
        let d = self.read_mem(RX_RING + i * 16, 16);
        (
            u16::from_le_bytes([d[8], d[9]]),
            d[12],
            d[13],
            u16::from_le_bytes([d[14], d[15]]),
        )
    }

    pub fn rx_data(&self, i: u64, len: usize) -> Vec<u8> {
        self.read_mem(RX_BUF + i * 0x4000, len)
    }
}

/// An Ethernet frame to `dst` with ethertype `ty` and `payload`.
pub fn eth(dst: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 9]);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Internet checksum over `data` (complemented), seeded with `seed`.
pub fn csum(data: &[u8], seed: u32) -> u16 {
    let mut s = seed as u64;
    for c in data.chunks(2) {
        s += (c[0] as u64) << 8 | *c.get(1).unwrap_or(&0) as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet + IPv4 + TCP (or UDP) frame with correct checksums.
pub fn ipv4_frame(dst: [u8; 6], proto: u8, payload: &[u8]) -> Vec<u8> {
    let l4_hdr = if proto == 6 { 20 } else { 8 };
    let total = 20 + l4_hdr + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&[10, 0, 2, 15, 10, 0, 2, 2]);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = if proto == 6 {
        let mut t = vec![
            0x30, 0x39, 0x00, 0x50, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ];
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t
    } else {
        let len = (8 + payload.len()) as u16;
        let mut u = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
        u[4..6].copy_from_slice(&len.to_be_bytes());
        u
    };
    l4.extend_from_slice(payload);
    let pseudo = pseudo_sum(&ip, proto, l4.len());
    let at = if proto == 6 { 16 } else { 6 };
    let c = csum(&l4, pseudo);
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let mut body = ip;
    body.extend_from_slice(&l4);
    eth(dst, 0x0800, &body)
}

/// Pseudo-header sum (uncomplemented, unfolded) for an IPv4 header.
pub fn pseudo_sum(ip: &[u8], proto: u8, len: usize) -> u32 {
    let mut s = 0u32;
    for c in ip[12..20].chunks(2) {
        s += (c[0] as u32) << 8 | c[1] as u32;
    }
    s + proto as u32 + len as u32
}

/// True if the IPv4 frame's IP and TCP/UDP checksums verify.
pub fn ipv4_checksums_ok(f: &[u8]) -> bool {
    let ip = &f[14..34];
    if csum(ip, 0) != 0 {
        return false;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let l4 = &f[34..14 + total];
    csum(l4, pseudo_sum(ip, ip[9], l4.len())) == 0
}
