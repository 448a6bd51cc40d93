//! The single-threaded device server: one NIC behind one QEMU proxy connection.
//!
//! Every BAR access of the guest is a request on the QEMU socket that the proxy waits to
//! see answered, so the loop is built around that round trip: it waits for the next
//! request in `recvmsg` itself (for at most [`WAIT_SLICE`]), which reads the header and
//! payload of a BAR access at once into a fixed buffer, and answers with one `send` from
//! the stack — two system calls and no allocation per access. While requests stream in,
//! the resample eventfd and the backend's descriptor are polled without waiting once per
//! [`WAIT_SLICE`]; when a slice passes with no request, the loop sleeps in `poll` on the
//! QEMU socket, the resample eventfd and — only while the NIC can take a frame, so a busy
//! host never spins the loop — the backend's descriptor. Each turn it fires the NIC's
//! timers once its deadline has passed on the monotonic clock, lets the backend do its
//! timed work, and hands received frames to the NIC (a frame the NIC cannot place,
//! [`RxOutcome::NoBuffer`], is kept and offered again after the guest has touched the
//! device).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::runner::MonotonicClock;

use rustix::event::{poll, PollFd, PollFlags};
use vm_memory::GuestMemoryMmap;
use vm_nic_backends::MAX_FRAME_LEN;
use vm_nic_devices::{Clock, NicDevice, RxOutcome};

use super::irq::EventfdIrq;
use super::memory::{self, MemoryError};
use super::protocol::{self, Message, MessageReader, ProtoError, Received};

/// Frames handed to the NIC per loop turn, so a flood cannot starve the QEMU socket.
const RX_BURST: usize = 64;
/// Longest poll sleep: in-process backends may queue frames without a descriptor.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// How long a peer may pause in the middle of a message before the server gives up.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for QEMU inside `recvmsg`, and how often the other descriptors are looked
/// at while requests keep coming.
pub const WAIT_SLICE: Duration = Duration::from_millis(1);

/// Why the server stopped other than by a clean disconnect.
#[derive(Debug)]
pub enum ServerError {
    /// A malformed, truncated or unreadable message.
    Protocol(ProtoError),
    /// A `SYNC_SYSMEM` that cannot be mapped.
    Memory(MemoryError),
    /// A `SET_IRQFD` descriptor that is not an eventfd.
    BadIrqFd(String),
    /// The socket or poll failed.
    Io(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Protocol(e) => write!(f, "protocol error: {e}"),
            ServerError::Memory(e) => write!(f, "{e}"),
            ServerError::BadIrqFd(e) => write!(f, "SET_IRQFD: {e}"),
            ServerError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<ProtoError> for ServerError {
    fn from(e: ProtoError) -> Self {
        ServerError::Protocol(e)
    }
}

/// What the server did, reported when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handled.
    pub messages: u64,
    /// `SYNC_SYSMEM` messages applied.
    pub memory_maps: u64,
    /// BAR accesses whose address no enabled BAR decodes.
    pub unclaimed: u64,
    /// Frames handed to the NIC.
    pub rx_frames: u64,
    /// Of those, frames the NIC discarded by its filters ([`RxOutcome::Filtered`]).
    pub rx_filtered: u64,
    /// Of those, frames the NIC dropped and counted ([`RxOutcome::Dropped`]).
    pub rx_dropped: u64,
    /// Times a frame was held back because the guest had no receive buffer.
    pub rx_no_buffer: u64,
    /// `BAR_READ` requests by width: 1, 2, 4 and 8 bytes (other widths are refused and
    /// not counted here).
    pub bar_reads: [u64; 4],
    /// `BAR_WRITE` requests by width, as [`Stats::bar_reads`].
    pub bar_writes: [u64; 4],
}

/// The [`Stats::bar_reads`] slot of an access `size` bytes wide.
fn width_slot(size: u32) -> Option<usize> {
    match size {
        1 => Some(0),
        2 => Some(1),
        4 => Some(2),
        8 => Some(3),
        _ => None,
    }
}

/// Which descriptors a poll found ready.
#[derive(Clone, Copy, Debug, Default)]
struct Ready {
    resample: bool,
    backend: bool,
}

/// One NIC served to one QEMU proxy connection.
pub struct Server {
    sock: UnixStream,
    nic: Box<dyn NicDevice<GuestMemoryMmap>>,
    irq: EventfdIrq,
    resample: Option<OwnedFd>,
    clock: Arc<dyn Clock>,
    reader: MessageReader,
    /// How long a peer may pause inside a message.
    message_timeout: Duration,
    /// When the resample and backend descriptors were last polled.
    last_look: Instant,
    rx_buf: Vec<u8>,
    /// Length of a frame in `rx_buf` the NIC had no room for.
    held: Option<usize>,
    /// The NIC said NoBuffer; wait for the guest to touch the device before retrying.
    rx_blocked: bool,
    /// The backend link state last told to the NIC (models start with the link up).
    link_up: bool,
    stats: Stats,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("model", &self.nic.model())
            .field("stats", &self.stats)
            .finish()
    }
}

