#!/usr/bin/env bash
# Model benchmarks (nics/benches/models.rs) and the figures table of docs/performance.md.
#
#   scripts/bench-models.sh            # run every model bench, then print the table
#   scripts/bench-models.sh e1000/tx   # only benches whose id contains the filter
#   TABLE_ONLY=1 scripts/bench-models.sh   # print the table of the last run
#
# Prints a Markdown table: ns/frame (criterion's mean per batch / batch size), Mpps,
# Gbit/s of frame bytes, and the ratio to a memcpy of the same number of bytes measured
# in the same run. Also prints the machine facts the document records with each figure.
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
    e = json.load(open(est))
    batch = int(b["value_str"].lstrip("b"))
    size = int(b["function_id"])
    rows[(b["group_id"], size, batch)] = e["mean"]["point_estimate"] / batch
memcpy = {s: ns for (g, s, _), ns in rows.items() if g == "memcpy"}
print("| bench | bytes | batch | ns/frame | Mpps | Gbit/s | memcpy ns | x memcpy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def order(k):
    return (k[0] != "memcpy", k[0], k[1], k[2])
for (g, s, b) in sorted(rows, key=order):
    ns = rows[(g, s, b)]
    m = memcpy.get(s)
    ratio = f"{ns / m:.1f}" if m else "-"
    ms = f"{m:.1f}" if m else "-"
    print(f"| {g} | {s} | {b} | {ns:.1f} | {1e3 / ns:.2f} | {s * 8 / ns:.2f} | {ms} | {ratio} |")
PY
