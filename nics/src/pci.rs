//! A PCI type-0 function's configuration space.
//!
//! Exact BAR sizing (the probe writes all-ones and reads back `!(size - 1)` with the type
//! bits), command/status with write-1-to-clear status bits, the INTx pin and line, and a
//! capability list. Devices embed a [`PciConfig`] and forward config accesses to it,
//! intercepting only the registers they give meaning to (e.g. a power-management
//! capability).

/// Config-space register offsets of the type-0 header.
pub mod reg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION_ID: u16 = 0x08;
    /// Programming interface, subclass, class (24 bits).
    pub const CLASS_PROG: u16 = 0x09;
    /// Cache line size (8 bits).
    pub const CACHE_LINE_SIZE: u16 = 0x0c;
    /// Latency timer (8 bits).
    pub const LATENCY_TIMER: u16 = 0x0d;
    /// Header type (8 bits).
    pub const HEADER_TYPE: u16 = 0x0e;
    /// First base address register; BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: u16 = 0x10;
    /// Subsystem vendor ID (16 bits).
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
    /// Subsystem ID (16 bits).
    pub const SUBSYSTEM_ID: u16 = 0x2e;
    /// Expansion ROM base address.
    pub const ROM_ADDRESS: u16 = 0x30;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITIES: u16 = 0x34;
    /// Interrupt line (8 bits, written by firmware).
    pub const INTERRUPT_LINE: u16 = 0x3c;
    /// Interrupt pin (8 bits, 1 = INTA).
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// Minimum grant (8 bits).
    pub const MIN_GNT: u16 = 0x3e;
    /// Maximum latency (8 bits).
    pub const MAX_LAT: u16 = 0x3f;
}

/// Command register bits.
pub mod command {
    /// I/O space enable.
    pub const IO: u16 = 1 << 0;
    /// Memory space enable.
    pub const MEMORY: u16 = 1 << 1;
    /// Bus master enable: the device may DMA.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Parity error response.
    pub const PARITY: u16 = 1 << 6;
    /// SERR# enable.
    pub const SERR: u16 = 1 << 8;
    /// Interrupt disable: INTx is not driven.
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits.
pub mod status {
    /// Interrupt status: the device requests an interrupt (whatever INTX_DISABLE says).
    pub const INTERRUPT: u16 = 1 << 3;
    /// A capability list is present.
    pub const CAP_LIST: u16 = 1 << 4;
    /// 66 MHz capable.
    pub const MHZ66: u16 = 1 << 5;
    /// Fast back-to-back capable.
    pub const FAST_BACK: u16 = 1 << 7;
    /// DEVSEL timing medium.
    pub const DEVSEL_MEDIUM: u16 = 1 << 9;
    /// Write-1-to-clear error bits: master data parity, signalled/received target abort,
    /// received master abort, signalled system error, detected parity error.
    pub const W1C: u16 = (1 << 8) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15);
}

/// What a base address register decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Mem32,
    /// 64-bit memory space (takes two BAR slots).
    Mem64,
}

/// One base address register: its kind and size (a power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarSpec {
    /// I/O or memory.
    pub kind: BarKind,
    /// Size in bytes, a power of two (at least 4 for I/O, 16 for memory).
    pub size: u64,
    /// Prefetchable memory.
    pub prefetchable: bool,
}

impl BarSpec {
    /// An I/O BAR of `size` bytes.
    pub const fn io(size: u64) -> Self {
        BarSpec {
            kind: BarKind::Io,
            size,
            prefetchable: false,
        }
    }

    /// A 32-bit, non-prefetchable memory BAR of `size` bytes.
    pub const fn mem32(size: u64) -> Self {
        BarSpec {
            kind: BarKind::Mem32,
            size,
            prefetchable: false,
        }
    }
}

/// The identity of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIds {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Revision ID.
    pub revision: u8,
    /// Class code: base class << 16 | subclass << 8 | programming interface.
    pub class: u32,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
    /// Interrupt pin: 1 = INTA .. 4 = INTD, 0 = none.
    pub interrupt_pin: u8,
}

/// A decoded, enabled BAR: where the guest put it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarRegion {
    /// BAR index 0..5.
    pub index: u8,
    /// I/O or memory.
    pub kind: BarKind,
    /// Base address programmed by the guest.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Config space of a type-0 function: 256 bytes with per-byte writable and
