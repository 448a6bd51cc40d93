//! A VMM embedding an e1000 with its own event loop.
//!
//! - guest RAM: a vm-memory `GuestMemoryMmap`;
//! - the network from QEMU options (default `-netdev user,id=n0 -device e1000,netdev=n0`,
//!   user-mode networking: no root needed; pass other options as arguments, e.g.
//!   `-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device e1000,netdev=n0`);
//! - the NIC on the VMM's PCI host: firmware sizes and places the BARs, the guest moves
//!   BAR0, MMIO and port I/O are routed by address through `PciConfig::decode`;
//! - INTx as an eventfd (`EventFdIrq`), polled by the VMM's loop next to the backends'
//!   descriptors (`Runner::poll_fds`, `Runner::next_timeout`, `Runner::dispatch`);
//! - the guest driver (examples/common/guest.rs) asks user-net's gateway 10.0.2.2 for its
//!   MAC address with ARP and the example exits 0 once the reply arrived.
//!
//! Run: `cargo run --example vmm_event_loop`

mod common;

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{arp_request, is_arp_reply_from, GuestE1000};
use common::{guest_ram, net_config, EventFdIrq, PciHost};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use vm_nic::devices::pci::reg;
use vm_nic::devices::Clock;
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::runner::{MonotonicClock, Runner};

const GATEWAY: [u8; 4] = [10, 0, 2, 2];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// Runs the machine with network options `args` (QEMU syntax; none: user-net).
pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = net_config(args)?;

    // The machine: RAM, the clock every device timer runs on, one interrupt line.
    let mem = guest_ram();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let irq = EventFdIrq::new()?;
    let line = irq.clone();
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: mem.clone(),
            clock: clock.clone(),
            irq: Box::new(move |_index, _spec| Box::new(line.clone())),
        })
        .build()?;
    let mut runner = Runner::new(net, clock);

    // Firmware places the BARs; then the guest moves BAR0 (a remap): the host follows.
    let host = PciHost { nic: 0 };
    let (old_bar0, io) = host.firmware_setup(runner.network_mut(), 0xfebc_0000, 0xc000);
    let bar0 = 0xfeb8_0000u64;
    host.config_write(runner.network_mut(), reg::BAR0, 4, bar0 as u32);
    assert!(host.mmio_read(runner.network_mut(), old_bar0, 4).is_none());
    // Port I/O: IOADDR (BAR1+0) selects STATUS, IODATA (BAR1+4) reads it.
    host.pio_write(runner.network_mut(), io, 4, 0x8);
    let status_io = host.pio_read(runner.network_mut(), io + 4, 4).unwrap();
    let status_mmio = host.mmio_read(runner.network_mut(), bar0 + 0x8, 4).unwrap();
    assert_eq!(status_io, status_mmio);
    println!("vmm: BAR0 moved to {bar0:#x}; STATUS {status_mmio:#x} by MMIO and by port I/O");

    let mac = runner.network().nic(0).unwrap().mac().bytes();
    let mut drv = GuestE1000::init(&host, runner.network_mut(), &mem, bar0, mac);

    // The VMM's loop: wait for a backend fd, the interrupt eventfd or the runner's next
    // deadline; then let the runner move frames and fire timers; then run the guest's
    // interrupt handler while the line is asserted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_arp = Instant::now();
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err("no ARP reply from 10.0.2.2 within 10 s".into());
        }
        if now >= next_arp {
            drv.transmit(
                &host,
                runner.network_mut(),
                &mem,
                &arp_request(mac, GATEWAY),
            );
            next_arp = now + Duration::from_millis(250);
        }
        let backend_fds = runner.poll_fds();
        let wait = runner
            .next_timeout()
            .unwrap_or(Duration::MAX)
            .min(next_arp.saturating_duration_since(now));
        let readable = wait_readable(&backend_fds, irq.fd.as_raw_fd(), wait)?;
        if readable.contains(&irq.fd.as_raw_fd()) {
            irq.acknowledge();
        }
        runner.dispatch(&readable);
        // Level-triggered: run the handler until the device lowers the line (resample).
        for _ in 0..8 {
            if !irq.asserted() {
                break;
            }
            let (icr, frames) = drv.interrupt(&host, runner.network_mut(), &mem);
            println!("guest: interrupt, ICR {icr:#x}, {} frame(s)", frames.len());
            if let Some(f) = frames.iter().find(|f| is_arp_reply_from(f, GATEWAY)) {
                println!("guest: 10.0.2.2 is at {:02x?}", &f[6..12]);
                return Ok(());
            }
            // The handler gave descriptors back: frames waiting in the backend can move.
            runner.dispatch(&[]);
        }
    }
}

/// poll(2) on the backends' fds and the interrupt eventfd; returns the readable ones.
fn wait_readable(fds: &[RawFd], irq: RawFd, wait: Duration) -> std::io::Result<Vec<RawFd>> {
    let all: Vec<RawFd> = fds.iter().copied().chain([irq]).collect();
    // SAFETY: every fd is owned by the runner's backends or by `EventFdIrq`, all of
    // which outlive this call.
    let borrowed: Vec<BorrowedFd<'_>> = all
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    let mut pfds: Vec<PollFd<'_>> = borrowed
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
        .collect();
    let ts = Timespec::try_from(wait.min(Duration::from_secs(1))).ok();
    match poll(&mut pfds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(all
        .iter()
        .zip(&pfds)
        .filter(|(_, p)| !p.revents().is_empty())
        .map(|(&fd, _)| fd)
        .collect())
}
