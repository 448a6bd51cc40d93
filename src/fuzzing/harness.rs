//! The harness: one device, its RAM, clock, interrupt line and network, driven op by op
//! with every oracle checked after each op.

use std::sync::{Arc, Mutex};

use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_backends::{FrameQueue, MacAddr};
use vm_nic_devices::clock::Clock;
use vm_nic_devices::models::{self, ModelError};
use vm_nic_devices::pci::{reg, status, BarKind};
use vm_nic_devices::{IrqRecorder, ManualClock, NicConfig, NicDevice, RxOutcome};

use crate::fuzzing::guard::{lock, GuardState, GuardedBackend};
use crate::fuzzing::kind::{DeviceKind, Limits};
use crate::fuzzing::layout::{DESCRIPTOR_SIZE, RAM_SIZE, RING_ENTRIES, RX_RING, TX_RING};
use crate::fuzzing::op::{Op, RingSel, MAX_DESCRIPTORS_PER_OP, MAX_PATTERN, MAX_RX_FRAME};
use crate::fuzzing::outcome::{IntxEdge, Outcome, Read, RxEvent, TxFrame, Violation};
use crate::fuzzing::ram::{FuzzMemory, Ram};
use crate::fuzzing::setup::{BarInfo, Setup};

/// How a run is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// The device's MAC.
    pub mac: MacAddr,
    /// Frames whose bytes the [`Outcome`] keeps (all are counted and checked).
    pub keep_frames: usize,
    /// Read the interrupt causes and mask after each op to check the interrupt request
    /// against them ([`crate::fuzzing::Limits::cause_mask`]).
    pub check_cause_mask: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            mac: MacAddr::QEMU_DEFAULT,
            keep_frames: 256,
            check_cause_mask: true,
        }
    }
}

/// Rounds of `run_timers` one [`Op::AdvanceClock`] may take before the harness declares
/// a [`Violation::TimerStorm`].
const TIMER_ROUNDS: usize = 16;

/// One device under test. Build it with [`Harness::new`], run ops with
/// [`Harness::step`] / [`Harness::run`], and read what happened from
/// [`Harness::outcome`]. Property tests may also reach the device, RAM and network
/// directly between steps.
pub struct Harness {
    kind: DeviceKind,
    limits: Limits,
    cfg: RunConfig,
    dev: Box<dyn NicDevice<FuzzMemory>>,
    ram: Ram,
    clock: ManualClock,
    irq: IrqRecorder,
    net: RecordingHandle,
    guard: Arc<Mutex<GuardState>>,
    bars: Vec<BarInfo>,
    rx_buf: Vec<u8>,
    held: Option<Vec<u8>>,
    irq_seen: usize,
    outcome: Outcome,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("kind", &self.kind)
            .field("ops_run", &self.outcome.ops_run)
            .finish()
    }
}

impl Harness {
    /// Builds `kind` with the default [`RunConfig`]. Fails with the model's error, e.g.
    /// [`ModelError::NotSupported`] while a model is not in this build.
    pub fn new(kind: DeviceKind) -> Result<Harness, ModelError> {
        Harness::with_config(kind, RunConfig::default())
    }

    /// Builds `kind` through [`models::create`] over fresh RAM, a [`RecordingBackend`],
    /// an [`IrqRecorder`] and a [`ManualClock`] at 0.
    pub fn with_config(kind: DeviceKind, cfg: RunConfig) -> Result<Harness, ModelError> {
        Harness::with_device(kind, kind.limits(), cfg, |nic| {
            models::create(kind.model(), &kind.props(), nic)
        })
    }

