#!/usr/bin/env bash
# The answer classifier's property test at full length: FUZZ_CASES generated answers
# (default 1,000,000; the normal `cargo test` runs 20,000) from the seeds in tests/fuzz-corpus/.
# Reproducible: FUZZ_SEED (default 0xc0ffee20245eed) picks the run, FUZZ_CASE=N replays one
# case, FUZZ_THREADS sets the threads (default: all cores). Prints the seed, the case count,
# the time and executions per second; fails on the first broken property.
set -euo pipefail
cd "$(dirname "$0")/.."

export FUZZ_CASES="${FUZZ_CASES:-1000000}"
cargo test --release --test classifier_fuzz -- --exact classifier_properties_hold_for_generated_answers --nocapture
