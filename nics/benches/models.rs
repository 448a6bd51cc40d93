//! Per-frame cost of every model's transmit and receive path, driven as the Linux
//! driver drives it (see `rigs/`), on a null backend, next to a memcpy of the same
//! bytes. One criterion iteration is one batch; throughput is counted in frames, so
//! criterion's "elem/s" is frames per second. `scripts/bench-models.sh` turns the
//! results into the table of docs/performance.md (ns/frame, Mpps, Gbit/s, ratio to
//! memcpy).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vm_nic_devices::e1000::Variant;

#[path = "rigs/mod.rs"]
mod rigs;

use rigs::e1000::{E1000Rig, Load};
use rigs::ne2000::Ne2000Rig;
use rigs::rtl8139::{Mode, Rtl8139Rig};
use rigs::{Dir, Rig};

/// 64 KiB TSO send: 54 bytes of headers and 65482 bytes of payload.
const TSO: usize = 65536;

fn run<R: Rig>(c: &mut Criterion, group: &str, len: usize, batch: u32, mut rig: R) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function(
        BenchmarkId::new(len.to_string(), format!("b{batch}")),
        |b| b.iter(|| black_box(rig.run_batch())),
    );
    g.finish();
}

fn memcpy(c: &mut Criterion) {
    let mut g = c.benchmark_group("memcpy");
    for len in [64usize, 1514, 9000, TSO] {
        let src: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut dst = vec![0u8; len];
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new(len.to_string(), "b1"), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

fn e1000(c: &mut Criterion) {
    for v in [Variant::E82540EM, Variant::E82544GC, Variant::E82545EM] {
        for dir in [Dir::Tx, Dir::Rx] {
            let group = format!("{}/{}", v.model(), dir_name(dir));
            for len in [64usize, 1514, 9000] {
                for batch in [1u32, 32, 256] {
                    let rig = E1000Rig::new(v, dir, Load::Frame(len), batch);
                    run(c, &group, len, batch, rig);
                }
            }
        }
        let rig = E1000Rig::new(v, Dir::Tx, Load::Tso(TSO), 1);
        run(c, &format!("{}/tso", v.model()), TSO, 1, rig);
    }
}

fn rtl8139(c: &mut Criterion) {
    let cases: &[(Mode, Dir, usize, &[u32])] = &[
        (Mode::Normal, Dir::Tx, 64, &[1, 4]),
        (Mode::Normal, Dir::Tx, 1514, &[1, 4]),
        (Mode::Normal, Dir::Rx, 64, &[1, 32, 256]),
        (Mode::Normal, Dir::Rx, 1514, &[1, 16]),
        (Mode::CPlus, Dir::Tx, 64, &[1, 32]),
        (Mode::CPlus, Dir::Tx, 1514, &[1, 32]),
        (Mode::CPlus, Dir::Rx, 64, &[1, 32]),
        (Mode::CPlus, Dir::Rx, 1514, &[1, 32]),
        (Mode::CPlusTso, Dir::Tx, TSO, &[1]),
    ];
    for &(mode, dir, len, batches) in cases {
        let group = match (mode, dir) {
            (Mode::Normal, d) => format!("rtl8139/{}", dir_name(d)),
            (Mode::CPlus, d) => format!("rtl8139-cplus/{}", dir_name(d)),
            (Mode::CPlusTso, _) => "rtl8139-cplus/tso".to_string(),
        };
        for &batch in batches {
            run(
                c,
                &group,
                len,
                batch,
                Rtl8139Rig::new(mode, dir, len, batch),
            );
        }
    }
}

fn ne2000(c: &mut Criterion) {
    let cases: &[(Dir, usize, &[u32])] = &[
        (Dir::Tx, 64, &[1]),
        (Dir::Tx, 1514, &[1]),
        (Dir::Rx, 64, &[1, 32]),
        (Dir::Rx, 1514, &[1, 8]),
    ];
    for &(dir, len, batches) in cases {
        for &batch in batches {
            let group = format!("ne2k_pci/{}", dir_name(dir));
            run(c, &group, len, batch, Ne2000Rig::new(dir, len, batch));
        }
    }
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::Tx => "tx",
        Dir::Rx => "rx",
    }
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
    targets = memcpy, e1000, rtl8139, ne2000
}
criterion_main!(benches);
