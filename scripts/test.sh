#!/usr/bin/env bash
# Every test: Rust (core, integration against the emulator, header freshness, emulator),
# then the C tests (also under valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust tests"
cargo test --workspace --release
echo "== C tests"
scripts/test-c.sh
echo "== all tests passed"
