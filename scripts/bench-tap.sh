#!/usr/bin/env bash
# TAP backend with and without virtio-net header GSO passthrough (nics/benches/tap.rs):
# e1000 64 KiB TSO sends into a tap. Needs root. Creates a network namespace of its own,
# runs the bench inside it, and deletes the namespace (and with it the taps) on exit.
#
#   sudo scripts/bench-tap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-tap.sh: needs root (taps, a network namespace)" >&2; exit 2; }
ns="vmnic-bench-$$"
cleanup() { ip netns delete "$ns" 2>/dev/null || true; }
trap cleanup EXIT
# Build outside the namespace, run inside it.
cargo bench -p vm-nic-devices --bench tap --no-run >&2
ip netns add "$ns"
ip -n "$ns" link set lo up
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc: $(nproc);" \
    "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg); kernel: $(uname -r)"
ip netns exec "$ns" cargo bench -p vm-nic-devices --bench tap -- --noplot "$@" 2>&1 |
    grep -E '^tap/|time:|thrpt:'
