//! A VMM embedding an e1000 and letting vm-nic's `Runner` do the polling.
//!
//! Same machine as `vmm_event_loop` (vm-memory RAM, the PCI host routing MMIO by
//! address, user-net by default), but the interrupt line is a plain callback (any
//! `Fn(bool) + Send` is an `IrqLine`) and the loop is `Runner::run_once`. The guest asks
//! the gateway 10.0.2.2 for its MAC with ARP; the example exits 0 on the reply.
//!
//! Run: `cargo run --example vmm_runner`

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{arp_request, is_arp_reply_from, GuestE1000};
use common::{guest_ram, net_config, PciHost};
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
    let mem = guest_ram();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());

    // The interrupt line: a callback. A real VMM would call its interrupt controller
    // here; this one remembers the level for the loop below.
    let intx = Arc::new(AtomicBool::new(false));
    let level = intx.clone();
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: mem.clone(),
            clock: clock.clone(),
            irq: Box::new(move |_index, _spec| {
                let level = level.clone();
                Box::new(move |asserted: bool| level.store(asserted, Ordering::SeqCst))
            }),
        })
        .build()?;
    for w in net.warnings() {
        println!("vmm: warning: {w}");
    }
    let mut runner = Runner::new(net, clock);
    let host = PciHost { nic: 0 };
    let (bar0, _io) = host.firmware_setup(runner.network_mut(), 0xfebc_0000, 0xc000);
    let mac = runner.network().nic(0).unwrap().mac().bytes();
    let mut drv = GuestE1000::init(&host, runner.network_mut(), &mem, bar0, mac);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_arp = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_arp {
            drv.transmit(
                &host,
                runner.network_mut(),
                &mem,
                &arp_request(mac, GATEWAY),
            );
            next_arp = Instant::now() + Duration::from_millis(250);
        }
        // Moves frames, fires timers, waits at most 50 ms for a backend.
        runner.run_once(Some(Duration::from_millis(50)))?;
        if intx.load(Ordering::SeqCst) {
            let (icr, frames) = drv.interrupt(&host, runner.network_mut(), &mem);
            println!("guest: interrupt, ICR {icr:#x}, {} frame(s)", frames.len());
            if let Some(f) = frames.iter().find(|f| is_arp_reply_from(f, GATEWAY)) {
                println!("guest: 10.0.2.2 is at {:02x?}", &f[6..12]);
                return Ok(());
            }
        }
    }
    Err("no ARP reply from 10.0.2.2 within 10 s".into())
}
