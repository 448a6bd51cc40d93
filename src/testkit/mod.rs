//! A bench for unit-testing guest drivers against vm-nic's models without booting a VM.
//!
//! A [`Bench`] holds everything a NIC sees of a machine: guest RAM (a `vm-memory`
//! [`GuestMemoryMmap`]), a bus that routes config-space, memory and I/O accesses to the
//! device by address — through the BARs the driver or [`Bench::enumerate`] programmed, as
//! a real PCI bus does — an interrupt recorder, a manual clock, a network end that
//! records transmitted frames and injects received ones, and a capture of the model's
//! debug log. Its `check_*` helpers return a [`Failure`] and its `expect_*` helpers panic
//! with one; either way the message shows what was expected, the device's registers (read
//! without side effects) and the lines the model logged about what it ignored or
//! rejected.
//!
//! ```
//! use vm_nic::testkit::{frame, Bench};
//! use vm_nic::backends::MacAddr;
//!
//! let mut bench = Bench::e1000();
//! bench.enumerate(); // BARs placed, memory decoding and bus mastering on
//! let bar0 = bench.bar_address(0).unwrap();
//!
//! // A driver's transmit path: ring at 0x1000, one legacy descriptor, buffer at 0x2000.
//! let pkt = frame::tagged(MacAddr::BROADCAST, bench.mac(), 1, 60);
//! bench.write_mem(0x2000, &pkt);
//! let mut desc = [0u8; 16];
//! desc[..8].copy_from_slice(&0x2000u64.to_le_bytes());
//! desc[8..10].copy_from_slice(&(pkt.len() as u16).to_le_bytes());
//! desc[11] = 0x0b; // CMD: EOP | IFCS | RS
//! bench.write_mem(0x1000, &desc);
//! bench.mmio_write(bar0 + 0x3800, 4, 0x1000); // TDBAL
//! bench.mmio_write(bar0 + 0x3808, 4, 8 * 16); // TDLEN: 8 descriptors
//! bench.mmio_write(bar0 + 0x0400, 4, 1 << 1); // TCTL.EN
//! bench.mmio_write(bar0 + 0x3818, 4, 1); // TDT: the doorbell
//!
//! bench.expect_sent(&pkt);
//! bench.expect_register("TDH", 1);
//! ```
//!
//! A driver bug shows up with the device's side of the story:
//!
//! ```
//! # use vm_nic::testkit::Bench;
//! let mut bench = Bench::e1000();
//! bench.enumerate();
//! let bar0 = bench.bar_address(0).unwrap();
//! bench.mmio_write(bar0 + 0x3808, 4, 8 * 16); // TDLEN: 8 descriptors...
//! bench.mmio_write(bar0 + 0x0400, 4, 1 << 1);
//! bench.mmio_write(bar0 + 0x3818, 4, 9); // ...but the tail says 9
//! let err = bench.check_sent(&[0u8; 60]).unwrap_err().to_string();
//! assert!(err.contains("TDH 0 or TDT 9 beyond a ring of 8 descriptors"), "{err}");
//! assert!(err.contains("TDLEN=0x80"), "{err}");
//! ```
//!
//! See `docs/driver-testing.md` for a walk-through and `tests/driver_*.rs` for complete
//! polling drivers of each model written as tests.
//!
//! ## Relation to [`crate::fuzzing`]
//!
//! The fuzzing [`Harness`](crate::fuzzing::Harness) also holds RAM, a device, an
//! interrupt recorder and a recording backend, but for another job: it resolves BAR
//! selectors by index (any fuzzer byte hits a register), wraps the backend to check that
//! frames leave only during doorbell writes, diffs RAM after every op to attribute DMA,
//! and checks its oracles after each op. The bench routes by bus address as a real
//! machine does, keeps RAM plain, and explains failures in words. Sharing one core would
//! put the oracles' bookkeeping in every driver test or the address decoding in every
//! fuzz iteration, so the two stay separate; both build devices through the same
//! `NicConfig` and `models::create`.

mod check;
pub mod frame;
pub mod logs;
mod view;

