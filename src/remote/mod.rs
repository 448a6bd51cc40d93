//! `vm-nic remote`: one vm-nic NIC served to stock QEMU as an out-of-process PCI device.
//!
//! QEMU's `-device x-pci-proxy-dev,fd=N` forwards every config-space access, BAR access
//! and reset of its PCI function over the Unix socket `N` to a device server, and passes
//! the guest's RAM (memfd-backed) and the INTx eventfds along. This module is that server
//! for vm-nic's models: [`protocol`] is the wire format, [`memory`] turns `SYNC_SYSMEM`
//! into guest memory for DMA, [`irq`] is the INTx line on the eventfds, [`server`] is the
//! event loop, and [`device`] builds the NIC and its backend from QEMU-style options.
//!
//! ```text
//! vm-nic remote --fd 3 -device e1000,netdev=n0 -netdev user,id=n0
//! vm-nic remote --socket /run/nic0.sock -device rtl8139,revision=0x10,netdev=n0 -netdev user,id=n0
//! ```
//!
//! The server runs unprivileged in its own process; a fault in it cannot corrupt QEMU.
//! It exits cleanly (status 0) when QEMU closes the connection, and with a logged error
//! (status 1) on a malformed message, a bad descriptor or a mapping it cannot honour.

pub mod device;
pub mod irq;
pub mod isa_carrier;
pub mod memory;
pub mod protocol;
pub mod server;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vm_nic_devices::{Clock, NicDevice};

use isa_carrier::{IsaCarrier, IsaLine, CARRIER_IDS};

pub use irq::EventfdIrq;
pub use server::{MonotonicClock, Server, ServerError, Stats};

/// The `vm-nic remote` usage text.
pub const USAGE: &str = "\
usage: vm-nic remote (--fd N | --socket PATH) -device MODEL,netdev=ID[,mac=MAC][,prop=value]
                     -netdev TYPE,id=ID[,option=value]...

Serves one vm-nic NIC to QEMU's multi-process PCI proxy:
  qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=512M \\
      -numa node,memdev=mem -device x-pci-proxy-dev,id=nic0,fd=N

  --fd N         serve on inherited Unix socket N (the other end is QEMU's fd=N)
  --socket PATH  listen on Unix socket PATH and serve the first connection
  -device ...    the NIC, in QEMU's syntax (e1000, e1000-82544gc, e1000-82545em,
                 rtl8139, ne2k_pci; ne2k_isa behind a PCI carrier function,
                 see docs/devices/ne2000.md)
  -netdev ...    its network backend, in QEMU's syntax (e.g. user,id=n0)
";

/// Where the QEMU connection comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// An inherited, connected socket.
    Fd(RawFd),
    /// A path to listen on for one connection.
    Socket(String),
}

/// The parsed `vm-nic remote` command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteArgs {
    /// The QEMU connection.
    pub endpoint: Endpoint,
    /// The `-device` argument.
    pub device: String,
    /// Every `-netdev` argument.
    pub netdevs: Vec<String>,
}

/// Parses the arguments after `remote`. `Ok(None)` means help was asked for.
pub fn parse_args(args: &[String]) -> Result<Option<RemoteArgs>, String> {
    let mut endpoint = None;
    let mut device = None;
    let mut netdevs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--fd" => {
                let v = value("--fd")?;
                let fd = v
                    .parse::<RawFd>()
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| format!("--fd {v}: not a file descriptor number"))?;
                endpoint = Some(Endpoint::Fd(fd));
            }
            "--socket" => endpoint = Some(Endpoint::Socket(value("--socket")?)),
            "-device" | "--device" => {
                if device.replace(value("-device")?).is_some() {
                    return Err("one -device per vm-nic remote process".into());
                }
            }
            "-netdev" | "--netdev" => netdevs.push(value("-netdev")?),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Some(RemoteArgs {
        endpoint: endpoint.ok_or("give --fd N or --socket PATH")?,
        device: device.ok_or("give the NIC with -device MODEL,netdev=ID")?,
        netdevs,
    }))
}

