#!/usr/bin/env bash
# Runs every vm-nic test: formatting, clippy, unit, integration, real-guest and
# corpus-replay tests. As root on Debian it first installs the packages the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    scripts/install-deps.sh
fi

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
cargo run --quiet --example vmm_event_loop && cargo run --quiet --example vmm_runner   # docs/integrating.md