use std::collections::VecDeque;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_backends::MacAddr;
use vm_nic_devices::e1000::{Variant, E1000};
use vm_nic_devices::models::{self, ModelError};
use vm_nic_devices::ne2000::{Ne2000, Ne2000Bus, ISA_DEFAULT_IOBASE, ISA_DEFAULT_IRQ};
use vm_nic_devices::pci::{command, reg};
use vm_nic_devices::rtl8139::{Revision, Rtl8139};
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice, RxOutcome};

pub use check::{Failure, LOG_LINES_SHOWN};
pub use logs::LogCapture;
pub use view::{BenchDevice, RegisterValue};

/// The guest memory type of the bench: plain `vm-memory` mmap'd RAM.
pub type TestMemory = GuestMemoryMmap;

/// Where [`Bench::enumerate`] places memory BARs: from here up, each aligned to its size.
pub const MMIO_WINDOW: u64 = 0xfe00_0000;
/// Where [`Bench::enumerate`] places I/O BARs: from here up, each aligned to its size.
pub const IO_WINDOW: u64 = 0xc000;
/// Rounds of timers one [`Bench::advance`] runs at most (a timer that keeps re-arming
/// itself in the past is a model bug the bench reports instead of spinning).
pub const TIMER_ROUNDS: usize = 64;

/// How a bench is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// The device's station address (EEPROM/PROM contents).
    pub mac: MacAddr,
    /// Bytes of guest RAM, at guest physical address 0.
    pub ram_size: usize,
}

impl Default for BenchConfig {
    /// QEMU's default MAC 52:54:00:12:34:56 and 2 MiB of RAM.
    fn default() -> Self {
        BenchConfig {
            mac: MacAddr::QEMU_DEFAULT,
            ram_size: 2 << 20,
        }
    }
}

/// One device on a test machine. See the [module documentation](self).
pub struct Bench<D> {
    dev: D,
    mac: MacAddr,
    mem: TestMemory,
    irq: IrqRecorder,
    clock: ManualClock,
    net: RecordingHandle,
    logs: LogCapture,
    /// Frames the device sent and the test has not consumed yet, oldest first.
    sent: VecDeque<Vec<u8>>,
    /// Memory and I/O BAR allocation cursors for [`Bench::enumerate`].
    next_mmio: u64,
    next_io: u64,
}

impl<D> std::fmt::Debug for Bench<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("mac", &self.mac)
            .field("irq", &self.irq.level())
            .finish()
    }
}

impl Bench<E1000<TestMemory>> {
    /// An Intel 82540EM (QEMU's `e1000`) with the default [`BenchConfig`].
    pub fn e1000() -> Self {
        Bench::with_device(BenchConfig::default(), |cfg| {
            E1000::new(Variant::E82540EM, cfg)
        })
    }
}

impl Bench<Rtl8139<TestMemory>> {
    /// An RTL8139 of revision `rev` (C: `8139too`, C+: `8139cp`) with the default
    /// [`BenchConfig`].
    pub fn rtl8139(rev: Revision) -> Self {
        Bench::with_device(BenchConfig::default(), |cfg| Rtl8139::new(rev, cfg))
    }
}

impl Bench<Ne2000<TestMemory>> {
    /// An RTL8029 NE2000 PCI function with the default [`BenchConfig`].
    pub fn ne2k_pci() -> Self {
        Bench::with_device(BenchConfig::default(), |cfg| {
            Ne2000::new(Ne2000Bus::Pci, cfg)
        })
    }

    /// An ISA NE2000 at I/O port 0x300, IRQ 9, with the default [`BenchConfig`].
    pub fn ne2k_isa() -> Self {
        Bench::with_device(BenchConfig::default(), |cfg| {
            Ne2000::new(
                Ne2000Bus::Isa {
                    iobase: ISA_DEFAULT_IOBASE,
                    irq: ISA_DEFAULT_IRQ,
                },
                cfg,
            )
        })
    }
}

impl Bench<Box<dyn NicDevice<TestMemory>>> {
    /// Any model by QEMU name with its `-device` properties, through
    /// [`models::create`] (e.g. `("rtl8139", &[("revision", "0x10")])`).
    pub fn model(name: &str, props: &[(&str, &str)]) -> Result<Self, ModelError> {
        let props: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Bench::try_with_device(BenchConfig::default(), |cfg| {
            models::create(name, &props, cfg)
        })
    }
}