/// write-1-to-clear masks.
///
/// ```
/// use vm_nic_devices::pci::{command, reg, BarSpec, PciConfig, PciIds};
///
/// let ids = PciIds {
///     vendor: 0x10ec, device: 0x8029, revision: 0, class: 0x02_00_00,
///     subsystem_vendor: 0x10ec, subsystem: 0x8029, interrupt_pin: 1,
/// };
/// let mut cfg = PciConfig::new(ids, &[Some(BarSpec::io(32))]);
/// cfg.write(reg::BAR0, 4, u32::MAX); // sizing probe
/// assert_eq!(cfg.read(reg::BAR0, 4), 0xffff_ffe1); // 32 bytes of I/O space
/// cfg.write(reg::BAR0, 4, 0xc100);
/// assert_eq!(cfg.decode(0xc105, true), None, "I/O decoding is still off");
/// cfg.write(reg::COMMAND, 2, command::IO as u32);
/// assert_eq!(cfg.decode(0xc105, true), Some((0, 5)));
/// ```
#[derive(Clone)]
pub struct PciConfig {
    data: [u8; 256],
    wmask: [u8; 256],
    w1cmask: [u8; 256],
    initial: [u8; 256],
    bars: [Option<BarSpec>; 6],
    next_cap: u8,
    last_cap: Option<u8>,
}

impl std::fmt::Debug for PciConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciConfig")
            .field(
                "vendor",
                &format_args!("{:#06x}", self.read(reg::VENDOR_ID, 2)),
            )
            .field(
                "device",
                &format_args!("{:#06x}", self.read(reg::DEVICE_ID, 2)),
            )
            .field("command", &format_args!("{:#06x}", self.command()))
            .field("bars", &self.bars)
            .finish()
    }
}

impl PciConfig {
    /// A function with identity `ids` and the given BARs (index = position; a 64-bit BAR
    /// occupies its slot and the next, which must be `None`).
    ///
    /// # Panics
    /// If a BAR size is not a power of two or is below the minimum for its kind: that is
    /// a bug in the device model, not guest input.
    pub fn new(ids: PciIds, bars: &[Option<BarSpec>]) -> Self {
        let mut c = PciConfig {
            data: [0; 256],
            wmask: [0; 256],
            w1cmask: [0; 256],
            initial: [0; 256],
            bars: [None; 6],
            next_cap: 0x40,
            last_cap: None,
        };
        c.set16(reg::VENDOR_ID, ids.vendor);
        c.set16(reg::DEVICE_ID, ids.device);
        c.data[reg::REVISION_ID as usize] = ids.revision;
        c.data[0x09] = ids.class as u8;
        c.data[0x0a] = (ids.class >> 8) as u8;
        c.data[0x0b] = (ids.class >> 16) as u8;
        c.set16(reg::SUBSYSTEM_VENDOR_ID, ids.subsystem_vendor);
        c.set16(reg::SUBSYSTEM_ID, ids.subsystem);
        c.data[reg::INTERRUPT_PIN as usize] = ids.interrupt_pin;
        c.set16(reg::STATUS, status::DEVSEL_MEDIUM);
        c.set_wmask16(
            reg::COMMAND,
            command::IO
                | command::MEMORY
                | command::BUS_MASTER
                | command::PARITY
                | command::SERR
                | command::INTX_DISABLE,
        );
        let w1c = status::W1C.to_le_bytes();
        c.w1cmask[reg::STATUS as usize] = w1c[0];
        c.w1cmask[reg::STATUS as usize + 1] = w1c[1];
        c.wmask[reg::CACHE_LINE_SIZE as usize] = 0xff;
        c.wmask[reg::LATENCY_TIMER as usize] = 0xff;
        c.wmask[reg::INTERRUPT_LINE as usize] = 0xff;
        let mut i = 0;
        while i < bars.len().min(6) {
            if let Some(spec) = bars[i] {
                let min = if spec.kind == BarKind::Io { 4 } else { 16 };
                assert!(
                    spec.size.is_power_of_two() && spec.size >= min,
                    "BAR{i} size {:#x} invalid",
                    spec.size
                );
                let off = reg::BAR0 + 4 * i as u16;
                let (low_bits, addr_mask): (u32, u64) = match spec.kind {
                    BarKind::Io => (0x1, !(spec.size - 1) & 0xffff_fffc),
                    BarKind::Mem32 => (
                        if spec.prefetchable { 0x8 } else { 0 },
                        !(spec.size - 1) & 0xffff_fff0,
                    ),
                    BarKind::Mem64 => (
                        0x4 | if spec.prefetchable { 0x8 } else { 0 },
                        !(spec.size - 1) & !0xf,
                    ),
                };
                c.set32(off, low_bits);
                c.set_wmask32(off, addr_mask as u32);
                c.bars[i] = Some(spec);
                if spec.kind == BarKind::Mem64 {
                    assert!(i < 5, "64-bit BAR{i} needs a second slot");
                    c.set_wmask32(off + 4, (addr_mask >> 32) as u32);
                    i += 1;
                }
            }
            i += 1;
        }
        c.initial = c.data;
        c
    }

