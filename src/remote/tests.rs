//! The server driven by a fake QEMU proxy over a socketpair, with a small test NIC whose
//! registers record what reached them.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vm_memory::GuestMemoryMmap;
use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_backends::{MacAddr, NetBackend};
use vm_nic_devices::irq::Intx;
use vm_nic_devices::{BarSpec, NicDevice, PciConfig, PciIds, RxOutcome};

use super::memory::tests::memfd;
use super::protocol::{self, cmd, header, Message, ProtoError, SysmemRegion};
use super::*;

/// Registers of the test NIC (BAR 0, 32-bit each).
mod reg {
    /// Guest address the DMA probe reads from.
    pub const DMA_ADDR: u64 = 0x00;
    /// Write: read 4 bytes at DMA_ADDR into DMA_DATA.
    pub const DMA_GO: u64 = 0x04;
    /// Result of the DMA probe (0xdead0000 | fault when outside RAM).
    pub const DMA_DATA: u64 = 0x08;
    /// Interrupt level requested by the device.
    pub const IRQ: u64 = 0x0c;
    /// Receive buffers the guest has posted.
    pub const RX_SLOTS: u64 = 0x10;
    /// Frames received.
    pub const RX_COUNT: u64 = 0x14;
}

#[derive(Debug, Default)]
struct Log {
    accesses: Vec<(u8, u64, u8, Option<u32>)>,
    resets: u32,
    links: Vec<bool>,
}

/// A PCI NIC with a 128 KiB memory BAR 0 and a 64-byte I/O BAR 1.
struct TestNic {
    pci: PciConfig,
    intx: Intx,
    regs: [u32; 8],
    mem: GuestMemoryMmap,
    backend: Box<dyn NetBackend>,
    log: Arc<Mutex<Log>>,
}

const IDS: PciIds = PciIds {
    vendor: 0x8086,
    device: 0x100e,
    revision: 3,
    class: 0x02_00_00,
    subsystem_vendor: 0x8086,
    subsystem: 0x001e,
    interrupt_pin: 1,
};

impl NicDevice<GuestMemoryMmap> for TestNic {
    fn model(&self) -> &'static str {
        "test"
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
        self.pci.write(offset, size, value)
    }
    fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u32 {
        self.log
            .lock()
            .unwrap()
            .accesses
            .push((bar, offset, size, None));
        self.regs.get(offset as usize / 4).copied().unwrap_or(0)
    }
    fn bar_write(&mut self, bar: u8, offset: u64, size: u8, value: u32) {
        self.log
            .lock()
            .unwrap()
            .accesses
            .push((bar, offset, size, Some(value)));
        if bar != 0 || offset as usize / 4 >= self.regs.len() {
            return;
        }
        self.regs[offset as usize / 4] = value;
        match offset {
            reg::DMA_GO => {
                let got = vm_nic_devices::dma::read_array::<_, 4>(&self.mem, self.regs[0] as u64);
                self.regs[2] = got.map_or(0xdead_0000, u32::from_le_bytes);
            }
            reg::IRQ => self.intx.update_pci(value != 0, &mut self.pci),
            _ => {}
        }
    }
    fn set_memory(&mut self, mem: GuestMemoryMmap) {
        self.mem = mem;
    }
    fn can_receive(&self) -> bool {
        true
    }
    fn receive(&mut self, _frame: &[u8]) -> RxOutcome {
        let slots = &mut self.regs[reg::RX_SLOTS as usize / 4];
        if *slots == 0 {
            return RxOutcome::NoBuffer;
        }
        *slots -= 1;
        self.regs[reg::RX_COUNT as usize / 4] += 1;
        RxOutcome::Accepted
    }
    fn set_link(&mut self, up: bool) {
        self.log.lock().unwrap().links.push(up);
    }
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    fn run_timers(&mut self) {}
    fn reset(&mut self) {
        self.pci.reset();
        self.regs = [0; 8];
        self.log.lock().unwrap().resets += 1;
    }
    fn backend(&self) -> &dyn NetBackend {
        &*self.backend
    }
    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        &mut *self.backend
    }
}

struct Harness {
    qemu: UnixStream,
    server: Option<JoinHandle<Result<Stats, ServerError>>>,
    log: Arc<Mutex<Log>>,
    net: RecordingHandle,
    irq: EventfdIrq,
}

