//! Harness tests against a toy NIC whose misbehaviours can be switched on, so that every
//! oracle is shown to fire (and to stay quiet for a well-behaved device).

use super::*;
use crate::fuzzing::op::{RxDest, Width};
use crate::fuzzing::{CauseMask, CauseMaskRegs};
use vm_memory::{Bytes, GuestAddress};
use vm_nic_backends::NetBackend;
use vm_nic_devices::irq::Intx;
use vm_nic_devices::ne2000::registers::Isr;
use vm_nic_devices::ne2000::Ne2000State;
use vm_nic_devices::pci::{BarSpec, PciConfig, PciIds};
use vm_nic_devices::NicState;

const ISR: u32 = 0x00;
const IMR: u32 = 0x04;
const TX_ADDR: u32 = 0x08;
const TX_GO: u32 = 0x0c;
const RX_ADDR: u32 = 0x10;
const BUGS: u32 = 0x14;

const BUG_LOOP: u32 = 1 << 0;
const BUG_TX_ON_TIMER: u32 = 1 << 1;
const BUG_DMA_WITHOUT_BM: u32 = 1 << 2;
const BUG_IGNORE_INTX_DISABLE: u32 = 1 << 3;
const BUG_TIMER_STORM: u32 = 1 << 4;
const BUG_GIANT_FRAME: u32 = 1 << 5;
const BUG_STALE_STATUS: u32 = 1 << 6;

/// A NIC with one 256-byte BAR: a cause/mask pair, a one-shot transmit of `len` bytes
/// from `TX_ADDR`, and a receive buffer at `RX_ADDR`.
struct Toy {
    pci: PciConfig,
    intx: Intx,
    line: Box<dyn vm_nic_devices::IrqLine>,
    backend: Box<dyn NetBackend>,
    mem: FuzzMemory,
    regs: [u32; 6],
    work: u64,
    /// Reports ISR and IMR as an NE2000's saved state.
    as_ne2000: bool,
}

impl Toy {
    fn new(cfg: NicConfig<FuzzMemory>) -> Toy {
        let ids = PciIds {
            vendor: 0x1234,
            device: 0x5678,
            revision: 0,
            class: 0x02_0000,
            subsystem_vendor: 0,
            subsystem: 0,
            interrupt_pin: 1,
        };
        Toy {
            pci: PciConfig::new(ids, &[Some(BarSpec::mem32(256))]),
            intx: Intx::new(cfg.irq),
            line: Box::new(vm_nic_devices::NoIrq),
            backend: cfg.backend,
            mem: cfg.memory,
            regs: [0; 6],
            work: 0,
            as_ne2000: false,
        }
    }

    fn bug(&self, b: u32) -> bool {
        self.regs[(BUGS / 4) as usize] & b != 0
    }

    fn update_irq(&mut self) {
        if self.bug(BUG_STALE_STATUS) {
            return;
        }
        let level = self.regs[0] & self.regs[1] != 0;
        if self.bug(BUG_IGNORE_INTX_DISABLE) {
            // Drives the recorder directly, ignoring the command register.
            self.pci.set_interrupt_status(level);
            self.intx.update(level);
        } else {
            self.intx.update_pci(level, &mut self.pci);
        }
    }

    fn transmit(&mut self, len: u32) {
        if !self.pci.bus_master() {
            return;
        }
        let len = if self.bug(BUG_GIANT_FRAME) {
            70_000
        } else {
            len as usize & 0xfff
        };
        let mut frame = vec![0u8; len];
        let _ = self
            .mem
            .read_slice(&mut frame, GuestAddress(self.regs[2] as u64));
        self.work += 1 + len as u64 / 64;
        if self.bug(BUG_LOOP) {
            self.work += 1 << 40;
        }
        let _ = self.backend.send(&frame);
        self.regs[0] |= 2;
        self.update_irq();
    }
}