/// Takes ownership of inherited descriptor `fd` after checking it is an open Unix stream
/// socket.
fn inherited_socket(fd: RawFd) -> Result<UnixStream, String> {
    // SAFETY: `fd` is only borrowed for the F_GETFD probe, which fails cleanly (EBADF) on
    // a number that is not open; nothing else in this process owns an inherited socket.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).map_err(|e| format!("--fd {fd}: {e}"))?;
    let is_unix_stream = rustix::net::sockopt::socket_type(borrowed)
        .map(|t| t == rustix::net::SocketType::STREAM)
        .unwrap_or(false)
        && rustix::net::getsockname(borrowed)
            .map(|a| a.address_family() == rustix::net::AddressFamily::UNIX)
            .unwrap_or(false);
    if !is_unix_stream {
        return Err(format!("--fd {fd}: not a Unix stream socket"));
    }
    // SAFETY: the descriptor is open (checked above), was inherited for this purpose and
    // is owned by nothing else in this process; ownership moves to the returned stream.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(owned.as_fd(), rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| format!("--fd {fd}: {e}"))?;
    Ok(UnixStream::from(owned))
}

/// Listens on `path`, accepts one connection and removes the path again.
fn accept_one(path: &str) -> Result<UnixStream, String> {
    let listener = UnixListener::bind(path).map_err(|e| format!("--socket {path}: {e}"))?;
    log::info!("waiting for QEMU's connection on {path}");
    let accepted = listener.accept();
    let _ = std::fs::remove_file(path);
    accepted
        .map(|(s, _)| s)
        .map_err(|e| format!("--socket {path}: {e}"))
}

/// Runs `vm-nic remote` with the arguments after `remote`.
pub fn main(args: &[String]) -> Result<(), String> {
    let Some(args) = parse_args(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let irq = EventfdIrq::new();
    let line = IsaLine::new(irq.clone());
    let nic = device::build_nic(
        &args.device,
        &args.netdevs,
        Box::new(line.clone()),
        clock.clone(),
        memory::empty(),
    )?;
    // QEMU's proxy carries PCI functions only: an ISA card goes behind a carrier function.
    let nic: Box<dyn NicDevice<GuestMemoryMmap>> = match IsaCarrier::wrap(nic, line) {
        Ok(carrier) => {
            log::info!(
                "{} is an ISA card: serving its ports as BAR 0 of a PCI carrier function \
                 ({:04x}:{:04x}); load its ISA driver at that BAR's I/O address",
                carrier.model(),
                CARRIER_IDS.vendor,
                CARRIER_IDS.device
            );
            Box::new(carrier)
        }
        Err(nic) if nic.pci().is_some() => nic,
        Err(nic) => {
            return Err(format!(
                "{} has neither a PCI function nor ISA ports to serve",
                nic.model()
            ))
        }
    };
    let sock = match &args.endpoint {
        Endpoint::Fd(fd) => inherited_socket(*fd)?,
        Endpoint::Socket(path) => accept_one(path)?,
    };
    log::info!(
        "serving {} (MAC {}) on backend {}",
        nic.model(),
        nic.mac(),
        nic.backend().kind()
    );
    let mut server = Server::new(sock, nic, irq.clone(), clock).map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let result = server.run();
    let seconds = started.elapsed().as_secs_f64();
    let stats = server.stats();
    let counters = server.nic().backend().counters();
    log::info!(
        "stopped after {} messages: {} frames offered to the NIC ({} filtered, {} dropped by it, \
         {} waits for a receive buffer), {} sent, {} lost in the backend, {} interrupts signalled",
        stats.messages,
        stats.rx_frames,
        stats.rx_filtered,
        stats.rx_dropped,
        stats.rx_no_buffer,
        counters.sent_frames,
        counters.dropped,
        irq.signals()
    );
    log::info!(
        "{} messages in {seconds:.1} s ({:.0} per second); BAR reads of 1/2/4/8 bytes: {}, \
         writes: {}",
        stats.messages,
        stats.messages as f64 / seconds.max(1e-9),
        widths(&stats.bar_reads),
        widths(&stats.bar_writes),
    );
    log::info!(
        "at the end the NIC {} take a frame and the backend {} one waiting",
        if server.nic().can_receive() {
            "could"
        } else {
            "could not"
        },
        if server.nic().backend().has_pending() {
            "had"
        } else {
            "had not"
        },
    );
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// Per-width counts as `a/b/c/d`.
fn widths(counts: &[u64; 4]) -> String {
    counts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
