#!/usr/bin/env bash
# Bounded fuzzing for CI: builds every cargo-fuzz target and runs each for FUZZ_SECONDS
# (default 30) when a nightly toolchain is installed, installing cargo-fuzz from
# crates.io if it is missing. Any crash, leak, timeout or oracle violation fails the run.
# A target whose code is not in this build exits 77 at start-up and is reported as
# skipped. Runs on a scratch copy of each checked-in corpus, so the tree is not modified.
set -euo pipefail
cd "$(dirname "$0")"

secs=${FUZZ_SECONDS:-30}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain; skipping (cargo test replayed the corpora)"
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi

export CARGO_TERM_COLOR=never
cargo +nightly fuzz build
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin="target/$host/release"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

ran=0
skipped=0
for t in $(cargo +nightly fuzz list); do
    set +e
    "$bin/$t" -runs=0 >"$scratch/probe.log" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 77 ]; then
        echo "fuzz $t: SKIPPED: $(head -n1 "$scratch/probe.log")"
        skipped=$((skipped + 1))
        continue
    fi
    mkdir -p "$scratch/$t"
    if [ -d "corpus/$t" ]; then
        cp -r "corpus/$t/." "$scratch/$t/"
    fi
    echo "fuzz $t: ${secs}s"
    if ! cargo +nightly fuzz run "$t" "$scratch/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log"
        echo "fuzz $t: FAILED (reproducer above; artifacts in fuzz/artifacts/$t)"
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$scratch/$t.log" | sed "s/^/fuzz $t: /"
    ran=$((ran + 1))
done
echo "fuzz: $ran targets fuzzed without a crash, $skipped skipped"