/// True if `fd` is an eventfd (checked by its /proc link, the only reliable way).
fn is_eventfd(fd: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|p| p.to_string_lossy() == "anon_inode:[eventfd]")
        .unwrap_or(false)
}

fn ns_to_timeout(ns: u64) -> Duration {
    Duration::from_nanos(ns).min(MAX_SLEEP)
}

impl Server {
    /// Serves `nic` on `sock`; `irq` must be the line the NIC was created with and `clock`
    /// its clock. Sets the socket's receive timeout to [`WAIT_SLICE`] and its send timeout
    /// to [`MESSAGE_TIMEOUT`].
    pub fn new(
        sock: UnixStream,
        nic: Box<dyn NicDevice<GuestMemoryMmap>>,
        irq: EventfdIrq,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Self> {
        sock.set_nonblocking(false)?;
        sock.set_read_timeout(Some(WAIT_SLICE))?;
        sock.set_write_timeout(Some(MESSAGE_TIMEOUT))?;
        Ok(Server {
            sock,
            nic,
            irq,
            resample: None,
            clock,
            reader: MessageReader::new(),
            message_timeout: MESSAGE_TIMEOUT,
            last_look: Instant::now(),
            rx_buf: vec![0; MAX_FRAME_LEN],
            held: None,
            rx_blocked: false,
            link_up: true,
            stats: Stats::default(),
        })
    }

    /// Changes how long a peer may pause inside one message (default
    /// [`MESSAGE_TIMEOUT`]) before the server stops with an error.
    pub fn set_message_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.message_timeout = timeout;
        self.sock.set_write_timeout(Some(timeout))
    }

    /// The served NIC.
    pub fn nic(&self) -> &dyn NicDevice<GuestMemoryMmap> {
        &*self.nic
    }

    /// What the server has done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Runs until the peer disconnects (`Ok`) or a fatal error (`Err`).
    pub fn run(&mut self) -> Result<Stats, ServerError> {
        loop {
            self.service();
            // Wait in recvmsg only when nothing is due within the slice (a held frame the
            // NIC can take, a timer): then a request is read the moment it arrives.
            let timeout = self.poll_timeout();
            let wait = timeout >= WAIT_SLICE;
            match self.reader.next(&self.sock, wait, self.message_timeout)? {
                Received::Message(msg) => {
                    self.dispatch(msg)?;
                    if self.last_look.elapsed() >= WAIT_SLICE {
                        self.look(Duration::ZERO)?;
                    }
                }
                Received::Closed => {
                    log::info!("QEMU closed the connection; stopping");
                    return Ok(self.stats);
                }
                // Nothing from QEMU: sleep on every descriptor until something is due
                // (counted afresh: the wait in recvmsg took up to a slice of it).
                Received::Idle => self.look(self.poll_timeout())?,
            }
        }
    }

    /// Polls every descriptor for up to `timeout` and handles a resample and backend work.
    /// A readable QEMU socket needs nothing here: the next turn reads it.
    fn look(&mut self, timeout: Duration) -> Result<(), ServerError> {
        let ready = self.wait(timeout)?;
        self.last_look = Instant::now();
        if ready.resample {
            if let Some(r) = &self.resample {
                self.irq.resample(r.as_fd());
            }
        }
        if ready.backend {
            if let Err(e) = self.nic.backend_mut().poll(Instant::now()) {
                log::warn!("backend {}: {e}", self.nic.backend().kind());
            }
        }
        Ok(())
    }