impl vm_nic_devices::NicDevice<FuzzMemory> for Toy {
    fn model(&self) -> &'static str {
        "toy"
    }
    fn mac(&self) -> MacAddr {
        MacAddr::QEMU_DEFAULT
    }
    fn pci(&self) -> Option<&PciConfig> {
        Some(&self.pci)
    }
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.pci.read(offset, size)
    }
    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.pci.write(offset, size, value);
        let level = self.intx.requested();
        if !self.bug(BUG_IGNORE_INTX_DISABLE) {
            self.intx.update_pci(level, &mut self.pci);
        }
    }
    fn bar_read(&mut self, _bar: u8, offset: u64, _size: u8) -> u32 {
        self.regs.get(offset as usize / 4).copied().unwrap_or(0)
    }
    fn bar_write(&mut self, _bar: u8, offset: u64, _size: u8, value: u32) {
        match offset as u32 {
            ISR => {
                self.regs[0] &= !value;
                self.update_irq();
            }
            IMR => {
                self.regs[1] = value;
                self.update_irq();
            }
            TX_GO => self.transmit(value),
            o if (o as usize / 4) < self.regs.len() => self.regs[o as usize / 4] = value,
            _ => {}
        }
    }
    fn set_memory(&mut self, mem: FuzzMemory) {
        self.mem = mem;
    }
    fn can_receive(&self) -> bool {
        self.regs[4] != 0
    }
    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        if !self.pci.bus_master() && !self.bug(BUG_DMA_WITHOUT_BM) {
            return RxOutcome::NoBuffer;
        }
        self.work += 1 + frame.len() as u64 / 64;
        if self
            .mem
            .write_slice(frame, GuestAddress(self.regs[4] as u64))
            .is_err()
        {
            return RxOutcome::Dropped;
        }
        self.regs[0] |= 1;
        self.update_irq();
        RxOutcome::Accepted
    }
    fn set_link(&mut self, _up: bool) {}
    fn next_deadline(&self) -> Option<u64> {
        (self.bug(BUG_TIMER_STORM) || self.bug(BUG_TX_ON_TIMER)).then_some(0)
    }
    fn run_timers(&mut self) {
        if self.bug(BUG_TX_ON_TIMER) {
            let _ = self.backend.send(&[0; 60]);
            self.regs[5] &= !BUG_TX_ON_TIMER;
        }
    }
    fn reset(&mut self) {
        self.pci.reset();
        self.regs = [0; 6];
        self.intx.update_pci(false, &mut self.pci);
        let _ = &self.line;
    }
    fn backend(&self) -> &dyn NetBackend {
        self.backend.as_ref()
    }
    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        self.backend.as_mut()
    }
    fn work_done(&self) -> u64 {
        self.work
    }
    fn save_state(&self) -> Option<NicState> {
        self.as_ne2000.then(|| {
            NicState::Ne2000(Ne2000State {
                isr: Isr::from_bits_retain(self.regs[0] as u8),
                imr: Isr::from_bits_retain(self.regs[1] as u8),
                ..Ne2000State::default()
            })
        })
    }
}

fn toy_limits() -> Limits {
    Limits {
        max_tx_frame: 4096 + 4,
        work_per_op: 1000,
        work_per_rx_frame: 1100,
        dma: true,
        cause_mask: Some(CauseMask::Registers(CauseMaskRegs {
            bar: 0,
            cause: ISR as u64,
            mask: IMR as u64,
            width: 4,
        })),
    }
}

fn toy() -> Harness {
    let limits = toy_limits();
    let mut h = Harness::with_device(DeviceKind::E1000, limits, RunConfig::default(), |nic| {
        Ok(Box::new(Toy::new(nic)))
    })
    .unwrap();
    let prologue = h.setup_ops(Setup::PciOnly);
    h.run(&prologue).unwrap();
    h
}

fn w(offset: u32, value: u32) -> Op {
    Op::BarWrite {
        bar: 0,
        offset,
        width: Width::Dword,
        value,
    }
}

fn rx(len: u16) -> Op {
    Op::Receive {
        dest: RxDest::Broadcast,
        len,
        fill: 0xab,
        head: vec![],
    }
}

#[test]
fn a_well_behaved_device_breaks_no_oracle_and_everything_is_recorded() {
    let mut h = toy();
    let ops = [
        Op::FillMemory {
            addr: 0x4000,
            len: 64,
            pattern: vec![1, 2, 3],
        },
        w(IMR, 3),
        w(TX_ADDR, 0x4000),
        w(TX_GO, 64),
        w(RX_ADDR, 0x1_fff0), // crosses the region boundary
        rx(100),
        Op::BarRead {
            bar: 7,
            offset: 0x100 + ISR,
            width: Width::Dword,
        },
        w(ISR, 3),
        Op::AdvanceClock { ns: 1000 },
        Op::Reset,
    ];
    h.run(&ops).unwrap();
    let base = 2; // BAR0 write, command write, then ours
    let out = h.outcome();
    assert_eq!(out.ops_run, base + ops.len());
    assert_eq!(out.frames_sent, 1);
    let expect: Vec<u8> = [1u8, 2, 3].iter().copied().cycle().take(64).collect();
    assert_eq!(out.frames[0].data, expect);
    assert_eq!(out.frames[0].op, base + 3);
    assert_eq!(out.rx.len(), 1);
    assert_eq!(out.rx[0].outcome, RxOutcome::Accepted);
    let dma = &out.dma_writes[0];
    assert_eq!(
        (dma.op, dma.addr, dma.data.len()),
        (base + 5, 0x1_fff0, 100)
    );
    assert_eq!(&dma.data[..6], &[0xff; 6]);
    // BAR 7 wraps to BAR0; offset 0x100 wraps to 0 inside the 256-byte BAR.
    assert_eq!(out.reads.last().unwrap().value, 3);
    let levels: Vec<bool> = out.intx.iter().map(|e| e.level).collect();
    assert_eq!(levels, vec![true, false]);
    assert!(out.violation.is_none());
}

