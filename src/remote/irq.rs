//! The device's INTx line as QEMU's `SET_IRQFD` eventfd pair.
//!
//! Semantics (those of a KVM level-triggered irqfd with a resample fd): writing the
//! irqfd asserts the guest's interrupt line; when the guest acknowledges it (EOI), KVM
//! lowers the line and signals the resample fd. The device side therefore:
//! - writes the irqfd when its level goes from low to high;
//! - records a fall to low (KVM lowers the line itself at the next EOI);
//! - on a resample signal, writes the irqfd again if the level is still high, so a
//!   device that keeps requesting service is not forgotten.
//!
//! Under TCG nothing consumes the irqfd (the proxy routes it only with KVM); the guest
//! then finds the device's work by polling (`irqpoll`), and the eventfd counter simply
//! accumulates, which is harmless.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use vm_nic_devices::IrqLine;

#[derive(Debug, Default)]
struct State {
    level: bool,
    irqfd: Option<OwnedFd>,
    resamplefd: Option<OwnedFd>,
    /// Times the irqfd was written (for tests and the exit summary).
    signals: u64,
}

/// An [`IrqLine`] that drives an irqfd/resamplefd pair. Clones share the line: the device
/// holds one, the server keeps another to install the eventfds and handle resamples.
#[derive(Clone, Debug, Default)]
pub struct EventfdIrq {
    state: Arc<Mutex<State>>,
}

fn signal(st: &mut State) {
    if let Some(fd) = &st.irqfd {
        match rustix::io::write(fd, &1u64.to_ne_bytes()) {
            Ok(_) => st.signals += 1,
            Err(e) => log::error!("cannot signal the irqfd: {e}"),
        }
    }
}

impl EventfdIrq {
    /// A line with no eventfds yet (interrupts are only recorded until `SET_IRQFD`).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs the eventfds from `SET_IRQFD`, replacing earlier ones. A line that is
    /// already asserted is signalled on the new irqfd at once.
    pub fn set_fds(&self, irqfd: OwnedFd, resamplefd: OwnedFd) {
        let mut st = self.lock();
        st.irqfd = Some(irqfd);
        st.resamplefd = Some(resamplefd);
        if st.level {
            signal(&mut st);
        }
    }

    /// The resample eventfd to poll for readability, if installed. The returned
    /// descriptor is a duplicate owned by the caller.
    pub fn resample_fd(&self) -> Option<OwnedFd> {
        let st = self.lock();
        st.resamplefd.as_ref().and_then(|fd| fd.try_clone().ok())
    }

    /// Handles a readable resample fd: consumes its count and re-signals the irqfd when the
    /// device still requests an interrupt.
    pub fn resample(&self, fd: BorrowedFd<'_>) {
        let mut buf = [0u8; 8];
        if let Err(e) = rustix::io::read(fd.as_fd(), &mut buf) {
            log::error!("cannot read the resample fd: {e}");
            return;
        }
        let mut st = self.lock();
        if st.level {
            signal(&mut st);
        }
    }

    /// The level the device drives now.
    pub fn level(&self) -> bool {
        self.lock().level
    }

    /// How many times the irqfd has been signalled.
    pub fn signals(&self) -> u64 {
        self.lock().signals
    }
}

impl IrqLine for EventfdIrq {
    fn set_level(&self, asserted: bool) {
        let mut st = self.lock();
        let rising = asserted && !st.level;
        st.level = asserted;
        if rising {
            signal(&mut st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{eventfd, EventfdFlags};

    fn efd() -> OwnedFd {
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap()
    }

    /// Reads and clears an eventfd's counter (0 when it was not signalled).
    fn count(fd: &OwnedFd) -> u64 {
        let mut b = [0u8; 8];
        match rustix::io::read(fd, &mut b) {
            Ok(_) => u64::from_ne_bytes(b),
            Err(_) => 0,
        }
    }

    #[test]
    fn rising_edges_signal_and_resample_re_signals_while_asserted() {
        let irq = EventfdIrq::new();
        let (irqfd, resample) = (efd(), efd());
        let (irqfd_peer, resample_peer) =
            (irqfd.try_clone().unwrap(), resample.try_clone().unwrap());
        irq.set_fds(irqfd, resample);

        irq.set_level(true);
        irq.set_level(true);
        assert_eq!(count(&irqfd_peer), 1, "one signal per rising edge");

        // The guest EOIs while the device still requests service: signal again.
        rustix::io::write(&resample_peer, &1u64.to_ne_bytes()).unwrap();
        irq.resample(irq.resample_fd().unwrap().as_fd());
        assert_eq!(count(&irqfd_peer), 1);

        // Once the device has lowered its request, a resample does nothing.
        irq.set_level(false);
        rustix::io::write(&resample_peer, &1u64.to_ne_bytes()).unwrap();
        irq.resample(irq.resample_fd().unwrap().as_fd());
        assert_eq!(count(&irqfd_peer), 0);
        assert_eq!(irq.signals(), 2);
    }

    #[test]
    fn asserted_before_set_irqfd_is_delivered_on_install() {
        let irq = EventfdIrq::new();
        irq.set_level(true);
        assert!(irq.resample_fd().is_none());
        let irqfd = efd();
        let peer = irqfd.try_clone().unwrap();
        irq.set_fds(irqfd, efd());
        assert_eq!(count(&peer), 1);
        assert!(irq.level());
    }
}
