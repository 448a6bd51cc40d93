//! Backend benchmarks: hub forwarding (2, 4, 16 ports), the pcap dump filter's cost per
//! frame, and the socket backend on loopback (stream and mcast between two vm-nic
//! endpoints, and stream through a stock QEMU whose two socket netdevs share a hub).
//! Throughput is counted in frames: criterion's "elem/s" is frames per second.
//! `scripts/bench-backends.sh` runs this and prints the table.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vm_nic_backends::dump::{DumpFilter, FilterQueue};
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::{socket, Hub, NetBackend};

/// Frames per socket burst (one criterion iteration).
const BURST: usize = 32;
/// Any socket burst not delivered within this long fails the benchmark.
const TIMEOUT: Duration = Duration::from_secs(10);

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0xffu8; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| i as u8));
    f
}

fn hub(c: &mut Criterion) {
    for ports in [2usize, 4, 16] {
        let mut g = c.benchmark_group(format!("hub/{ports}ports"));
        g.throughput(Throughput::Elements(1));
        for len in [64usize, 1514] {
            let hub = Hub::new(0);
            let mut p: Vec<_> = (0..ports).map(|_| hub.add_port()).collect();
            let f = frame(len);
            let mut buf = vec![0u8; 2048];
            // One frame in at port 0, delivered to and taken by every other port.
            g.bench_function(BenchmarkId::new(len.to_string(), "b1"), |b| {
                b.iter(|| {
                    p[0].send(black_box(&f)).unwrap();
                    for q in p.iter_mut().skip(1) {
                        black_box(q.recv(&mut buf).unwrap());
                    }
                })
            });
            assert_eq!(p[ports - 1].counters().dropped, 0);
        }
        g.finish();
    }
}

fn dump(c: &mut Criterion) {
    let mut g = c.benchmark_group("dump");
    g.throughput(Throughput::Elements(1));
    for len in [64usize, 1514] {
        let f = frame(len);
        let mut bare = NullBackend::new();
        g.bench_function(BenchmarkId::new(format!("null/{len}"), "b1"), |b| {
            b.iter(|| bare.send(black_box(&f)).unwrap())
        });
        // Records go to /dev/null: the cost of the pcap path (record header, wall-clock
        // stamp, one write(2) per frame) without the storage behind it.
        let inner = Box::new(NullBackend::new());
        let path = std::path::Path::new("/dev/null");
        let mut d = DumpFilter::new(inner, path, 65535, FilterQueue::All).unwrap();
        g.bench_function(BenchmarkId::new(format!("filter-dump/{len}"), "b1"), |b| {
            b.iter(|| d.send(black_box(&f)).unwrap())
        });
    }
    g.finish();
}