#[test]
fn frames_wait_in_the_queue_until_the_device_can_take_them() {
    let mut h = toy();
    h.run(&[rx(60), rx(61)]).unwrap();
    assert!(h.outcome().rx.is_empty(), "no receive buffer yet");
    assert_eq!(h.net().pending(), 2);
    // Bus mastering off: the device answers NoBuffer and the frame is held, not lost.
    h.run(&[
        Op::ConfigWrite {
            offset: 4,
            width: Width::Word,
            value: 3,
        },
        w(RX_ADDR, 0x5000),
    ])
    .unwrap();
    assert_eq!(h.outcome().rx.last().unwrap().outcome, RxOutcome::NoBuffer);
    h.step(&Op::ConfigWrite {
        offset: 4,
        width: Width::Word,
        value: 7,
    })
    .unwrap();
    let lens: Vec<usize> = h.outcome().rx.iter().map(|r| r.len).collect();
    assert_eq!(lens, vec![60, 60, 61]);
}

fn violation_with(bug: u32, ops: &[Op]) -> Violation {
    let mut h = toy();
    h.run(&[w(BUGS, bug)]).unwrap();
    let err = h.run(ops).unwrap_err();
    assert_eq!(h.outcome().violation.as_ref(), Some(&err));
    assert_eq!(
        h.step(&Op::Reset),
        Err(err.clone()),
        "the run stays stopped"
    );
    err
}

#[test]
fn an_unbounded_loop_breaks_the_work_budget() {
    let v = violation_with(BUG_LOOP, &[w(TX_GO, 60)]);
    assert!(matches!(v, Violation::WorkBudget { work, budget: 1000, .. } if work > 1 << 40));
}

#[test]
fn a_frame_the_guest_did_not_post_is_caught() {
    let v = violation_with(BUG_TX_ON_TIMER, &[Op::AdvanceClock { ns: 1 }]);
    assert!(matches!(v, Violation::UnpostedFrame { len: 60, .. }), "{v}");
}

#[test]
fn dma_without_bus_mastering_is_caught() {
    let v = violation_with(
        BUG_DMA_WITHOUT_BM,
        &[
            Op::ConfigWrite {
                offset: 4,
                width: Width::Word,
                value: 3,
            },
            w(RX_ADDR, 0x6000),
            rx(80),
        ],
    );
    assert!(
        matches!(
            v,
            Violation::ForbiddenDma {
                addr: 0x6000,
                len: 80,
                ..
            }
        ),
        "{v}"
    );
}

#[test]
fn a_line_ignoring_interrupt_disable_is_caught() {
    let v = violation_with(
        BUG_IGNORE_INTX_DISABLE,
        &[
            Op::ConfigWrite {
                offset: 4,
                width: Width::Word,
                value: 0x407,
            },
            w(IMR, 1),
            w(RX_ADDR, 0x6000),
            rx(80),
        ],
    );
    assert!(
        matches!(
            v,
            Violation::IntxLine {
                line: true,
                status: true,
                disabled: true,
                ..
            }
        ),
        "{v}"
    );
}

#[test]
fn a_status_bit_out_of_step_with_cause_and_mask_is_caught() {
    let v = violation_with(BUG_STALE_STATUS, &[w(IMR, 1), w(RX_ADDR, 0x6000), rx(80)]);
    assert!(
        matches!(
            v,
            Violation::CauseMask {
                cause: 1,
                mask: 1,
                status: false,
                ..
            }
        ),
        "{v}"
    );
}

#[test]
fn a_timer_that_never_settles_is_caught() {
    let v = violation_with(BUG_TIMER_STORM, &[Op::AdvanceClock { ns: 5 }]);
    assert!(
        matches!(
            v,
            Violation::TimerStorm {
                deadline: 0,
                now: 5,
                ..
            }
        ),
        "{v}"
    );
}

