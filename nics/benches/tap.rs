//! e1000 64 KiB TSO sends into a TAP, with the virtio-net header (the model hands the
//! whole send to the kernel as one GSO frame) and without (the model cuts 46 segments
//! and computes their checksums; 46 writes). Needs root and is meant to run inside a
//! throw-away network namespace: `scripts/bench-tap.sh` creates and deletes it. The tap
//! is up with an address; the frames are addressed to another host, so the kernel takes
//! and drops them after the tap's receive path, as it would forward them on a bridge.

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vm_nic_backends::tap::{TapBackend, TapConfig};
use vm_nic_devices::e1000::Variant;

#[path = "rigs/mod.rs"]
mod rigs;

use rigs::e1000::{E1000Rig, Load};
use rigs::{Dir, Rig};

fn tap(vnet_hdr: bool) -> TapBackend {
    let name = if vnet_hdr { "vmnicg1" } else { "vmnicg0" };
    let cfg = TapConfig {
        ifname: name.into(),
        script: None,
        downscript: None,
        vnet_hdr: Some(vnet_hdr),
        queues: 1,
        sndbuf: None,
    };
    let t = TapBackend::open(&cfg).expect("tap (root, inside scripts/bench-tap.sh)");
    let addr = if vnet_hdr {
        "10.98.1.1/24"
    } else {
        "10.98.0.1/24"
    };
    for args in [
        vec!["link", "set", name, "up"],
        vec!["addr", "add", addr, "dev", name],
    ] {
        let ok = Command::new("ip")
            .args(&args)
            .status()
            .expect("ip")
            .success();
        assert!(ok, "ip {args:?} failed");
    }
    t
}

fn tso_into_tap(c: &mut Criterion) {
    let mut g = c.benchmark_group("tap/e1000-tso");
    g.throughput(Throughput::Elements(1));
    for vnet in [false, true] {
        let backend = Box::new(tap(vnet));
        let mut rig =
            E1000Rig::with_backend(Variant::E82540EM, Dir::Tx, Load::Tso(65536), 1, backend);
        let id = if vnet { "gso-passthrough" } else { "segmented" };
        g.bench_function(BenchmarkId::new("65536", id), |b| {
            b.iter(|| black_box(rig.run_batch()))
        });
        let sent = rig.frames_done();
        assert!(sent > 0, "nothing reached the tap");
    }
    g.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = tso_into_tap
}
criterion_main!(benches);