fn start() -> Harness {
    let (qemu, dev) = UnixStream::pair().unwrap();
    qemu.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let irq = EventfdIrq::new();
    let log = Arc::new(Mutex::new(Log::default()));
    let (backend, net) = RecordingBackend::new();
    let nic = TestNic {
        pci: PciConfig::new(
            IDS,
            &[Some(BarSpec::mem32(0x20000)), Some(BarSpec::io(0x40))],
        ),
        intx: Intx::new(Box::new(irq.clone())),
        regs: [0; 8],
        mem: memory::empty(),
        backend: Box::new(backend),
        log: log.clone(),
    };
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let mut server = Server::new(dev, Box::new(nic), irq.clone(), clock).unwrap();
    server
        .set_message_timeout(Duration::from_millis(300))
        .unwrap();
    let server = Some(std::thread::spawn(move || server.run()));
    Harness {
        qemu,
        server,
        log,
        net,
        irq,
    }
}

impl Harness {
    fn send(&self, m: &Message) {
        protocol::write_message(&self.qemu, m).unwrap();
    }

    /// Sends a request and returns the value of its RET.
    fn call(&self, m: Message) -> u64 {
        self.send(&m);
        match protocol::read_message(&self.qemu).unwrap() {
            Some(Message::Ret(v)) => v,
            other => panic!("expected RET, got {other:?}"),
        }
    }

    fn cfg_read(&self, addr: u32, len: i32) -> u64 {
        self.call(Message::PciCfgRead { addr, len })
    }

    fn cfg_write(&self, addr: u32, val: u32, len: i32) -> u64 {
        self.call(Message::PciCfgWrite { addr, val, len })
    }

    fn mmio_write(&self, addr: u64, val: u64, size: u32) -> u64 {
        self.call(Message::BarWrite {
            addr,
            val,
            size,
            memory: true,
        })
    }

    fn mmio_read(&self, addr: u64, size: u32) -> u64 {
        self.call(Message::BarRead {
            addr,
            size,
            memory: true,
        })
    }

    /// Places BAR 0 at 0xfeb00000 and BAR 1 at port 0xc000 and enables decoding.
    fn place_bars(&self) {
        assert_eq!(self.cfg_write(0x10, 0xfeb0_0000, 4), 0);
        assert_eq!(self.cfg_write(0x14, 0xc000, 4), 0);
        assert_eq!(self.cfg_write(0x04, 0x0007, 2), 0);
    }

    /// Closes the QEMU end and returns how the server ended.
    fn finish(mut self) -> Result<Stats, ServerError> {
        drop(self.qemu);
        self.server.take().unwrap().join().unwrap()
    }

    /// Waits (bounded) for the server to stop on its own, with the QEMU end still open.
    fn server_result(mut self) -> Result<Stats, ServerError> {
        self.server.take().unwrap().join().unwrap()
    }
}

#[test]
fn startup_config_reads_and_bar_sizing_probe() {
    let h = start();
    assert_eq!(h.cfg_read(0x00, 2), 0x8086);
    assert_eq!(h.cfg_read(0x02, 2), 0x100e);
    assert_eq!(h.cfg_read(0x08, 4), 0x0200_0003, "class and revision");
    assert_eq!(h.cfg_read(0x2c, 4), 0x001e_8086);
    // The proxy's probe: read, write all-ones, read the size mask, write back.
    let expect = [
        (0x10, 0xfffe_0000u64, 0),
        (0x14, 0xffff_ffc1, 1),
        (0x18, 0, 0),
    ];
    for (off, mask, low) in expect {
        let orig = h.cfg_read(off, 4);
        assert_eq!(orig, low, "BAR at {off:#x} power-on value");
        assert_eq!(h.cfg_write(off, 0xffff_ffff, 4), 0);
        assert_eq!(h.cfg_read(off, 4), mask, "BAR at {off:#x} size mask");
        h.cfg_write(off, orig as u32, 4);
        assert_eq!(h.cfg_read(off, 4), orig);
    }
    // Out of range or odd widths: all-ones, as the proxy treats an error.
    assert_eq!(h.cfg_read(0xff, 2), u64::MAX);
    assert_eq!(h.cfg_read(0x00, 3), u64::MAX);
    assert_eq!(h.cfg_write(0x100, 1, 1), u64::MAX);
    let stats = h.finish().unwrap();
    assert_eq!(stats.messages, 22);
}