#[test]
fn an_oversized_frame_is_caught() {
    let v = violation_with(BUG_GIANT_FRAME, &[w(TX_GO, 60)]);
    assert!(
        matches!(
            v,
            Violation::FrameTooLong {
                len: 70_000,
                max: 4100,
                ..
            }
        ),
        "{v}"
    );
}

#[test]
fn frames_beyond_keep_are_counted_not_stored() {
    let cfg = RunConfig {
        keep_frames: 2,
        ..RunConfig::default()
    };
    let mut h = Harness::with_device(DeviceKind::E1000, DeviceKind::E1000.limits(), cfg, |nic| {
        Ok(Box::new(Toy::new(nic)))
    })
    .unwrap();
    let prologue = h.setup_ops(Setup::PciOnly);
    h.run(&prologue).unwrap();
    h.run(&[w(TX_GO, 60), w(TX_GO, 61), w(TX_GO, 62)]).unwrap();
    assert_eq!(h.outcome().frames_sent, 3);
    assert_eq!(h.outcome().frames.len(), 2);
}

#[test]
fn models_not_in_the_build_are_reported_not_faked() {
    for kind in DeviceKind::ALL {
        match run_ops(kind, &[]) {
            Ok(out) => assert!(out.violation.is_none(), "{kind}: {:?}", out.violation),
            Err(e) => assert!(matches!(e, ModelError::NotSupported(_)), "{kind}: {e}"),
        }
    }
}

fn write(offset: u32, width: Width, value: u32) -> Op {
    Op::BarWrite {
        bar: 0,
        offset,
        width,
        value,
    }
}

fn read(offset: u32, width: Width) -> Op {
    Op::BarRead {
        bar: 0,
        offset,
        width,
    }
}

/// A real model after the driver prologue.
fn driven(kind: DeviceKind) -> Harness {
    let mut h = Harness::new(kind).unwrap();
    let prologue = h.setup_ops(Setup::Driver);
    h.run(&prologue).unwrap();
    h
}

use vm_nic_devices::e1000::regs::icr::RXT0 as E1000_RXT0;
use vm_nic_devices::e1000::regs::{
    ICR as E1000_ICR, ICS as E1000_ICS, IMC as E1000_IMC, IMS as E1000_IMS, ITR as E1000_ITR,
};

#[test]
fn the_saved_state_oracle_passes_the_real_e1000s_and_ne2k_pci() {
    for kind in [
        DeviceKind::E1000,
        DeviceKind::E1000_82544GC,
        DeviceKind::E1000_82545EM,
    ] {
        assert_eq!(kind.limits().cause_mask, Some(CauseMask::SavedState));
        let mut h = driven(kind);
        let d = Width::Dword;
        h.run(&[
            read(E1000_ICR, d), // clears LSC from auto-negotiation
            rx(100),            // RXT0
            write(E1000_IMC, d, E1000_RXT0),
            write(E1000_IMS, d, E1000_RXT0),
            read(E1000_ICR, d),
            write(0x2820, d, 100), // RDTR: 102.4 us delay
            write(0x282c, d, 200), // RADV
            rx(100),
            Op::AdvanceClock { ns: 50_000 },
            Op::AdvanceClock { ns: 60_000 }, // RDTR expires: RXT0
            write(E1000_ICR, d, E1000_RXT0),
            write(E1000_ICS, d, 1 << 2),
            Op::Reset,
        ])
        .unwrap_or_else(|v| panic!("{kind}: {v}"));
        let rises = h.outcome().intx.iter().filter(|e| e.level).count();
        assert!(rises >= 4, "{kind}: {rises} rising edges");
    }
    let mut h = driven(DeviceKind::Ne2kPci);
    let b = Width::Byte;
    h.run(&[
        write(0x0f, b, 0xff), // IMR: every source, and the reserved bit 7
        rx(100),              // PRX
        read(0x07, b),
        write(0x07, b, 0x7f), // ISR: clear every source
        write(0x00, b, 0x21), // CR: STP sets ISR.RST, which raises nothing
        write(0x07, b, 0xff),
    ])
    .unwrap();
    let levels: Vec<bool> = h.outcome().intx.iter().map(|e| e.level).collect();
    assert!(levels.ends_with(&[true, false]), "{levels:?}");
    let Some(NicState::Ne2000(s)) = h.device().save_state() else {
        panic!("no NE2000 state");
    };
    assert_eq!(s.isr.bits() & 0x80, 0x80, "RST set, line low");
}