    /// Reads `size` (1, 2 or 4) bytes at `offset`, little-endian. Accesses of another
    /// size, or reaching past the 256-byte space, read as all-ones like an absent
    /// register on a real bus.
    pub fn read(&self, offset: u16, size: u8) -> u32 {
        let off = offset as usize;
        if !matches!(size, 1 | 2 | 4) || off + size as usize > 256 {
            return u32::MAX >> (32 - 8 * size.clamp(1, 4) as u32);
        }
        let mut v = 0u32;
        for i in 0..size as usize {
            v |= (self.data[off + i] as u32) << (8 * i);
        }
        v
    }

    /// Writes `size` (1, 2 or 4) bytes at `offset`: writable bits take the new value,
    /// write-1-to-clear bits clear where a 1 is written, everything else is unchanged.
    /// Other sizes and out-of-range accesses are ignored.
    pub fn write(&mut self, offset: u16, size: u8, value: u32) {
        let off = offset as usize;
        if !matches!(size, 1 | 2 | 4) || off + size as usize > 256 {
            return;
        }
        for i in 0..size as usize {
            let b = (value >> (8 * i)) as u8;
            let a = off + i;
            let w = self.wmask[a];
            let c = self.w1cmask[a];
            self.data[a] = (self.data[a] & !w) | (b & w);
            self.data[a] &= !(b & c);
        }
    }

    /// Restores the power-on contents (BARs unprogrammed, command 0).
    pub fn reset(&mut self) {
        self.data = self.initial;
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.read(reg::COMMAND, 2) as u16
    }

    /// True when bus mastering (DMA) is enabled.
    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// True when the Interrupt Disable bit is set.
    pub fn intx_disabled(&self) -> bool {
        self.command() & command::INTX_DISABLE != 0
    }

    /// Sets or clears the status register's Interrupt Status bit.
    pub fn set_interrupt_status(&mut self, on: bool) {
        let s = self.read(reg::STATUS, 2) as u16;
        let s = if on {
            s | status::INTERRUPT
        } else {
            s & !status::INTERRUPT
        };
        self.set16(reg::STATUS, s);
    }

    /// The BAR spec for slot `index`.
    pub fn bar_spec(&self, index: u8) -> Option<BarSpec> {
        self.bars.get(index as usize).copied().flatten()
    }

