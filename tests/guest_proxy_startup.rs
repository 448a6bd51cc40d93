//! Stock QEMU's `x-pci-proxy-dev` against vm-nic's remote server: the start-up exchange
//! (guest RAM as memfds, the INTx eventfds, identity reads and the BAR sizing probe)
//! decoded and answered by [`vm_nic::remote::Server`], with a minimal PCI function so the
//! check does not depend on any NIC model. QEMU is started paused (`-S`): the proxy does
//! all of this while the machine is built, before any guest code runs.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap};
use vm_nic::backends::memory::NullBackend;
use vm_nic::backends::{MacAddr, NetBackend};
use vm_nic::devices::{BarSpec, NicDevice, PciConfig, PciIds, RxOutcome};
use vm_nic::remote::{EventfdIrq, MonotonicClock, Server};

#[derive(Default)]
struct Seen {
    ram_bytes: u64,
    config_writes: Vec<(u16, u8, u32)>,
}

/// A PCI function with a 128 KiB memory BAR and a 64-byte I/O BAR, recording what QEMU did.
struct ProbeTarget {
    pci: PciConfig,
    backend: NullBackend,
    seen: Arc<Mutex<Seen>>,
}

impl NicDevice<GuestMemoryMmap> for ProbeTarget {
    fn model(&self) -> &'static str {
        "probe-target"
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
        self.seen
            .lock()
            .unwrap()
            .config_writes
            .push((offset, size, value));
        self.pci.write(offset, size, value)
    }
    fn bar_read(&mut self, _bar: u8, _offset: u64, _size: u8) -> u32 {
        0
    }
    fn bar_write(&mut self, _bar: u8, _offset: u64, _size: u8, _value: u32) {}
    fn set_memory(&mut self, mem: GuestMemoryMmap) {
        self.seen.lock().unwrap().ram_bytes =
            mem.iter().map(vm_memory::GuestMemoryRegion::len).sum();
    }
    fn can_receive(&self) -> bool {
        false
    }
    fn receive(&mut self, _frame: &[u8]) -> RxOutcome {
        RxOutcome::Dropped
    }
    fn set_link(&mut self, _up: bool) {}
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    fn run_timers(&mut self) {}
    fn reset(&mut self) {
        self.pci.reset()
    }
    fn backend(&self) -> &dyn NetBackend {
        &self.backend
    }
    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        &mut self.backend
    }
}

#[test]
fn qemu_proxy_startup_is_decoded_and_answered() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    // The QEMU end must survive exec: clear its close-on-exec flag.
    rustix::io::fcntl_setfd(theirs.as_fd(), rustix::io::FdFlags::empty()).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc,accel=tcg",
            "-m",
            "64M",
            "-S",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args([
            "-object",
            "memory-backend-memfd,id=mem,size=64M,share=on",
            "-numa",
            "node,memdev=mem",
        ])
        .args(["-device", &format!("x-pci-proxy-dev,id=nic0,fd={fd}")])
        .stdin(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 (scripts/install-deps.sh installs it)");
    drop(theirs);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let ids = PciIds {
        vendor: 0x10ec,
        device: 0x8029,
        revision: 0,
        class: 0x02_00_00,
        subsystem_vendor: 0x10ec,
        subsystem: 0x8029,
        interrupt_pin: 1,
    };
    let nic = ProbeTarget {
        pci: PciConfig::new(
            ids,
            &[Some(BarSpec::mem32(0x20000)), Some(BarSpec::io(0x40))],
        ),
        backend: NullBackend::new(),
        seen: seen.clone(),
    };
    let irq = EventfdIrq::new();
    let mut server =
        Server::new(ours, Box::new(nic), irq, Arc::new(MonotonicClock::new())).unwrap();
    let pid = qemu.id();
    let runner = std::thread::spawn(move || {
        let r = server.run();
        (r.map_err(|e| e.to_string()), server.stats())
    });

    // The probe is done once QEMU has written back every BAR; bounded wait of 20 s.
    let start = Instant::now();
    let probed = || {
        seen.lock()
            .unwrap()
            .config_writes
            .iter()
            .filter(|w| w.0 == 0x24)
            .count()
            >= 2
    };
    while !probed() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    let _ = qemu.wait();
    let (result, stats) = runner.join().unwrap();

    let seen = seen.lock().unwrap();
    assert!(result.is_ok(), "server stopped with {result:?}");
    // 64 MiB less the legacy VGA/ROM window 0xc0000..0x100000, which is not RAM.
    assert_eq!(
        seen.ram_bytes,
        0xc0000 + 0x3f00000,
        "SYNC_SYSMEM maps all guest RAM"
    );
    // The proxy resends the whole map on every memory-topology commit while the machine
    // is built (ten times for this one); the last one is what counts.
    assert!(stats.memory_maps >= 1);
    for bar in 0..6u16 {
        let off = 0x10 + 4 * bar;
        let writes: Vec<_> = seen.config_writes.iter().filter(|w| w.0 == off).collect();
        assert_eq!(writes.len(), 2, "BAR{bar}: probe and write-back {writes:?}");
        assert_eq!(writes[0].2, 0xffff_ffff);
    }
}
