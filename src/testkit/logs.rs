//! Capture of the models' `log` output, per bench.
//!
//! The models explain at debug level why they ignored or rejected something the guest
//! did ("TDH 0 or TDT 3 beyond a ring of 2 descriptors"). A [`Bench`](super::Bench)
//! installs [`CaptureLogger`] as the process's `log` logger (once; see [`install`]) and
//! routes every line logged while it drives its device into its own [`LogCapture`], so
//! two benches in one test, or tests running on parallel threads, never see each other's
//! lines.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};

/// Lines a capture keeps; older ones are counted and dropped so a long test cannot grow
/// the capture without bound.
pub const MAX_LINES: usize = 4096;

thread_local! {
    /// The captures active on this thread, innermost last.
    static ACTIVE: RefCell<Vec<LogCapture>> = const { RefCell::new(Vec::new()) };
}

/// The `log` logger the testkit installs: it appends each record to the capture active
/// on the logging thread (the bench driving a device) and drops records logged outside
/// any bench.
#[derive(Debug)]
pub struct CaptureLogger;

static LOGGER: CaptureLogger = CaptureLogger;
static INSTALLED: OnceLock<bool> = OnceLock::new();

impl Log for CaptureLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // try_borrow: a Display impl that logs while being formatted must not panic.
        let _ = ACTIVE.try_with(|active| {
            if let Ok(active) = active.try_borrow() {
                if let Some(capture) = active.last() {
                    capture.push(format!("{:<5} {}", record.level(), record.args()));
                }
            }
        });
    }

    fn flush(&self) {}
}

/// Installs [`CaptureLogger`] as the process's logger at debug level, once. Returns
/// false when another logger (e.g. `env_logger`) was installed first: benches then
/// capture nothing, and their failure messages say so.
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let ours = log::set_logger(&LOGGER).is_ok();
        if ours {
            log::set_max_level(LevelFilter::Debug);
        }
        ours
    })
}

#[derive(Debug, Default)]
struct Lines {
    lines: VecDeque<String>,
    dropped: usize,
}

/// The log lines captured for one bench; clones share the lines.
#[derive(Clone, Debug, Default)]
pub struct LogCapture {
    inner: Arc<Mutex<Lines>>,
}

fn lock(m: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line (the bench adds its own bus notes this way).
    pub fn push(&self, line: String) {
        let mut l = lock(&self.inner);
        if l.lines.len() >= MAX_LINES {
            l.lines.pop_front();
            l.dropped += 1;
        }
        l.lines.push_back(line);
    }

    /// Every line kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.inner).lines.iter().cloned().collect()
    }

    /// Removes and returns every line kept.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.inner).lines).into()
    }

    /// Lines dropped because more than [`MAX_LINES`] were logged.
    pub fn dropped(&self) -> usize {
        lock(&self.inner).dropped
    }

    /// Runs `f` with this capture receiving what the current thread logs.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                let _ = ACTIVE.try_with(|a| a.borrow_mut().pop());
            }
        }
        ACTIVE.with(|a| a.borrow_mut().push(self.clone()));
        let _pop = Pop;
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_the_innermost_active_capture_only() {
        assert!(install(), "no other logger in the unit-test binary");
        let outer = LogCapture::new();
        let inner = LogCapture::new();
        log::debug!("outside any capture");
        outer.scope(|| {
            log::debug!("one");
            inner.scope(|| log::debug!("two"));
            log::trace!("below debug: not captured");
        });
        assert_eq!(outer.lines(), vec!["DEBUG one"]);
        assert_eq!(inner.take(), vec!["DEBUG two"]);
        assert!(inner.lines().is_empty());
    }

    #[test]
    fn capture_is_bounded() {
        let c = LogCapture::new();
        for i in 0..MAX_LINES + 3 {
            c.push(i.to_string());
        }
        assert_eq!(c.lines().len(), MAX_LINES);
        assert_eq!(c.dropped(), 3);
        assert_eq!(c.lines()[0], "3");
    }
}