#[test]
fn bar_accesses_are_decoded_to_bar_and_offset() {
    let h = start();
    // Before the BARs are placed and enabled nothing decodes.
    assert_eq!(h.mmio_read(0xfeb0_0000, 4), u64::MAX);
    h.place_bars();
    assert_eq!(h.mmio_write(0xfeb0_0000 + reg::IRQ, 0, 4), 0);
    assert_eq!(h.mmio_write(0xfeb0_0000 + reg::RX_SLOTS, 0x55, 4), 0);
    assert_eq!(h.mmio_read(0xfeb0_0000 + reg::RX_SLOTS, 4), 0x55);
    assert_eq!(
        h.call(Message::BarRead {
            addr: 0xc010,
            size: 2,
            memory: false
        }),
        0x55,
        "port 0xc010 is BAR 1 offset 0x10"
    );
    // A port address in memory space and an address past the BAR do not decode.
    assert_eq!(h.mmio_read(0xc010, 4), u64::MAX);
    assert_eq!(h.mmio_read(0xfeb2_0000, 4), u64::MAX);
    // 8-byte accesses are split, low half first; other widths are refused.
    assert_eq!(h.mmio_write(0xfeb0_0000, 0x1111_2222_3333_4444, 8), 0);
    assert_eq!(h.mmio_read(0xfeb0_0000, 8), 0x1111_2222_3333_4444);
    assert_eq!(h.mmio_read(0xfeb0_0000, 3), u64::MAX);
    let accesses = h.log.lock().unwrap().accesses.clone();
    assert_eq!(accesses[2], (0, 0x10, 4, None));
    assert_eq!(accesses[3], (1, 0x10, 2, None));
    assert_eq!(accesses[4], (0, 0, 4, Some(0x3333_4444)));
    assert_eq!(accesses[5], (0, 4, 4, Some(0x1111_2222)));
    assert_eq!(accesses.len(), 8);
    // Disabling memory decoding in the command register stops MMIO decode.
    h.cfg_write(0x04, 0x0001, 2);
    assert_eq!(h.mmio_read(0xfeb0_0000, 4), u64::MAX);
    let stats = h.finish().unwrap();
    assert_eq!(stats.unclaimed, 4);
    // Counted by width whether or not they decode; the 3-byte read is not counted.
    assert_eq!(stats.bar_reads, [0, 1, 5, 1]);
    assert_eq!(stats.bar_writes, [0, 0, 2, 1]);
}

#[test]
fn sync_sysmem_gives_the_device_guest_ram() {
    let h = start();
    let fd = memfd(0x200000);
    h.send(&Message::SyncSysmem {
        regions: vec![
            SysmemRegion {
                gpa: 0,
                size: 0xc0000,
                offset: 0,
            },
            SysmemRegion {
                gpa: 0x100000,
                size: 0x100000,
                offset: 0x100000,
            },
        ],
        fds: vec![fd.try_clone().unwrap(), fd.try_clone().unwrap()],
    });
    h.place_bars();
    // Page 0x105 of the memfd starts with byte 0x05 (see memfd()).
    h.mmio_write(0xfeb0_0000 + reg::DMA_ADDR, 0x105000, 4);
    h.mmio_write(0xfeb0_0000 + reg::DMA_GO, 1, 4);
    assert_eq!(h.mmio_read(0xfeb0_0000 + reg::DMA_DATA, 4), 0x05);
    // The hole between the regions is not RAM.
    h.mmio_write(0xfeb0_0000 + reg::DMA_ADDR, 0xc0000, 4);
    h.mmio_write(0xfeb0_0000 + reg::DMA_GO, 1, 4);
    assert_eq!(h.mmio_read(0xfeb0_0000 + reg::DMA_DATA, 4), 0xdead_0000);
    // A later SYNC_SYSMEM replaces the whole map.
    h.send(&Message::SyncSysmem {
        regions: vec![SysmemRegion {
            gpa: 0x1000_0000,
            size: 0x1000,
            offset: 0x3000,
        }],
        fds: vec![fd.try_clone().unwrap()],
    });
    h.mmio_write(0xfeb0_0000 + reg::DMA_ADDR, 0x1000_0000, 4);
    h.mmio_write(0xfeb0_0000 + reg::DMA_GO, 1, 4);
    assert_eq!(h.mmio_read(0xfeb0_0000 + reg::DMA_DATA, 4), 0x03);
    let stats = h.finish().unwrap();
    assert_eq!(stats.memory_maps, 2);
}

