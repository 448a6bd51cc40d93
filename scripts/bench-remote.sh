#!/usr/bin/env bash
# Round trips per second through `vm-nic remote`'s device server (benches/remote.rs): a
# client thread plays QEMU's proxy over a socketpair and reads NE2000 registers back to
# back, the pattern of the NE2000's programmed I/O. Prints the machine's load with it.
#
#   scripts/bench-remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --bench remote