    /// Builds the device `make` returns from the harness's surroundings, to fuzz a model
    /// of your own (or one configured differently): `kind` chooses the descriptor layout
    /// and setup prologue, `limits` the oracles' bounds.
    pub fn with_device<F>(
        kind: DeviceKind,
        limits: Limits,
        cfg: RunConfig,
        make: F,
    ) -> Result<Harness, ModelError>
    where
        F: FnOnce(NicConfig<FuzzMemory>) -> Result<Box<dyn NicDevice<FuzzMemory>>, ModelError>,
    {
        let ram = Ram::new();
        let clock = ManualClock::new();
        let irq = IrqRecorder::new();
        let (inner, net) = RecordingBackend::new();
        let guard = Arc::new(Mutex::new(GuardState {
            in_bar_write: false,
            op: 0,
            max_frame: limits.max_tx_frame,
            keep_left: cfg.keep_frames,
            sent: 0,
            sent_this_op: 0,
            violation: None,
        }));
        let backend = GuardedBackend {
            inner,
            state: guard.clone(),
        };
        let dev = make(NicConfig {
            mac: cfg.mac,
            backend: Box::new(backend),
            irq: Box::new(irq.clone()),
            clock: Arc::new(clock.clone()),
            memory: ram.memory().clone(),
        })?;
        let bars = bars_of(dev.as_ref());
        Ok(Harness {
            kind,
            limits,
            cfg,
            dev,
            ram,
            clock,
            irq,
            net,
            guard,
            bars,
            rx_buf: Vec::new(),
            held: None,
            irq_seen: 0,
            outcome: Outcome::default(),
        })
    }

    /// The kind under test.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The device's BARs (for an ISA device, its I/O window as BAR 0).
    pub fn bars(&self) -> &[BarInfo] {
        &self.bars
    }

    /// The prologue ops for `setup` (see [`Setup::ops`]).
    pub fn setup_ops(&self, setup: Setup) -> Vec<Op> {
        setup.ops(self.kind, &self.bars, self.cfg.mac.bytes())
    }

    /// The device, for checks an op cannot express.
    pub fn device(&mut self) -> &mut dyn NicDevice<FuzzMemory> {
        self.dev.as_mut()
    }

    /// Guest RAM.
    pub fn ram(&mut self) -> &mut Ram {
        &mut self.ram
    }

    /// The network side: inject frames, read counters.
    pub fn net(&self) -> &RecordingHandle {
        &self.net
    }

    /// The interrupt line.
    pub fn irq(&self) -> &IrqRecorder {
        &self.irq
    }

    /// The clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// What happened so far.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Ends the run.
    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// Runs `ops` in order, stopping at the first violation.
    pub fn run(&mut self, ops: &[Op]) -> Result<(), Violation> {
        ops.iter().try_for_each(|op| self.step(op))
    }

    /// Runs one op, lets the device receive what the network has for it (as an event
    /// loop would), and checks every oracle. After a violation the harness refuses
    /// further ops and returns the same violation.
    pub fn step(&mut self, op: &Op) -> Result<(), Violation> {
        if let Some(v) = &self.outcome.violation {
            return Err(v.clone());
        }
        let i = self.outcome.ops_run;
        self.outcome.ops_run += 1;
        {
            let mut g = lock(&self.guard);
            g.op = i;
            g.sent_this_op = 0;
        }
        let work_before = self.dev.work_done();
        let bm_before = self.bus_master();
        let timer_result = self.apply(i, op);
        let offered = self.pump_rx(i);
        let work = self.dev.work_done().saturating_sub(work_before);
        self.outcome.work.push(work);
        let budget = self
            .limits
            .work_per_op
            .saturating_add(offered.saturating_mul(self.limits.work_per_rx_frame));
        let result = timer_result
            .and_then(|()| self.collect_frames(i))
            .and_then(|()| {
                check(
                    work <= budget,
                    Violation::WorkBudget {
                        op: i,
                        work,
                        budget,
                    },
                )
            })
            .and_then(|()| self.collect_irq(i))
            .and_then(|()| self.collect_dma(i, bm_before))
            .and_then(|()| self.check_intx(i));
        if let Err(v) = &result {
            log::debug!("{}: {v}", self.kind);
            self.outcome.violation = Some(v.clone());
        }
        result
    }