    /// The address programmed into BAR `index` (type bits masked off), whether or not
    /// decoding is enabled.
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        let spec = self.bar_spec(index)?;
        let off = reg::BAR0 + 4 * index as u16;
        let lo = self.read(off, 4) as u64;
        Some(match spec.kind {
            BarKind::Io => lo & !0x3,
            BarKind::Mem32 => lo & !0xf,
            BarKind::Mem64 => (lo & !0xf) | ((self.read(off + 4, 4) as u64) << 32),
        })
    }

    /// BAR `index` as the guest placed it, if its space (I/O or memory) is enabled in the
    /// command register and it has been given a non-zero address.
    pub fn bar_region(&self, index: u8) -> Option<BarRegion> {
        let spec = self.bar_spec(index)?;
        let enabled = match spec.kind {
            BarKind::Io => self.command() & command::IO != 0,
            _ => self.command() & command::MEMORY != 0,
        };
        let addr = self.bar_address(index)?;
        if !enabled || addr == 0 {
            return None;
        }
        Some(BarRegion {
            index,
            kind: spec.kind,
            addr,
            size: spec.size,
        })
    }

    /// Finds the enabled BAR that decodes `addr` in I/O space (`io = true`) or memory
    /// space, returning the BAR index and the offset inside it.
    pub fn decode(&self, addr: u64, io: bool) -> Option<(u8, u64)> {
        (0..6u8).find_map(|i| {
            let r = self.bar_region(i)?;
            let is_io = r.kind == BarKind::Io;
            (is_io == io && addr >= r.addr && addr - r.addr < r.size).then(|| (i, addr - r.addr))
        })
    }

    /// Places the next capability [`add_capability`](Self::add_capability) appends at
    /// config offset `off`, for parts whose datasheet fixes where their capabilities sit
    /// (the 8254x put power management at 0xDC).
    ///
    /// # Panics
    /// If `off` is not dword-aligned, lies inside the standard header, or is below the
    /// end of the capabilities already added (device-model bugs).
    pub fn place_next_capability(&mut self, off: u8) {
        assert!(
            off % 4 == 0 && off >= 0x40,
            "capability offset {off:#x} invalid"
        );
        assert!(
            off >= self.next_cap,
            "capability offset {off:#x} overlaps another"
        );
        self.next_cap = off;
    }

    /// Appends a capability with id `id` whose body (after the id and next-pointer bytes)
    /// is `body`, with `body_wmask` marking writable body bits. Returns its offset.
    ///
    /// # Panics
    /// If the capability does not fit in the 256-byte space (a device-model bug).
    pub fn add_capability(&mut self, id: u8, body: &[u8], body_wmask: &[u8]) -> u8 {
        let off = self.next_cap;
        let len = 2 + body.len();
        assert!(off as usize + len <= 256, "capability does not fit");
        self.data[off as usize] = id;
        self.data[off as usize + 1] = 0;
        for (i, b) in body.iter().enumerate() {
            self.data[off as usize + 2 + i] = *b;
            self.wmask[off as usize + 2 + i] = body_wmask.get(i).copied().unwrap_or(0);
        }
        match self.last_cap {
            Some(prev) => self.data[prev as usize + 1] = off,
            None => {
                self.data[reg::CAPABILITIES as usize] = off;
                let s = self.read(reg::STATUS, 2) as u16 | status::CAP_LIST;
                self.set16(reg::STATUS, s);
            }
        }
        self.last_cap = Some(off);
        self.next_cap = ((off as usize + len + 3) & !3) as u8;
        self.initial = self.data;
        off
    }

    /// Marks bits at `offset` write-1-to-clear (for device-specific status registers in
    /// a capability).
    pub fn set_w1c_mask(&mut self, offset: u16, mask: &[u8]) {
        for (i, m) in mask.iter().enumerate() {
            if let Some(slot) = self.w1cmask.get_mut(offset as usize + i) {
                *slot = *m;
            }
        }
    }

    /// Sets config bytes directly, bypassing the write masks (for device-owned read-only
    /// fields such as a capability's status).
    pub fn set_raw(&mut self, offset: u16, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(slot) = self.data.get_mut(offset as usize + i) {
                *slot = *b;
            }
        }
    }

    /// The whole 256-byte space (for save/restore).
    pub fn bytes(&self) -> [u8; 256] {
        self.data
    }

    /// Restores the space saved by [`PciConfig::bytes`]; read-only fields keep the
    /// values this function was built with.
    pub fn restore(&mut self, saved: &[u8; 256]) {
        for (i, &s) in saved.iter().enumerate() {
            let w = self.wmask[i] | self.w1cmask[i];
            self.data[i] = (self.initial[i] & !w) | (s & w);
        }
        let intx = saved[reg::STATUS as usize] as u16 & status::INTERRUPT;
        self.set_interrupt_status(intx != 0);
    }

    fn set16(&mut self, off: u16, v: u16) {
        self.data[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set32(&mut self, off: u16, v: u32) {
        self.data[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn set_wmask16(&mut self, off: u16, v: u16) {
        self.wmask[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_wmask32(&mut self, off: u16, v: u32) {
        self.wmask[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> PciConfig {
        PciConfig::new(
            PciIds {
                vendor: 0x8086,
                device: 0x100e,
                revision: 3,
                class: 0x020000,
                subsystem_vendor: 0x8086,
                subsystem: 0x001e,
                interrupt_pin: 1,
            },
            &[Some(BarSpec::mem32(128 << 10)), Some(BarSpec::io(64))],
        )
    }

    #[test]
    fn ids_and_class() {
        let c = dev();
        assert_eq!(c.read(0, 4), 0x100e_8086);
        assert_eq!(c.read(0x08, 4), 0x0200_0003);
        assert_eq!(c.read(0x2c, 4), 0x001e_8086);
        assert_eq!(c.read(0x3d, 1), 1);
    }

    #[test]
    fn bar_sizing_is_exact() {
        let mut c = dev();
        c.write(0x10, 4, 0xffff_ffff);
        assert_eq!(c.read(0x10, 4), 0xfffe_0000);
        c.write(0x14, 4, 0xffff_ffff);
        assert_eq!(c.read(0x14, 4), 0xffff_ffc1);
        // Unimplemented BAR reads 0 whatever is written.
        c.write(0x18, 4, 0xffff_ffff);
        assert_eq!(c.read(0x18, 4), 0);
        c.write(0x10, 4, 0xfebc_0000);
        c.write(0x14, 4, 0xc000);
        assert_eq!(c.bar_region(0), None, "memory decoding is off");
        c.write(0x04, 2, 0x0007);
        assert_eq!(c.decode(0xfebc_0010, false), Some((0, 0x10)));
        assert_eq!(c.decode(0xc03f, true), Some((1, 0x3f)));
        assert_eq!(c.decode(0xc040, true), None);
    }

    #[test]
    fn status_w1c_and_readonly_ids() {
        let mut c = dev();
        c.write(0x00, 4, 0);
        assert_eq!(c.read(0, 2), 0x8086);
        c.set_raw(0x07, &[0x80]);
        c.write(0x06, 2, 0x8000);
        assert_eq!(c.read(0x06, 2) & 0x8000, 0);
        c.write(0x04, 2, 0xffff);
        assert_eq!(c.command(), 0x0547);
    }

    #[test]
    fn capability_chain() {
        let mut c = dev();
        let pm = c.add_capability(0x01, &[0x22, 0xc8, 0, 0, 0, 0], &[0, 0, 0x03, 0x81, 0, 0]);
        let second = c.add_capability(0x05, &[0; 4], &[]);
        assert_eq!(c.read(0x34, 1) as u8, pm);
        assert_eq!(c.read(pm as u16 + 1, 1) as u8, second);
        assert_ne!(c.read(0x06, 2) & status::CAP_LIST as u32, 0);
        c.write(pm as u16 + 4, 2, 0xffff);
        assert_eq!(c.read(pm as u16 + 4, 2), 0x8103);
    }

    #[test]
    fn placed_capability_sits_where_asked() {
        let mut c = dev();
        c.place_next_capability(0xdc);
        let pm = c.add_capability(0x01, &[0x22, 0xc8, 0, 0, 0, 0], &[]);
        assert_eq!(pm, 0xdc);
        assert_eq!(c.read(0x34, 1), 0xdc);
        assert_eq!(c.read(0xdd, 1), 0, "last in the chain");
        assert_eq!(c.read(0x40, 4), 0, "nothing at the default place");
    }

    #[test]
    #[should_panic(expected = "overlaps")]
    fn placing_over_a_capability_is_refused() {
        let mut c = dev();
        c.place_next_capability(0xdc);
        c.add_capability(0x01, &[0; 6], &[]);
        c.place_next_capability(0xdc);
    }

    #[test]
    fn odd_sizes_and_ranges_are_harmless() {
        let mut c = dev();
        assert_eq!(c.read(0xfe, 4), u32::MAX);
        assert_eq!(c.read(0, 3), 0xff_ffff);
        c.write(0xff, 4, 0xffff_ffff);
        c.write(0x10, 3, 0xffff_ffff);
        assert_eq!(c.read(0x10, 4), 0);
    }
}
