//! Round trips per second through `vm-nic remote`'s device server: a client thread plays
//! QEMU's `x-pci-proxy-dev` over a socketpair and reads an NE2000 register as fast as the
//! server answers, the access pattern of the NE2000's programmed I/O (every byte of a
//! frame is a BAR access and so one request and one `RET` over the socket).
//!
//! Run with `scripts/bench-remote.sh` (= `cargo bench --bench remote`). Prints, per
//! width, the median of five 1-second samples in round trips per second, the wall time of
//! one round trip, and the CPU time (user + system, client and server threads together)
//! one round trip cost over all samples: on a shared machine the wall figures follow the
//! load, the CPU figure much less. Run without `--bench` (as `cargo test --all-targets`
//! does) it only checks that the requests are answered and the server stops cleanly.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_nic::remote::protocol::{Message, HEADER_LEN, RET_LEN};
use vm_nic::remote::{device, memory, EventfdIrq, MonotonicClock, Server};
use vm_nic_devices::Clock;

/// Port the client places the NE2000's I/O BAR at.
const IO_BASE: u64 = 0xc000;
const SAMPLES: usize = 5;
const SAMPLE: Duration = Duration::from_secs(1);

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sends `request` and waits for its `RET`; returns the value.
fn call(sock: &mut UnixStream, request: &[u8]) -> u64 {
    sock.write_all(request).expect("request");
    let mut reply = [0u8; HEADER_LEN + RET_LEN];
    sock.read_exact(&mut reply).expect("reply");
    u64::from_le_bytes(reply[HEADER_LEN..].try_into().unwrap())
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (mut qemu, dev) = UnixStream::pair().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let irq = EventfdIrq::new();
    let nic = device::build_nic(
        "ne2k_pci,netdev=n0",
        &["user,id=n0".to_string()],
        Box::new(irq.clone()),
        clock.clone(),
        memory::empty(),
    )
    .expect("ne2k_pci on user");
    let mut server = Server::new(dev, nic, irq, clock).unwrap();
    let served = std::thread::spawn(move || server.run());

    // BAR 0 (I/O) at IO_BASE, I/O decoding on.
    for (addr, val, len) in [(0x10, IO_BASE as u32, 4), (0x04, 1, 2)] {
        let m = Message::PciCfgWrite { addr, val, len };
        call(&mut qemu, &m.encode());
    }
    if !measure {
        // Smoke run: the 8390's command register reads back what was written.
        let write = |val| Message::BarWrite {
            addr: IO_BASE,
            val,
            size: 1,
            memory: false,
        };
        for _ in 0..256 {
            call(&mut qemu, &write(0x21).encode());
            let read = Message::BarRead {
                addr: IO_BASE,
                size: 1,
                memory: false,
            };
            assert_eq!(call(&mut qemu, &read.encode()) & 0xe3, 0x21);
        }
        drop(qemu);
        let stats = served.join().unwrap().expect("clean stop");
        assert_eq!(stats.messages, 2 + 512);
        assert_eq!(stats.bar_reads, [256, 0, 0, 0]);
        return;
    }
    println!(
        "bench\tround trips/s (median of {SAMPLES})\tus per round trip\tCPU us per round trip"
    );
    for (name, size, offset) in [
        ("BAR_READ 1 byte (CR)", 1, 0x00),
        ("BAR_READ 4 bytes (data port)", 4, 0x10),
    ] {
        let req = Message::BarRead {
            addr: IO_BASE + offset,
            size,
            memory: false,
        }
        .encode();
        let mut rates = Vec::new();
        let cpu_start = cpu_time();
        let mut total = 0u64;
        for _ in 0..SAMPLES {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < SAMPLE {
                for _ in 0..256 {
                    call(&mut qemu, &req);
                }
                n += 256;
            }
            rates.push(n as f64 / start.elapsed().as_secs_f64());
            total += n;
        }
        let cpu = (cpu_time() - cpu_start).as_secs_f64() * 1e6 / total as f64;
        rates.sort_by(|a, b| a.total_cmp(b));
        let median = rates[SAMPLES / 2];
        println!("{name}\t{median:.0}\t{:.2}\t{cpu:.2}", 1e6 / median);
    }
    drop(qemu);
    let stats = served.join().unwrap().expect("clean stop");
    println!("server handled {} messages", stats.messages);
}
