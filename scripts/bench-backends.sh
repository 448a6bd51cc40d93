#!/usr/bin/env bash
# Backend benchmarks (backends/benches/net.rs): hub forwarding with 2, 4 and 16 ports,
# the filter-dump overhead, the socket backend (stream and mcast on loopback between two
# vm-nic endpoints, and stream through a stock QEMU whose two socket netdevs share a hub).
# Needs qemu-system-x86_64 for the QEMU row (skipped with a message otherwise).
#
#   scripts/bench-backends.sh [criterion filter]
#
# Prints the machine facts, then one line per bench: id, mean time per iteration, and
# frames per second (criterion's elem/s; a socket iteration is a burst of 32 frames).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc: $(nproc);" \
    "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -p vm-nic-backends --bench net -- --noplot "$@" 2>&1 |
    awk '/^(hub|dump|socket)\// {id = $1} /time:/ {t = $0; sub(/.*time: */, "", t)}
         /thrpt:/ && id != "" {r = $0; sub(/.*thrpt: */, "", r); print id, "time", t, "rate", r; id = ""}
         /not measured/ {print}'
