#!/usr/bin/env bash
# Model benchmarks (nics/benches/models.rs) and the figures table of docs/performance.md.
#
#   scripts/bench-models.sh            # run every model bench, then print the table
#   scripts/bench-models.sh e1000/tx   # only benches whose id contains the filter
#   TABLE_ONLY=1 scripts/bench-models.sh   # print the table of the last run
#
# Prints a Markdown table per frame (time per batch / batch size): the median of
# criterion's samples, and the fastest sample ("best": each sample averages thousands of
# iterations; on a machine shared with other work it is the steadiest estimate of the CPU
# cost), with Mpps, Gbit/s of frame bytes and the ratio to a memcpy of the same number of
# bytes from the same run, all from the best sample. Also prints the machine facts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
if [ -z "${TABLE_ONLY:-}" ]; then
    touch "$stamp"
    # The memcpy baseline always runs, so every ratio has its denominator from this run.
    if [ $# -gt 0 ]; then
        cargo bench -p vm-nic-devices --bench models -- --noplot memcpy >&2
    fi
    cargo bench -p vm-nic-devices --bench models -- --noplot "$@" >&2
else
    touch -d '1970-01-01' "$stamp"
fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc: $(nproc);" \
    "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$target/criterion" "$stamp" <<'PY'
import json, os, sys
base, stamp = sys.argv[1], os.path.getmtime(sys.argv[2])
rows = {}
for dirpath, _, files in os.walk(base):
    if not dirpath.endswith("/new") or "benchmark.json" not in files:
        continue
    est = os.path.join(dirpath, "estimates.json")
    if os.path.getmtime(est) < stamp:
        continue
    b = json.load(open(os.path.join(dirpath, "benchmark.json")))
    if b["group_id"].split("/")[0] in ("hub", "dump", "socket", "tap"):
        continue  # the backend benches share target/criterion
    e = json.load(open(est))
    s = json.load(open(os.path.join(dirpath, "sample.json")))
    batch = int(b["value_str"].lstrip("b"))
    size = int(b["function_id"])
    best = min(t / n for t, n in zip(s["times"], s["iters"]))
    rows[(b["group_id"], size, batch)] = (e["median"]["point_estimate"] / batch, best / batch)
memcpy = {s: v for (g, s, _), v in rows.items() if g == "memcpy"}
print("| bench | bytes | batch | median ns/frame | best ns/frame | Mpps (best) | Gbit/s (best) | x memcpy (best) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def order(k):
    return (k[0] != "memcpy", k[0], k[1], k[2])
for (g, s, b) in sorted(rows, key=order):
    med, best = rows[(g, s, b)]
    m = memcpy.get(s)
    ratio = f"{best / m[1]:.1f}" if m else "-"
    print(f"| {g} | {s} | {b} | {med:.1f} | {best:.1f} | {1e3 / best:.2f} | {s * 8 / best:.2f} | {ratio} |")
PY
