//! Assertions with the device's view of what went wrong.
//!
//! Every `check_*` method returns `Err(Failure)` when the expectation does not hold; the
//! matching `expect_*` method panics with the same message. A [`Failure`]'s text names
//! what was expected and what happened, then lists the device's registers (read without
//! side effects), the interrupt line, and the last lines the model logged — where a
//! model says why it ignored a doorbell or rejected a descriptor.

use vm_nic_devices::RxOutcome;

use super::{frame, Bench, BenchDevice};

/// Log lines a failure message shows at most (the most recent ones).
pub const LOG_LINES_SHOWN: usize = 20;

/// An expectation that did not hold, with the device's side of the story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What was expected and what happened, in one line (or a few, for frame diffs).
    pub what: String,
    /// The device's registers at the time, `NAME=0x..` separated by spaces.
    pub registers: String,
    /// The interrupt line: level and number of assertions so far.
    pub irq: String,
    /// The last [`LOG_LINES_SHOWN`] lines the model and the bench's bus logged.
    pub log: Vec<String>,
    /// A note when the bench could not capture logs.
    pub log_note: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.what)?;
        writeln!(f, "device registers: {}", self.registers)?;
        writeln!(f, "interrupt line: {}", self.irq)?;
        if let Some(note) = &self.log_note {
            writeln!(f, "device log: {note}")?;
        } else if self.log.is_empty() {
            writeln!(f, "device log: (nothing logged)")?;
        } else {
            writeln!(f, "device log (most recent last):")?;
            for l in &self.log {
                writeln!(f, "  {l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl<D: BenchDevice> Bench<D> {
    /// A [`Failure`] saying `what`, with the device's registers, interrupt line and
    /// recent log lines. For a driver's own checks.
    pub fn failure(&self, what: impl Into<String>) -> Failure {
        let registers = self
            .registers()
            .iter()
            .map(|(n, v)| format!("{n}={v:#x}"))
            .collect::<Vec<_>>()
            .join(" ");
        let irq = format!(
            "{} ({} assertions so far)",
            if self.irq.level() {
                "asserted"
            } else {
                "deasserted"
            },
            self.irq.assert_count()
        );
        let all = self.logs.lines();
        let log = all[all.len().saturating_sub(LOG_LINES_SHOWN)..].to_vec();
        let log_note = (!super::logs::install()).then(|| {
            "not captured: another `log` logger was installed before the bench".to_string()
        });
        Failure {
            what: format!("{}: {}", self.dev.nic().model(), what.into()),
            registers,
            irq,
            log,
            log_note,
        }
    }

    /// `Ok` if `ok`, else a [`Failure`] saying `what`.
    pub fn check(&self, ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
        if ok {
            Ok(())
        } else {
            Err(self.failure(what()))
        }
    }

    /// Consumes the oldest transmitted frame and checks it equals `expected`.
    pub fn check_sent(&mut self, expected: &[u8]) -> Result<(), Failure> {
        match self.next_sent() {
            None => Err(self.failure(format!(
                "expected the device to transmit a {}-byte frame; it transmitted nothing",
                expected.len()
            ))),
            Some(got) => match frame::diff(expected, &got) {
                None => Ok(()),
                Some(d) => Err(self.failure(format!("transmitted frame differs: {d}"))),
            },
        }
    }

    /// Checks that no frame was transmitted since the last one consumed.
    pub fn check_nothing_sent(&mut self) -> Result<(), Failure> {
        let sent = self.take_sent();
        let lens: Vec<usize> = sent.iter().map(Vec::len).collect();
        self.check(sent.is_empty(), || {
            format!(
                "expected no transmitted frame; the device sent {} (lengths {lens:?})",
                sent.len()
            )
        })
    }

    /// Offers `frame` and checks the device accepted it into the guest's buffers.
    pub fn check_received(&mut self, frame: &[u8]) -> Result<(), Failure> {
        let outcome = self.receive(frame);
        let ready = self.dev.nic().can_receive();
        self.check(outcome == RxOutcome::Accepted, || {
            format!(
                "expected the device to accept a {}-byte frame; it answered {outcome:?} \
                 (can_receive() is now {ready})",
                frame.len()
            )
        })
    }

    /// Checks register `name` of the device view equals `expected`.
    pub fn check_register(&self, name: &str, expected: u64) -> Result<(), Failure> {
        match self.register(name) {
            None => Err(self.failure(format!("the device view has no register {name}"))),
            Some(v) => self.check(v == expected, || {
                format!("expected {name}={expected:#x}, the device holds {v:#x}")
            }),
        }
    }

    /// Checks the interrupt line is at `level`.
    pub fn check_irq(&self, level: bool) -> Result<(), Failure> {
        let state = |l: bool| if l { "asserted" } else { "deasserted" };
        self.check(self.irq.level() == level, || {
            format!("expected the interrupt line {}", state(level))
        })
    }

    /// Checks guest RAM at `addr` holds `expected`.
    pub fn check_mem(&self, addr: u64, expected: &[u8]) -> Result<(), Failure> {
        let got = self.read_mem(addr, expected.len());
        match frame::diff(expected, &got) {
            None => Ok(()),
            Some(d) => Err(self.failure(format!("guest memory at {addr:#x} differs: {d}"))),
        }
    }

    /// Checks some captured log line contains `needle`.
    pub fn check_logged(&self, needle: &str) -> Result<(), Failure> {
        self.check(self.logs().iter().any(|l| l.contains(needle)), || {
            format!("expected the device to log a line containing {needle:?}")
        })
    }

    /// [`Bench::check_sent`], panicking with the failure.
    #[track_caller]
    pub fn expect_sent(&mut self, expected: &[u8]) {
        self.check_sent(expected).unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_nothing_sent`], panicking with the failure.
    #[track_caller]
    pub fn expect_nothing_sent(&mut self) {
        self.check_nothing_sent().unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_received`], panicking with the failure.
    #[track_caller]
    pub fn expect_received(&mut self, frame: &[u8]) {
        self.check_received(frame).unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_register`], panicking with the failure.
    #[track_caller]
    pub fn expect_register(&self, name: &str, expected: u64) {
        self.check_register(name, expected)
            .unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_irq`], panicking with the failure.
    #[track_caller]
    pub fn expect_irq(&self, level: bool) {
        self.check_irq(level).unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_mem`], panicking with the failure.
    #[track_caller]
    pub fn expect_mem(&self, addr: u64, expected: &[u8]) {
        self.check_mem(addr, expected)
            .unwrap_or_else(|f| panic!("{f}"))
    }

    /// [`Bench::check_logged`], panicking with the failure.
    #[track_caller]
    pub fn expect_logged(&self, needle: &str) {
        self.check_logged(needle).unwrap_or_else(|f| panic!("{f}"))
    }
}