fn opts(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A loopback port free for TCP and UDP a moment ago, below the ephemeral range.
fn free_port() -> u16 {
    let base = 20000 + (std::process::id() * 7919) % 12000;
    for n in 0..12000u32 {
        let port = (20000 + (base + n) % 12000) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Polls both ends until `a` has a link (connections established), bounded.
fn wait_link(a: &mut dyn NetBackend, b: &mut dyn NetBackend) {
    let end = Instant::now() + TIMEOUT;
    while !(a.link_up() && b.link_up()) {
        assert!(Instant::now() < end, "socket endpoints never connected");
        a.poll(Instant::now()).unwrap();
        b.poll(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends [`BURST`] frames from `a` and spins until `b` has received them all.
/// Frames `a` itself receives (its own multicast echoes) are drained and ignored.
fn burst(a: &mut dyn NetBackend, b: &mut dyn NetBackend, f: &[u8], buf: &mut [u8]) {
    let end = Instant::now() + TIMEOUT;
    let mut got = 0;
    for _ in 0..BURST {
        a.send(f).unwrap();
    }
    while got < BURST {
        let now = Instant::now();
        assert!(now < end, "burst lost frames: {got} of {BURST} arrived");
        a.poll(now).unwrap();
        b.poll(now).unwrap();
        while a.recv(buf).unwrap().is_some() {}
        while let Some(n) = b.recv(buf).unwrap() {
            got += usize::from(n == f.len());
        }
    }
}

/// Length of the probe frames [`wait_path`] sends; [`burst`] counts only frames of its
/// own length, so a late probe never passes for a burst frame.
const PROBE_LEN: usize = 100;

/// Sends a probe frame from `a` every 50 ms until one reaches `b`, bounded.
///
/// A connected socket is not yet a working path: a stream client's connect completes in
/// the kernel's backlog before QEMU accepts it, and QEMU drops what its hub forwards to a
/// socket netdev that has no connection yet. A burst sent in that gap is lost whole.
fn wait_path(a: &mut dyn NetBackend, b: &mut dyn NetBackend, buf: &mut [u8]) {
    let probe = frame(PROBE_LEN);
    let end = Instant::now() + TIMEOUT;
    let mut next_probe = Instant::now();
    loop {
        let now = Instant::now();
        assert!(now < end, "no probe frame crossed the path in {TIMEOUT:?}");
        if now >= next_probe {
            a.send(&probe).unwrap();
            next_probe = now + Duration::from_millis(50);
        }
        a.poll(now).unwrap();
        b.poll(now).unwrap();
        while a.recv(buf).unwrap().is_some() {}
        while let Some(n) = b.recv(buf).unwrap() {
            if n == PROBE_LEN {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn bench_pair(c: &mut Criterion, name: &str, a: &mut dyn NetBackend, b: &mut dyn NetBackend) {
    wait_link(a, b);
    let mut buf = vec![0u8; 70000];
    wait_path(a, b, &mut buf);
    let mut g = c.benchmark_group(format!("socket/{name}"));
    g.throughput(Throughput::Elements(BURST as u64));
    for len in [64usize, 1514] {
        let f = frame(len);
        // Settle: the first burst also proves the path works.
        burst(a, b, &f, &mut buf);
        g.bench_function(
            BenchmarkId::new(len.to_string(), format!("b{BURST}")),
            |bn| bn.iter(|| burst(a, b, &f, &mut buf)),
        );
    }
    g.finish();
}

/// Stock QEMU with no machine and two netdevs on hub 0; killed by PID on drop.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sockets(c: &mut Criterion) {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut a = socket::open(&opts(&[("listen", &listen)])).unwrap();
    let mut b = socket::open(&opts(&[("connect", &listen)])).unwrap();
    bench_pair(c, "stream", &mut *b, &mut *a);

    let group = format!("239.255.42.7:{}", free_port());
    let member = || socket::open(&opts(&[("mcast", &group), ("localaddr", "127.0.0.1")]));
    let (mut m1, mut m2) = (member().unwrap(), member().unwrap());
    bench_pair(c, "mcast", &mut *m1, &mut *m2);

    let (p1, p2) = (free_port(), free_port() + 1);
    let spawned = Command::new("qemu-system-x86_64")
        .args(["-M", "none", "-nodefaults", "-nographic"])
        .args(["-netdev", &format!("socket,id=a,listen=127.0.0.1:{p1}")])
        .args(["-netdev", &format!("socket,id=b,listen=127.0.0.1:{p2}")])
        .args(["-netdev", "hubport,id=ha,hubid=0,netdev=a"])
        .args(["-netdev", "hubport,id=hb,hubid=0,netdev=b"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        eprintln!("qemu-system-x86_64 not available: stream-via-qemu not measured");
        return;
    };
    let _qemu = Qemu(child);
    // QEMU needs a moment to listen; the clients retry (reconnect) until it does.
    let connect = |p: u16| {
        let t = format!("127.0.0.1:{p}");
        let end = Instant::now() + TIMEOUT;
        loop {
            match socket::open(&opts(&[("connect", &t)])) {
                Ok(s) => return s,
                Err(e) => {
                    assert!(Instant::now() < end, "QEMU never listened on {t}: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    };
    let mut qa = connect(p1);
    let mut qb = connect(p2);
    bench_pair(c, "stream-via-qemu", &mut *qa, &mut *qb);
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = hub, dump, sockets
}
criterion_main!(benches);