#[test]
fn an_e1000_throttle_hold_is_accepted_until_its_deadline() {
    let mut h = driven(DeviceKind::E1000);
    let d = Width::Dword;
    h.run(&[
        read(E1000_ICR, d),
        write(E1000_ITR, d, 1000), // 256 us between assertions
        write(E1000_ICS, d, E1000_RXT0),
        read(E1000_ICR, d),
        write(E1000_ICS, d, E1000_RXT0), // inside the interval: held back
    ])
    .unwrap();
    let Some(NicState::E1000(s)) = h.device().save_state() else {
        panic!("no e1000 state");
    };
    let now = h.clock().now_ns();
    assert_eq!(
        s.irq_timers[0],
        Some(now + 256_000),
        "the hold the oracle accepted"
    );
    assert!(!h.irq().level());
    h.run(&[Op::AdvanceClock { ns: 255_999 }]).unwrap();
    assert!(!h.irq().level());
    h.run(&[Op::AdvanceClock { ns: 1 }]).unwrap();
    assert!(h.irq().level(), "released at the deadline");
}

/// The e1000 put (through `restore_state`) into a state with RXT0 pending and unmasked
/// and the line low, with the line last asserted `ago` ns before now and the ITR timer
/// armed `ahead` ns after now; then one op that changes nothing.
fn e1000_with_line_low(ago: Option<u64>, ahead: Option<u64>) -> Result<(), Violation> {
    let mut h = driven(DeviceKind::E1000);
    h.run(&[read(E1000_ICR, Width::Dword)]).unwrap();
    let now = h.clock().now_ns();
    let Some(NicState::E1000(mut s)) = h.device().save_state() else {
        panic!("no e1000 state");
    };
    s.regs[E1000_ICR as usize / 4] = E1000_RXT0;
    s.regs[E1000_IMS as usize / 4] = E1000_RXT0;
    s.irq_level = false;
    s.pci_config[reg::STATUS as usize] &= !(status::INTERRUPT as u8);
    s.last_assert = ago.map(|ns| now - ns);
    s.irq_timers[0] = ahead.map(|ns| now + ns);
    h.device().restore_state(&NicState::E1000(s)).unwrap();
    h.step(&Op::ConfigRead {
        offset: 0,
        width: Width::Word,
    })
}

#[test]
fn an_e1000_line_low_with_a_cause_pending_is_caught_unless_throttled() {
    const ITR_MAX: u64 = 0xffff * 256;
    let v = e1000_with_line_low(Some(1000), None).unwrap_err();
    assert!(
        matches!(
            v,
            Violation::CauseMask {
                cause: E1000_RXT0,
                mask: E1000_RXT0,
                hold: None,
                status: false,
                ..
            }
        ),
        "{v}"
    );
    e1000_with_line_low(Some(0), Some(1000)).unwrap();
    e1000_with_line_low(Some(1000), Some(ITR_MAX - 1000)).unwrap();
    for (ago, ahead) in [(Some(1000), ITR_MAX - 999), (None, 1000)] {
        let v = e1000_with_line_low(ago, Some(ahead)).unwrap_err();
        assert!(
            matches!(
                v,
                Violation::CauseMask {
                    hold: Some(_),
                    status: false,
                    ..
                }
            ),
            "{v}"
        );
    }
}

/// The toy, checked against the NE2000 state it reports (its cause and mask as ISR and
/// IMR), with BUGS set to `bug`.
fn toy_as_ne2000(bug: u32) -> Harness {
    let limits = Limits {
        cause_mask: Some(CauseMask::SavedState),
        ..toy_limits()
    };
    let mut h = Harness::with_device(DeviceKind::Ne2kPci, limits, RunConfig::default(), |nic| {
        let mut toy = Toy::new(nic);
        toy.as_ne2000 = true;
        Ok(Box::new(toy))
    })
    .unwrap();
    let prologue = h.setup_ops(Setup::PciOnly);
    h.run(&prologue).unwrap();
    h.run(&[w(BUGS, bug)]).unwrap();
    h
}

#[test]
fn an_ne2000_status_bit_out_of_step_with_isr_and_imr_is_caught() {
    let mut h = toy_as_ne2000(0);
    h.run(&[w(IMR, 1), w(RX_ADDR, 0x6000), rx(80), w(ISR, 1)])
        .unwrap();
    let mut h = toy_as_ne2000(BUG_STALE_STATUS);
    let v = h.run(&[w(IMR, 1), w(RX_ADDR, 0x6000), rx(80)]).unwrap_err();
    assert!(
        matches!(
            v,
            Violation::CauseMask {
                cause: 1,
                mask: 1,
                hold: None,
                status: false,
                ..
            }
        ),
        "{v}"
    );
}
