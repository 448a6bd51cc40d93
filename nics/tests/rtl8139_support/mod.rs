//! Shared test rig for the rtl8139 integration tests: a device over 1 MiB of guest RAM,
//! a recording backend, an interrupt recorder and a manual clock, driven through the
//! public `NicDevice` API the way a guest driver would.
#![allow(dead_code)]

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_devices::rtl8139::{Rtl8139, Rtl8139State};
use vm_nic_devices::{IrqRecorder, MacAddr, ManualClock, NicConfig, NicDevice};

/// C+ descriptor bits.
pub const OWN: u32 = 1 << 31;
pub const EOR: u32 = 1 << 30;
pub const FS: u32 = 1 << 29;
pub const LS: u32 = 1 << 28;

/// Where the C+ tests put their rings.
pub const RX_RING: u64 = 0x1000;
pub const TX_RING: u64 = 0x1400;
pub const HI_RING: u64 = 0x1800;

/// C+ mode with both rings at the addresses above, RE|TE, `rcr`, every interrupt unmasked.
pub fn cplus_on(r: &mut Rig, cpcmd: u16, rcr: u32) {
    r.w16(0xE0, cpcmd);
    r.w32(0x20, TX_RING as u32);
    r.w32(0x28, HI_RING as u32);
    r.w32(0xE4, RX_RING as u32);
    r.w8(0x37, 0x0C);
    r.w32(0x44, rcr);
    r.w16(0x3C, 0xFFFF);
}

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const RAM: u64 = 1 << 20;

pub struct Rig {
    pub dev: Box<dyn NicDevice<GuestMemoryMmap>>,
    pub mem: GuestMemoryMmap,
    pub net: RecordingHandle,
    pub irq: IrqRecorder,
    pub clock: ManualClock,
}

pub fn config(
    mem: &GuestMemoryMmap,
) -> (
    NicConfig<GuestMemoryMmap>,
    RecordingHandle,
    IrqRecorder,
    ManualClock,
) {
    let (backend, net) = RecordingBackend::new();
    let irq = IrqRecorder::new();
    let clock = ManualClock::new();
    let cfg = NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(backend),
        irq: Box::new(irq.clone()),
        clock: Arc::new(clock.clone()),
        memory: mem.clone(),
    };
    (cfg, net, irq, clock)
}

impl Rig {
    /// A device with the given `-device` properties, PCI I/O, memory and bus master on.
    pub fn with_props(props: &[(&str, &str)]) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        let (cfg, net, irq, clock) = config(&mem);
        let props: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dev = vm_nic_devices::models::create("rtl8139", &props, cfg).unwrap();
        let mut rig = Rig {
            dev,
            mem,
            net,
            irq,
            clock,
        };
        rig.dev.config_write(0x04, 2, 0x0007);
        rig
    }

    /// Revision 0x10 (RTL8139C).
    pub fn c() -> Rig {
        Rig::with_props(&[("revision", "0x10")])
    }

    /// The default (RTL8139C+).
    pub fn cplus() -> Rig {
        Rig::with_props(&[])
    }

    /// A device restored from `state` with a fresh backend, line and clock.
    pub fn restore(state: &Rtl8139State) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        let (cfg, net, irq, clock) = config(&mem);
        let dev = Rtl8139::from_state(state, cfg).unwrap();
        Rig {
            dev: Box::new(dev),
            mem,
            net,
            irq,
            clock,
        }
    }

    pub fn r8(&mut self, off: u64) -> u8 {
        self.dev.bar_read(0, off, 1) as u8
    }
    pub fn r16(&mut self, off: u64) -> u16 {
        self.dev.bar_read(0, off, 2) as u16
    }
    pub fn r32(&mut self, off: u64) -> u32 {
        self.dev.bar_read(0, off, 4)
    }
    pub fn w8(&mut self, off: u64, v: u8) {
        self.dev.bar_write(0, off, 1, v as u32)
    }
    pub fn w16(&mut self, off: u64, v: u16) {
        self.dev.bar_write(0, off, 2, v as u32)
    }
    pub fn w32(&mut self, off: u64, v: u32) {
        self.dev.bar_write(0, off, 4, v)
    }

    pub fn put(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }
    pub fn get32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }

    /// Linux's read_eeprom() against 9346CR with `addr_len` address bits.
    pub fn read_eeprom(&mut self, location: u32, addr_len: u32) -> u16 {
        const ENB: u8 = 0x88;
        let cmd = location | (6 << addr_len);
        self.w8(0x50, ENB & !0x08);
        self.w8(0x50, ENB);
        for i in (0..=4 + addr_len).rev() {
            let d = if cmd & (1 << i) != 0 { 0x02 } else { 0 };
            self.w8(0x50, ENB | d);
            self.w8(0x50, ENB | d | 0x04);
        }
        self.w8(0x50, ENB);
        let mut v = 0u16;
        for _ in 0..16 {
            self.w8(0x50, ENB | 0x04);
            v = (v << 1) | (self.r8(0x50) & 1) as u16;
            self.w8(0x50, ENB);
        }
        self.w8(0x50, 0);
        v
    }

    /// Shifts `len` command bits out as Linux's eeprom_cmd() does, inside one CS cycle.
    pub fn eeprom_cmd(&mut self, cmd: u32, len: u32, data: Option<u16>) {
        const ENB: u8 = 0x88;
        self.w8(0x50, ENB & !0x08);
        self.w8(0x50, ENB);
        let shift = |rig: &mut Rig, value: u32, bits: u32| {
            for i in (0..bits).rev() {
                let d = if value & (1 << i) != 0 { 0x02 } else { 0 };
                rig.w8(0x50, ENB | d);
                rig.w8(0x50, ENB | d | 0x04);
            }
            rig.w8(0x50, ENB);
        };
        shift(self, cmd, len);
        if let Some(d) = data {
            shift(self, d as u32, 16);
        }
        self.w8(0x50, 0);
    }

    /// The interrupt oracle: the line is asserted exactly when ISR & IMR != 0.
    pub fn assert_intx_rule(&mut self) {
        let isr = self.r16(0x3E);
        let imr = self.r16(0x3C);
        assert_eq!(
            self.irq.level(),
            isr & imr != 0,
            "ISR {isr:#06x} IMR {imr:#06x}"
        );
    }
}

/// Writes a 16-byte C+ descriptor at entry `i` of the ring at `ring`.
pub fn put_desc(r: &Rig, ring: u64, i: u64, opts1: u32, opts2: u32, addr: u64) {
    let mut d = [0u8; 16];
    d[0..4].copy_from_slice(&opts1.to_le_bytes());
    d[4..8].copy_from_slice(&opts2.to_le_bytes());
    d[8..16].copy_from_slice(&addr.to_le_bytes());
    r.put(ring + 16 * i, &d);
}

/// A frame to `dst` of `len` bytes with a counting payload.
pub fn frame(dst: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12] = 0x08;
    f[13] = 0x06;
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = i as u8;
    }
    f
}

/// A TCP/IPv4 frame to our MAC with `payload` bytes and valid checksums.
pub fn tcp_frame(payload: usize) -> Vec<u8> {
    use vm_nic_devices::rtl8139::offload;
    let mut f = vec![0u8; 54 + payload];
    f[..6].copy_from_slice(&MAC);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 2, 15]);
    f[30..34].copy_from_slice(&[10, 0, 2, 2]);
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[38..42].copy_from_slice(&1000u32.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x18;
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    let ip = offload::parse_ipv4(&f).unwrap();
    offload::fill_ip_checksum(&mut f, &ip);
    offload::fill_l4_checksum(&mut f, &ip);
    f
}