impl<D: BenchDevice> Bench<D> {
    /// A bench around the device `make` builds from the bench's RAM, interrupt recorder,
    /// clock and recording backend.
    ///
    /// # Panics
    /// If the host cannot map `cfg.ram_size` bytes of anonymous memory.
    pub fn with_device(cfg: BenchConfig, make: impl FnOnce(NicConfig<TestMemory>) -> D) -> Self {
        match Bench::try_with_device(cfg, |c| Ok::<D, ()>(make(c))) {
            Ok(b) => b,
            Err(()) => unreachable!("the factory cannot fail"),
        }
    }

    fn try_with_device<E>(
        cfg: BenchConfig,
        make: impl FnOnce(NicConfig<TestMemory>) -> Result<D, E>,
    ) -> Result<Self, E> {
        logs::install();
        let mem = TestMemory::from_ranges(&[(GuestAddress(0), cfg.ram_size)])
            .expect("mapping the bench's guest RAM");
        let irq = IrqRecorder::new();
        let clock = ManualClock::new();
        let (backend, net) = RecordingBackend::new();
        let logs = LogCapture::new();
        let dev = logs.scope(|| {
            make(NicConfig {
                mac: cfg.mac,
                backend: Box::new(backend),
                irq: Box::new(irq.clone()),
                clock: Arc::new(clock.clone()),
                memory: mem.clone(),
            })
        })?;
        Ok(Bench {
            dev,
            mac: cfg.mac,
            mem,
            irq,
            clock,
            net,
            logs,
            sent: VecDeque::new(),
            next_mmio: MMIO_WINDOW,
            next_io: IO_WINDOW,
        })
    }

    /// Replaces the device with the one `make` builds from a fresh interrupt recorder and
    /// recording backend and the same RAM, clock and MAC — what a VMM does when it
    /// restores a saved device (`E1000::from_state` and friends). Frames the old device
    /// sent stay queued for [`Bench::take_sent`]. Returns the old device.
    pub fn replace_device(&mut self, make: impl FnOnce(NicConfig<TestMemory>) -> D) -> D {
        self.collect_sent();
        let irq = IrqRecorder::new();
        let (backend, net) = RecordingBackend::new();
        let cfg = NicConfig {
            mac: self.mac,
            backend: Box::new(backend),
            irq: Box::new(irq.clone()),
            clock: Arc::new(self.clock.clone()),
            memory: self.mem.clone(),
        };
        let new = self.logs.scope(|| make(cfg));
        self.irq = irq;
        self.net = net;
        std::mem::replace(&mut self.dev, new)
    }

    /// The device, for model-specific calls (`state()`, `register_dump()` ...).
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, mutably. Calls made through it are not logged into the bench's
    /// capture; prefer the bench's own methods.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// The station address the device was built with.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Runs `f` on the device with the model's log lines going to this bench.
    pub fn with_nic<R>(&mut self, f: impl FnOnce(&mut dyn NicDevice<TestMemory>) -> R) -> R {
        let dev = &mut self.dev;
        self.logs.scope(|| f(dev.nic_mut()))
    }

    // ---- PCI configuration space -------------------------------------------------