    fn apply(&mut self, i: usize, op: &Op) -> Result<(), Violation> {
        match op {
            Op::ConfigRead { offset, width } => {
                let value = self.dev.config_read(*offset as u16, width.bytes());
                self.outcome.reads.push(Read { op: i, value });
            }
            Op::ConfigWrite {
                offset,
                width,
                value,
            } => self.dev.config_write(*offset as u16, width.bytes(), *value),
            Op::BarRead { bar, offset, width } => {
                if let Some((index, off)) = self.resolve_bar(*bar, *offset, width.bytes()) {
                    let value = self.dev.bar_read(index, off, width.bytes());
                    self.outcome.reads.push(Read { op: i, value });
                }
            }
            Op::BarWrite {
                bar,
                offset,
                width,
                value,
            } => {
                if let Some((index, off)) = self.resolve_bar(*bar, *offset, width.bytes()) {
                    lock(&self.guard).in_bar_write = true;
                    self.dev.bar_write(index, off, width.bytes(), *value);
                    lock(&self.guard).in_bar_write = false;
                }
            }
            Op::FillMemory { addr, len, pattern } => self.fill(*addr, *len, pattern),
            Op::PlaceRing {
                ring,
                first,
                descriptors,
            } => self.place_ring(*ring, *first, descriptors),
            Op::Receive {
                dest,
                len,
                fill,
                head,
            } => {
                let frame = Op::build_frame(*dest, *len, *fill, head, self.cfg.mac.bytes());
                // A full queue refuses the frame: that is the bounded queue doing its job.
                let _ = self.net.inject(&frame);
            }
            Op::AdvanceClock { ns } => return self.advance_clock(i, *ns as u64),
            Op::Link { up } => {
                self.net.set_link(*up);
                self.dev.set_link(*up);
            }
            Op::Reset => self.dev.reset(),
        }
        Ok(())
    }

    fn resolve_bar(&self, bar: u8, offset: u32, width: u8) -> Option<(u8, u64)> {
        if self.bars.is_empty() {
            return None;
        }
        let b = self.bars[bar as usize % self.bars.len()];
        let span = b.size.checked_sub(width as u64)? + 1;
        Some((b.index, offset as u64 % span))
    }

    fn fill(&mut self, addr: u32, len: u16, pattern: &[u8]) {
        let pattern = if pattern.is_empty() {
            &[0u8][..]
        } else {
            &pattern[..pattern.len().min(MAX_PATTERN)]
        };
        let len = len as usize;
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(&pattern[..pattern.len().min(len)]);
        while data.len() < len {
            // Doubling keeps a 64 KiB fill to a few large copies.
            let n = data.len().min(len - data.len());
            data.extend_from_within(..n);
        }
        self.ram.guest_write(addr as u64 % RAM_SIZE, &data);
    }

    fn place_ring(&mut self, ring: RingSel, first: u8, descriptors: &[crate::fuzzing::Descriptor]) {
        if self.kind.descriptor_layout().is_none() {
            return;
        }
        for (n, d) in descriptors.iter().take(MAX_DESCRIPTORS_PER_OP).enumerate() {
            let index = first as u64 + n as u64;
            let addr = match ring {
                RingSel::Tx => TX_RING + (index % RING_ENTRIES) * DESCRIPTOR_SIZE,
                RingSel::Rx => RX_RING + (index % RING_ENTRIES) * DESCRIPTOR_SIZE,
                RingSel::At(base) => (base as u64 + index * DESCRIPTOR_SIZE) % RAM_SIZE,
            };
            let bytes = self.kind.descriptor_bytes(d);
            self.ram.guest_write(addr, &bytes);
        }
    }

    fn advance_clock(&mut self, i: usize, ns: u64) -> Result<(), Violation> {
        self.clock.advance(ns);
        let now = self.clock.now_ns();
        for _ in 0..TIMER_ROUNDS {
            match self.dev.next_deadline() {
                Some(d) if d <= now => self.dev.run_timers(),
                _ => return Ok(()),
            }
        }
        match self.dev.next_deadline() {
            Some(deadline) if deadline <= now => Err(Violation::TimerStorm {
                op: i,
                deadline,
                now,
            }),
            _ => Ok(()),
        }
    }

    /// Offers queued frames while the device can take them; returns how many were
    /// offered. A frame refused with [`RxOutcome::NoBuffer`] is kept and offered first
    /// next time, as the event loop does.
    fn pump_rx(&mut self, i: usize) -> u64 {
        let mut offered = 0;
        if self.held.is_none() && !self.dev.backend().has_pending() {
            return 0;
        }
        self.rx_buf.resize(MAX_RX_FRAME, 0);
        for _ in 0..=FrameQueue::DEFAULT_MAX_FRAMES {
            if !self.dev.can_receive() {
                break;
            }
            let frame = match self.held.take() {
                Some(f) => f,
                None => match self.dev.backend_mut().recv(&mut self.rx_buf) {
                    Ok(Some(n)) => self.rx_buf[..n].to_vec(),
                    _ => break,
                },
            };
            offered += 1;
            let outcome = self.dev.receive(&frame);
            self.outcome.rx.push(RxEvent {
                op: i,
                len: frame.len(),
                outcome,
            });
            if outcome == RxOutcome::NoBuffer {
                self.held = Some(frame);
                break;
            }
        }
        offered
    }