#[test]
fn set_irqfd_drives_intx_and_honours_resample() {
    let h = start();
    let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
    let irqfd = rustix::event::eventfd(0, flags).unwrap();
    let resample = rustix::event::eventfd(0, flags).unwrap();
    h.send(&Message::SetIrqfd {
        irqfd: irqfd.try_clone().unwrap(),
        resamplefd: resample.try_clone().unwrap(),
    });
    h.place_bars();
    let count = |fd: &OwnedFd| {
        let mut b = [0u8; 8];
        rustix::io::read(fd, &mut b).map_or(0, |_| u64::from_ne_bytes(b))
    };
    h.mmio_write(0xfeb0_0000 + reg::IRQ, 1, 4);
    assert_eq!(count(&irqfd), 1);
    assert_eq!(h.cfg_read(0x06, 2) & 0x8, 0x8, "PCI status Interrupt bit");
    // The guest EOIs while the device still asserts: the server re-signals. Wait for it
    // with a bounded loop (the server sees the resample on its next poll).
    rustix::io::write(&resample, &1u64.to_ne_bytes()).unwrap();
    let mut resignalled = 0;
    for _ in 0..100 {
        resignalled = count(&irqfd);
        if resignalled != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(resignalled, 1);
    h.mmio_write(0xfeb0_0000 + reg::IRQ, 0, 4);
    assert!(!h.irq.level());
    assert_eq!(count(&irqfd), 0);
    h.finish().unwrap();
}

#[test]
fn device_reset_is_forwarded_and_answered() {
    let h = start();
    h.place_bars();
    assert_eq!(h.call(Message::DeviceReset), 0);
    assert_eq!(h.log.lock().unwrap().resets, 1);
    assert_eq!(h.cfg_read(0x10, 4), 0, "BARs back to power-on values");
    h.finish().unwrap();
}

#[test]
fn frames_wait_in_the_backend_until_the_guest_posts_buffers() {
    let h = start();
    h.place_bars();
    assert!(h.net.inject(&[0xaa; 60]));
    assert!(h.net.inject(&[0xbb; 60]));
    // No buffers: the first frame is held, none is lost.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h.mmio_read(0xfeb0_0000 + reg::RX_COUNT, 4), 0);
    h.mmio_write(0xfeb0_0000 + reg::RX_SLOTS, 2, 4);
    let mut received = 0;
    for _ in 0..100 {
        received = h.mmio_read(0xfeb0_0000 + reg::RX_COUNT, 4);
        if received == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(received, 2);
    assert_eq!(h.net.pending(), 0);
    assert_eq!(h.finish().unwrap().rx_frames, 2);
}

#[test]
fn disconnect_between_messages_is_a_clean_stop() {
    let h = start();
    assert_eq!(h.cfg_read(0, 2), 0x8086);
    assert_eq!(h.finish().unwrap().messages, 1);
}

#[test]
fn truncated_message_stops_with_an_error() {
    use std::io::Write;
    let h = start();
    let bytes = Message::BarRead {
        addr: 0,
        size: 4,
        memory: true,
    }
    .encode();
    (&h.qemu).write_all(&bytes[..20]).unwrap();
    let e = h.finish().unwrap_err();
    assert!(
        matches!(
            e,
            ServerError::Protocol(ProtoError::Truncated {
                what: "BAR_READ",
                got: 4,
                want: 24
            })
        ),
        "{e}"
    );
}

#[test]
fn stalled_message_does_not_hang_the_server() {
    use std::io::Write;
    let h = start();
    (&h.qemu).write_all(&header(cmd::PCI_CFGREAD, 12)).unwrap();
    let e = h.server_result().unwrap_err();
    assert!(e.to_string().contains("stopped sending"), "{e}");
}

#[test]
fn malformed_messages_stop_with_an_error() {
    use std::io::Write;
    for (bytes, want) in [
        (header(42, 0).to_vec(), "unknown command 42"),
        (
            header(cmd::BAR_WRITE, 1 << 40).to_vec(),
            "BAR_WRITE (4) with a 1099511627776-byte payload",
        ),
        (
            header(cmd::SET_IRQFD, 0).to_vec(),
            "came with 0 file descriptors",
        ),
    ] {
        let h = start();
        (&h.qemu).write_all(&bytes).unwrap();
        let e = h.server_result().unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}

#[test]
fn bad_descriptors_stop_with_an_error() {
    let h = start();
    h.send(&Message::SetIrqfd {
        irqfd: memfd(4096),
        resamplefd: memfd(4096),
    });
    let e = h.server_result().unwrap_err();
    assert!(e.to_string().contains("irqfd is not an eventfd"), "{e}");

    let h = start();
    h.send(&Message::SyncSysmem {
        regions: vec![SysmemRegion {
            gpa: 0,
            size: 0x10_0000,
            offset: 0,
        }],
        fds: vec![memfd(4096)],
    });
    let e = h.server_result().unwrap_err();
    assert!(e.to_string().contains("past the end of its file"), "{e}");
}

#[test]
fn command_line() {
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let got = parse_args(&a(&[
        "--fd",
        "3",
        "-device",
        "e1000,netdev=n0",
        "-netdev",
        "user,id=n0",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(got.endpoint, Endpoint::Fd(3));
    assert_eq!(got.netdevs, vec!["user,id=n0"]);
    assert!(parse_args(&a(&["--help"])).unwrap().is_none());
    assert!(parse_args(&a(&["--fd", "-1", "-device", "e1000"]))
        .unwrap_err()
        .contains("not a file descriptor"));
    assert!(parse_args(&a(&["-device", "e1000"]))
        .unwrap_err()
        .contains("--fd N or --socket PATH"));
    assert!(parse_args(&a(&["--fd", "3"]))
        .unwrap_err()
        .contains("-device"));
    assert!(parse_args(&a(&["--bogus"]))
        .unwrap_err()
        .contains("'--bogus'"));
}

#[test]
fn inherited_fd_must_be_an_open_unix_stream_socket() {
    let e = inherited_socket(1_000_000).unwrap_err();
    assert!(e.contains("--fd 1000000"), "{e}");
    let file = memfd(4096);
    let e = inherited_socket(file.as_raw_fd()).unwrap_err();
    assert!(e.contains("not a Unix stream socket"), "{e}");
    let (a, _b) = UnixStream::pair().unwrap();
    let raw = std::os::fd::IntoRawFd::into_raw_fd(a);
    let s = inherited_socket(raw).unwrap();
    assert_eq!(s.as_raw_fd(), raw);
}

#[test]
fn socket_endpoint_serves_the_first_connection_and_removes_the_path() {
    let dir = std::env::temp_dir().join(format!("vm-nic-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nic.sock");
    let p = path.to_str().unwrap().to_string();
    let acceptor = std::thread::spawn(move || accept_one(&p));
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = UnixStream::connect(&path) {
            client = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let client = client.expect("connect to the listening socket");
    let served = acceptor.join().unwrap().unwrap();
    assert!(!path.exists(), "the socket path is removed once connected");
    protocol::write_ret(&served, 7).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(
        protocol::read_message(&client).unwrap(),
        Some(Message::Ret(7))
    ));
    let e = accept_one(dir.join("missing/nic.sock").to_str().unwrap()).unwrap_err();
    assert!(e.contains("--socket"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_options_are_refused_before_serving_and_isa_cards_are_accepted() {
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // An ISA card gets past device construction (behind its carrier function) to the
    // endpoint, which is what fails here.
    let e = main(&a(&["--fd", "1000000", "-device", "ne2k_isa"])).unwrap_err();
    assert!(e.contains("--fd 1000000"), "{e}");
    let e = main(&a(&[
        "--fd",
        "1000000",
        "-device",
        "e1000,netdev=n0",
        "-netdev",
        "bogus,id=n0",
    ]))
    .unwrap_err();
    assert!(
        e.contains("-netdev bogus,id=n0") && e.contains("'bogus' is not a valid -netdev type"),
        "{e}"
    );
    let e = main(&a(&["--fd", "1000000", "-device", "e1000"])).unwrap_err();
    assert!(e.contains("--fd 1000000"), "{e}");
}

#[test]
fn backend_link_changes_reach_the_nic() {
    let h = start();
    h.net.set_link(false);
    // The server looks at the link each turn (at least every 100 ms); wait, bounded.
    let mut links = Vec::new();
    for _ in 0..100 {
        links = h.log.lock().unwrap().links.clone();
        if !links.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(links, vec![false]);
    h.net.set_link(true);
    for _ in 0..100 {
        links = h.log.lock().unwrap().links.clone();
        if links.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(links, vec![false, true]);
    h.finish().unwrap();
}
