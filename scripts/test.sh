#!/usr/bin/env bash
# Every test: Rust lints, Rust tests (core, integration against the emulator, header
# freshness, emulator), the C tests (also under valgrind), the installed package, the
# bindings (the VBA sample's Declares checked against the header), the budget shared across
# processes, the READMEs' code blocks, the Windows build and its tests under Wine, the C# NuGet
# package.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every test takes a request budget of its own (tests/common/mod.rs, tests/c/own_budget.h, the
# Go and C# test mains) and the scripts give the programs they run one of theirs; this fresh
# file is for anything else this run starts, so that nothing touches the user's own.
budget_dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-test-budget.XXXXXX")
trap 'rm -rf "$budget_dir"' EXIT
export CAPMONSTER_BUDGET_FILE=$budget_dir/budget

echo "== Rust lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --release --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== Rust tests"
cargo test --workspace --release
echo "== C tests"
scripts/test-c.sh
echo "== Hardening: sanitizers, ABI abuse, short soak"
scripts/test-hardening.sh
echo "== Installation (pkg-config, CMake, static)"
scripts/test-install.sh
echo "== Go binding"
scripts/test-go.sh
echo "== C# binding (Mono)"
bindings/csharp/run-tests.sh
echo "== The request budget across processes: C, Go and C#"
scripts/test-budget-processes.sh
echo "== VBA: bindings/vba's Declares against the header (32- and 64-bit)"
scripts/check-vba.py
echo "== The READMEs' code blocks, as a reader runs them"
scripts/test-readme.sh
echo "== Windows: both DLLs built; C tests and the demo under 64- and 32-bit Wine, Rust tests under 64-bit"
scripts/test-windows.sh
echo "== C# NuGet package: built with the DLLs above, tested from its extracted layout (Mono, xbuild)"
bindings/csharp/test-package.sh
echo "== all tests passed"