    /// Sleeps until the QEMU socket, the resample fd or — while the NIC can take a frame —
    /// the backend's descriptor is ready, or `timeout` passes.
    fn wait(&self, timeout: Duration) -> Result<Ready, ServerError> {
        let backend_fd = if self.wants_rx() {
            self.nic.backend().poll_fd()
        } else {
            None
        };
        // SAFETY: the backend owns this descriptor and keeps it open for its own lifetime,
        // which spans this call; it is only borrowed for the poll.
        let backend_fd = backend_fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
        let mut fds = vec![PollFd::new(&self.sock, PollFlags::IN)];
        let resample_at = self.resample.as_ref().map(|r| {
            fds.push(PollFd::new(r, PollFlags::IN));
            fds.len() - 1
        });
        let backend_at = backend_fd.as_ref().map(|b| {
            fds.push(PollFd::new(b, PollFlags::IN));
            fds.len() - 1
        });
        let ts = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Ready::default()),
            Err(e) => return Err(ServerError::Io(e.into())),
        }
        let ready = |at: Option<usize>| at.is_some_and(|i| !fds[i].revents().is_empty());
        // The resample eventfd is read in blocking mode (its file description is shared
        // with QEMU, so its flags are left alone): only read it when it says readable.
        let readable =
            |at: Option<usize>| at.is_some_and(|i| fds[i].revents().contains(PollFlags::IN));
        Ok(Ready {
            resample: readable(resample_at),
            backend: ready(backend_at),
        })
    }

    /// Handles one message and sends its reply, if it has one.
    pub fn dispatch(&mut self, msg: Message) -> Result<(), ServerError> {
        if let Some(value) = self.handle(msg)? {
            protocol::write_ret(&self.sock, value).map_err(ServerError::Io)?;
        }
        Ok(())
    }

    /// Applies one message to the device and returns the `RET` value to send, or `None`
    /// for messages without a reply.
    pub fn handle(&mut self, msg: Message) -> Result<Option<u64>, ServerError> {
        self.stats.messages += 1;
        // Any access may have refilled the receive ring: offer a held frame again.
        self.rx_blocked = false;
        match msg {
            Message::SyncSysmem { regions, fds } => {
                let mem = memory::map_regions(&regions, fds).map_err(ServerError::Memory)?;
                log::debug!(
                    "guest RAM: {}",
                    regions
                        .iter()
                        .map(|r| format!("{:#x}+{:#x}", r.gpa, r.size))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.nic.set_memory(mem);
                self.stats.memory_maps += 1;
                Ok(None)
            }
            Message::SetIrqfd { irqfd, resamplefd } => {
                for (name, fd) in [("irqfd", &irqfd), ("resamplefd", &resamplefd)] {
                    if !is_eventfd(fd) {
                        return Err(ServerError::BadIrqFd(format!("{name} is not an eventfd")));
                    }
                }
                self.resample = Some(resamplefd.try_clone().map_err(ServerError::Io)?);
                self.irq.set_fds(irqfd, resamplefd);
                log::debug!("INTx eventfds installed");
                Ok(None)
            }
            Message::PciCfgRead { addr, len } => Ok(Some(self.config_read(addr, len))),
            Message::PciCfgWrite { addr, val, len } => Ok(Some(self.config_write(addr, val, len))),
            Message::BarRead { addr, size, memory } => {
                if let Some(i) = width_slot(size) {
                    self.stats.bar_reads[i] += 1;
                }
                Ok(Some(self.bar_access(addr, size, memory, None)))
            }
            Message::BarWrite {
                addr,
                val,
                size,
                memory,
            } => {
                if let Some(i) = width_slot(size) {
                    self.stats.bar_writes[i] += 1;
                }
                Ok(Some(self.bar_access(addr, size, memory, Some(val))))
            }
            Message::DeviceReset => {
                log::info!("device reset");
                self.nic.reset();
                Ok(Some(0))
            }
            Message::Ret(v) => {
                log::debug!("unexpected RET {v:#x} from QEMU ignored");
                Ok(None)
            }
        }
    }

    /// Config-space range check: widths 1, 2, 4 inside the 256-byte space.
    fn config_ok(addr: u32, len: i32) -> bool {
        matches!(len, 1 | 2 | 4) && addr.checked_add(len as u32).is_some_and(|end| end <= 256)
    }

    fn config_read(&mut self, addr: u32, len: i32) -> u64 {
        if !Self::config_ok(addr, len) {
            log::debug!("PCI_CFGREAD at {addr:#x} width {len} refused");
            return u64::MAX;
        }
        self.nic.config_read(addr as u16, len as u8) as u64
    }

    fn config_write(&mut self, addr: u32, val: u32, len: i32) -> u64 {
        if !Self::config_ok(addr, len) {
            log::debug!("PCI_CFGWRITE at {addr:#x} width {len} refused");
            return u64::MAX;
        }
        self.nic.config_write(addr as u16, len as u8, val);
        0
    }

    /// A BAR access at guest-physical (`memory`) or port address `addr`: decoded to BAR +
    /// offset from the BARs the guest programmed. An 8-byte access is two 4-byte ones, low
    /// half first. A read nothing decodes returns all-ones, as a master abort would.
    fn bar_access(&mut self, addr: u64, size: u32, memory: bool, write: Option<u64>) -> u64 {
        let space = if memory { "MMIO" } else { "I/O" };
        let decoded = self.nic.pci().and_then(|p| p.decode(addr, !memory));
        let Some((bar, offset)) = decoded else {
            self.stats.unclaimed += 1;
            log::debug!("{space} access at {addr:#x} decodes to no enabled BAR");
            return if write.is_some() { 0 } else { u64::MAX };
        };
        match (size, write) {
            (1 | 2 | 4, Some(v)) => {
                self.nic.bar_write(bar, offset, size as u8, v as u32);
                0
            }
            (1 | 2 | 4, None) => self.nic.bar_read(bar, offset, size as u8) as u64,
            (8, Some(v)) => {
                self.nic.bar_write(bar, offset, 4, v as u32);
                self.nic
                    .bar_write(bar, offset.wrapping_add(4), 4, (v >> 32) as u32);
                0
            }
            (8, None) => {
                let lo = self.nic.bar_read(bar, offset, 4) as u64;
                let hi = self.nic.bar_read(bar, offset.wrapping_add(4), 4) as u64;
                lo | hi << 32
            }
            _ => {
                log::debug!("{space} access at {addr:#x} with width {size} refused");
                if write.is_some() {
                    0
                } else {
                    u64::MAX
                }
            }
        }
    }

    fn wants_rx(&self) -> bool {
        !self.rx_blocked && self.nic.can_receive()
    }

    /// Link changes, timers, backend work and frame delivery due now.
    fn service(&mut self) {
        let up = self.nic.backend().link_up();
        if up != self.link_up {
            log::info!("backend link {}", if up { "up" } else { "down" });
            self.nic.set_link(up);
            self.link_up = up;
        }
        let now = self.clock.now_ns();
        if self.nic.next_deadline().is_some_and(|d| d <= now) {
            self.nic.run_timers();
            self.rx_blocked = false;
        }
        if self
            .nic
            .backend()
            .next_deadline()
            .is_some_and(|d| d <= Instant::now())
        {
            if let Err(e) = self.nic.backend_mut().poll(Instant::now()) {
                log::warn!("backend {}: {e}", self.nic.backend().kind());
            }
        }
        self.deliver_rx();
    }

    /// Hands up to [`RX_BURST`] frames to the NIC while it can take them.
    fn deliver_rx(&mut self) {
        for _ in 0..RX_BURST {
            if !self.wants_rx() {
                return;
            }
            let len = match self.held.take() {
                Some(len) => len,
                None => match self.nic.backend_mut().recv(&mut self.rx_buf) {
                    Ok(Some(len)) => len,
                    Ok(None) => return,
                    Err(e) => {
                        log::warn!("backend {}: receive failed: {e}", self.nic.backend().kind());
                        return;
                    }
                },
            };
            match self.nic.receive(&self.rx_buf[..len]) {
                RxOutcome::NoBuffer => {
                    self.held = Some(len);
                    self.rx_blocked = true;
                    self.stats.rx_no_buffer += 1;
                    return;
                }
                outcome => {
                    self.stats.rx_frames += 1;
                    match outcome {
                        RxOutcome::Filtered => self.stats.rx_filtered += 1,
                        RxOutcome::Dropped => self.stats.rx_dropped += 1,
                        _ => {}
                    }
                    log::trace!("rx {len} bytes: {outcome:?}");
                }
            }
        }
    }

    /// How long the next poll may sleep.
    fn poll_timeout(&self) -> Duration {
        if self.wants_rx() && (self.held.is_some() || self.nic.backend().has_pending()) {
            return Duration::ZERO;
        }
        let mut t = MAX_SLEEP;
        if let Some(d) = self.nic.next_deadline() {
            t = t.min(ns_to_timeout(d.saturating_sub(self.clock.now_ns())));
        }
        if let Some(d) = self.nic.backend().next_deadline() {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        t
    }
}