    /// Reads `size` bytes of config space at `offset` (all-ones for an ISA device).
    pub fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.with_nic(|d| d.config_read(offset, size))
    }

    /// Writes `size` bytes of config space at `offset`.
    pub fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.with_nic(|d| d.config_write(offset, size, value))
    }

    /// Does what PCI firmware does before a driver runs: sizes every BAR (writes
    /// all-ones and reads the mask back), places memory BARs from [`MMIO_WINDOW`] and I/O
    /// BARs from [`IO_WINDOW`] (each aligned to its size), and enables I/O and memory
    /// decoding and bus mastering in the command register. An ISA device needs none of
    /// this and is left alone.
    pub fn enumerate(&mut self) {
        if self.dev.nic().pci().is_none() {
            return;
        }
        let mut index = 0u8;
        while index < 6 {
            let off = reg::BAR0 + 4 * index as u16;
            let original = self.config_read(off, 4);
            self.config_write(off, 4, u32::MAX);
            let probe = self.config_read(off, 4);
            self.config_write(off, 4, original);
            if probe == 0 {
                index += 1;
                continue;
            }
            let io = probe & 1 == 1;
            let wide = !io && probe & 0x6 == 0x4;
            let mask = if io { probe & !0x3 } else { probe & !0xf };
            let size = (!mask).wrapping_add(1) as u64;
            let cursor = if io {
                &mut self.next_io
            } else {
                &mut self.next_mmio
            };
            let addr = cursor.div_ceil(size) * size;
            *cursor = addr + size;
            self.config_write(off, 4, addr as u32);
            if wide {
                self.config_write(off + 4, 4, (addr >> 32) as u32);
                index += 1;
            }
            index += 1;
        }
        let cmd = self.config_read(reg::COMMAND, 2) as u16
            | command::IO
            | command::MEMORY
            | command::BUS_MASTER;
        self.config_write(reg::COMMAND, 2, cmd as u32);
    }

    /// Where BAR `index` is decoded now (memory or I/O address), if its space is enabled
    /// and it has an address. For an ISA device, BAR 0 is its I/O window at `iobase`.
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        match self.dev.nic().pci() {
            Some(p) => p.bar_region(index).map(|r| r.addr),
            None => (index == 0)
                .then(|| self.dev.nic().isa().map(|i| i.iobase as u64))
                .flatten(),
        }
    }

    // ---- The bus: memory and I/O accesses routed by address -----------------------

    /// Finds the BAR decoding `addr` in I/O (`io`) or memory space.
    fn route(&self, addr: u64, io: bool) -> Option<(u8, u64)> {
        let d = self.dev.nic();
        match d.pci() {
            Some(p) => p.decode(addr, io),
            None => {
                let isa = d.isa()?;
                let base = isa.iobase as u64;
                (io && addr >= base && addr - base < isa.ports as u64).then(|| (0, addr - base))
            }
        }
    }

    fn bus_read(&mut self, addr: u64, size: u8, io: bool) -> u32 {
        match self.route(addr, io) {
            Some((bar, off)) => self.with_nic(|d| d.bar_read(bar, off, size)),
            None => {
                self.note_miss("read", addr, size, io, None);
                u32::MAX >> (32 - 8 * size.clamp(1, 4) as u32)
            }
        }
    }

    fn bus_write(&mut self, addr: u64, size: u8, value: u32, io: bool) {
        match self.route(addr, io) {
            Some((bar, off)) => self.with_nic(|d| d.bar_write(bar, off, size, value)),
            None => self.note_miss("write", addr, size, io, Some(value)),
        }
    }

    fn note_miss(&self, what: &str, addr: u64, size: u8, io: bool, value: Option<u32>) {
        let space = if io { "I/O port" } else { "memory address" };
        let decoding = match self.dev.nic().pci() {
            Some(p) if io && p.command() & command::IO == 0 => " (I/O decoding is off)",
            Some(p) if !io && p.command() & command::MEMORY == 0 => " (memory decoding is off)",
            _ => "",
        };
        let value = value.map(|v| format!(" of {v:#x}")).unwrap_or_default();
        self.logs.push(format!(
            "BUS   {size}-byte {what}{value} at {space} {addr:#x} reaches no BAR{decoding}: \
             master abort"
        ));
    }

    /// A memory read of `size` (1, 2 or 4) bytes at bus address `addr`, routed to the
    /// BAR that decodes it. An address no BAR decodes reads all-ones, like a master
    /// abort, and is noted in the log.
    pub fn mmio_read(&mut self, addr: u64, size: u8) -> u32 {
        self.bus_read(addr, size, false)
    }

    /// A memory write at bus address `addr`, routed like [`Bench::mmio_read`]; a write no
    /// BAR decodes is dropped and noted in the log.
    pub fn mmio_write(&mut self, addr: u64, size: u8, value: u32) {
        self.bus_write(addr, size, value, false)
    }

    /// An I/O read of `size` bytes at `port`, routed to the I/O BAR (or ISA window)
    /// that decodes it.
    pub fn io_read(&mut self, port: u64, size: u8) -> u32 {
        self.bus_read(port, size, true)
    }

    /// An I/O write at `port`, routed like [`Bench::io_read`].
    pub fn io_write(&mut self, port: u64, size: u8, value: u32) {
        self.bus_write(port, size, value, true)
    }

    // ---- Guest memory ---------------------------------------------------------------

    /// Guest RAM (clones share it), for `vm_memory::Bytes` calls.
    pub fn memory(&self) -> &TestMemory {
        &self.mem
    }

    /// The guest CPU writes `data` at guest physical `addr`.
    ///
    /// # Panics
    /// If the range is outside the bench's RAM: that is a bug in the test.
    pub fn write_mem(&self, addr: u64, data: &[u8]) {
        self.mem
            .write_slice(data, GuestAddress(addr))
            .unwrap_or_else(|e| panic!("test writes {} bytes at {addr:#x}: {e}", data.len()));
    }

    /// Reads `len` bytes of guest RAM at `addr`.
    ///
    /// # Panics
    /// If the range is outside the bench's RAM.
    pub fn read_mem(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.mem
            .read_slice(&mut buf, GuestAddress(addr))
            .unwrap_or_else(|e| panic!("test reads {len} bytes at {addr:#x}: {e}"));
        buf
    }

    /// Little-endian u32 at `addr` of guest RAM.
    pub fn read_u32(&self, addr: u64) -> u32 {
        let b = self.read_mem(addr, 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    // ---- Interrupts and time ---------------------------------------------------------

    /// The interrupt line (level and every transition).
    pub fn irq(&self) -> &IrqRecorder {
        &self.irq
    }

    /// The clock the device runs on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Moves the clock forward by `ns` and runs every device timer that became due (as
    /// an event loop would). Returns how many rounds of timers ran.
    ///
    /// # Panics
    /// If timers are still due after [`TIMER_ROUNDS`] rounds (a model bug).
    pub fn advance(&mut self, ns: u64) -> usize {
        self.clock.advance(ns);
        let now = vm_nic_devices::Clock::now_ns(&self.clock);
        let mut rounds = 0;
        while self.dev.nic().next_deadline().is_some_and(|d| d <= now) {
            assert!(
                rounds < TIMER_ROUNDS,
                "device timers still due after {TIMER_ROUNDS} rounds"
            );
            self.with_nic(|d| d.run_timers());
            rounds += 1;
        }
        rounds
    }

    // ---- The network -------------------------------------------------------------------

    /// Offers `frame` to the device as if it arrived from the wire, and says what became
    /// of it. ([`RxOutcome::NoBuffer`]: an event loop would keep it and offer it again.)
    pub fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        self.with_nic(|d| d.receive(frame))
    }

    /// Tells the device its link partner came or went.
    pub fn set_link(&mut self, up: bool) {
        self.net.set_link(up);
        self.with_nic(|d| d.set_link(up))
    }

    /// The recording backend's handle (counters, GSO frames, link).
    pub fn network(&self) -> &RecordingHandle {
        &self.net
    }

    fn collect_sent(&mut self) {
        self.sent.extend(self.net.take_sent());
    }

    /// Removes and returns every frame the device transmitted and the test has not
    /// consumed yet, oldest first.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        self.collect_sent();
        self.sent.drain(..).collect()
    }

    /// Removes and returns the oldest transmitted frame not consumed yet.
    pub fn next_sent(&mut self) -> Option<Vec<u8>> {
        self.collect_sent();
        self.sent.pop_front()
    }

    // ---- Logs and registers -------------------------------------------------------------

    /// The lines the model (and the bench's bus) logged so far, oldest first.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lines()
    }

    /// Removes and returns the lines logged so far.
    pub fn take_logs(&self) -> Vec<String> {
        self.logs.take()
    }

    /// The bench's log capture (clones share its lines).
    pub fn log_capture(&self) -> &LogCapture {
        &self.logs
    }

    /// The device's registers as [`BenchDevice::registers`] reads them (no side effects).
    pub fn registers(&self) -> Vec<RegisterValue> {
        self.dev.registers()
    }

    /// Register `name` of [`Bench::registers`], if the view has it.
    pub fn register(&self, name: &str) -> Option<u64> {
        self.registers()
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
    }
}

#[cfg(test)]
mod tests;

/// The guides under `docs/`, compiled and run as doc-tests so every Rust block in them
/// keeps working.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../docs/integrating.md")]
    struct Integrating;

    #[doc = include_str!("../../docs/driver-testing.md")]
    struct DriverTesting;
}