    fn collect_frames(&mut self, i: usize) -> Result<(), Violation> {
        let violation = {
            let mut g = lock(&self.guard);
            self.outcome.frames_sent = g.sent;
            g.violation.take()
        };
        for data in self.net.take_sent() {
            self.outcome.frames.push(TxFrame { op: i, data });
        }
        violation.map_or(Ok(()), Err)
    }

    fn collect_irq(&mut self, i: usize) -> Result<(), Violation> {
        let transitions = self.irq.transitions();
        let mut last = self.outcome.intx.last().is_some_and(|e| e.level);
        for &level in &transitions[self.irq_seen.min(transitions.len())..] {
            check(level != last, Violation::IrqRepeat { op: i })?;
            last = level;
            self.outcome.intx.push(IntxEdge { op: i, level });
        }
        self.irq_seen = transitions.len();
        Ok(())
    }

    fn collect_dma(&mut self, i: usize, bm_before: bool) -> Result<(), Violation> {
        let first = self.outcome.dma_writes.len();
        let n = self
            .ram
            .collect_device_writes(i, &mut self.outcome.dma_writes);
        let allowed = self.limits.dma && (bm_before || self.bus_master());
        if n > 0 && !allowed {
            let w = &self.outcome.dma_writes[first];
            return Err(Violation::ForbiddenDma {
                op: i,
                addr: w.addr,
                len: w.data.len(),
            });
        }
        Ok(())
    }

    fn bus_master(&self) -> bool {
        self.dev.pci().is_some_and(|p| p.bus_master())
    }

    fn check_intx(&mut self, i: usize) -> Result<(), Violation> {
        let Some(pci) = self.dev.pci() else {
            return Ok(());
        };
        let status = pci.read(reg::STATUS, 2) as u16 & status::INTERRUPT != 0;
        let disabled = pci.intx_disabled();
        let line = self.irq.level();
        check(
            line == (status && !disabled),
            Violation::IntxLine {
                op: i,
                line,
                status,
                disabled,
            },
        )?;
        let Some(source) = self.limits.cause_mask.filter(|_| self.cfg.check_cause_mask) else {
            return Ok(());
        };
        let Some(s) = source.sample(self.dev.as_mut(), &self.bars) else {
            return Ok(());
        };
        let now = self.clock.now_ns();
        check(
            status == s.status_at(now),
            Violation::CauseMask {
                op: i,
                cause: s.cause,
                mask: s.mask,
                hold: s.hold,
                now,
                status,
            },
        )
    }
}

fn check(ok: bool, v: Violation) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(v)
    }
}

fn bars_of(dev: &dyn NicDevice<FuzzMemory>) -> Vec<BarInfo> {
    if let Some(pci) = dev.pci() {
        (0..6u8)
            .filter_map(|index| {
                pci.bar_spec(index).map(|s| BarInfo {
                    index,
                    kind: s.kind,
                    size: s.size,
                })
            })
            .collect()
    } else if let Some(isa) = dev.isa() {
        vec![BarInfo {
            index: 0,
            kind: BarKind::Io,
            size: isa.ports as u64,
        }]
    } else {
        Vec::new()
    }
}

/// Builds `kind`, runs `ops` with every oracle checked, and returns what happened
/// ([`Outcome::violation`] says which oracle broke, if one did). Fails only when the
/// model cannot be created, e.g. [`ModelError::NotSupported`] for a model not in this
/// build.
pub fn run_ops(kind: DeviceKind, ops: &[Op]) -> Result<Outcome, ModelError> {
    let mut h = Harness::new(kind)?;
    let _ = h.run(ops);
    Ok(h.into_outcome())
}

/// [`run_ops`] after the `setup` prologue (whose ops count in the outcome's indices).
pub fn run_ops_with_setup(
    kind: DeviceKind,
    setup: Setup,
    ops: &[Op],
) -> Result<Outcome, ModelError> {
    let mut h = Harness::new(kind)?;
    let prologue = h.setup_ops(setup);
    let _ = h.run(&prologue).and_then(|()| h.run(ops));
    Ok(h.into_outcome())
}

#[cfg(test)]
#[path = "harness_tests.rs"]
mod tests;
