#!/usr/bin/env bash
# The test command: every section in order (what CI runs), or the sections named.
#
#   scripts/test.sh                  every section
#   scripts/test.sh rust c go        those, in that order
#   scripts/test.sh --list           the sections, one line each
#
# Each section builds what it needs (quietly) and so also runs alone on a fresh clone; each
# prints its wall time, and a table of them ends the run. The first failing section ends it.
# Packages: scripts/install-deps.sh, once (a section that lacks a tool fails naming it).
set -euo pipefail
cd "$(dirname "$0")/.."

# name|description|command (run from the repository root)
SECTIONS=(
    "lint|Rust lints: rustfmt, clippy and rustdoc, warnings denied|rust_lints"
    "rust|Rust tests: the core, integration against the emulator, the header, the emulator|rust_tests"
    "c|C tests: the header as C99 and C++, tests/c against the emulator, again under valgrind|scripts/test-c.sh"
    "hardening|C tests under ASan+UBSan, the ABI abuse test (plain, valgrind), a short soak|scripts/test-hardening.sh"
    "install|scripts/install.sh into a temporary prefix, used through pkg-config, CMake, statically, Go|scripts/test-install.sh"
    "go|Go binding: gofmt, go vet, go test (also -race), examples/many|scripts/test-go.sh"
    "csharp|C# binding under Mono: the examples and the tests against the emulator|bindings/csharp/run-tests.sh"
    "python|Python binding: the wheel built, tagged manylinux, installed into a fresh venv, pytest against the emulator|scripts/test-python.sh"
    "budget-processes|one budget file shared by C, Go and C# processes: the request budget, the account guard; one Redis shared by such processes with files of their own|scripts/test-budget-processes.sh"
    "vba|bindings/vba's Declares against the header, for 32- and 64-bit VBA|vba_declares"
    "official-sdk|the official Python SDK (capmonstercloudclient 4.3.1) solves every task family on the emulator|scripts/test-official-sdk.sh"
    "readme|the Markdown's relative links; the READMEs' and docs/' code blocks, built and run as a reader would|scripts/test-readme.sh"
    "windows|the Windows DLLs (MinGW); C tests and the demo under 64- and 32-bit Wine, Go and Rust tests under 64-bit|scripts/test-windows.sh"
    "nuget|the C# NuGet package, built with the Windows DLLs, tested from its layout (Mono, xbuild)|bindings/csharp/test-package.sh"
    "python-windows|the Python binding's win_amd64 and win32 wheels, built with the Windows DLLs, their layout checked|scripts/test-python-windows.sh"
)

rust_lints() {
    scripts/install-deps.sh --check lint
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --release --quiet -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
}
rust_tests() {
    scripts/install-deps.sh --check rust
    cargo test --workspace --release
}
vba_declares() {
    scripts/install-deps.sh --check vba
    scripts/check-vba.py
}

names=()
for entry in "${SECTIONS[@]}"; do names+=("${entry%%|*}"); done

case "${1:-}" in
    --list)
        for entry in "${SECTIONS[@]}"; do
            IFS='|' read -r name description _ <<<"$entry"
            printf '%-17s %s\n' "$name" "$description"
        done
        exit 0 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
esac
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${names[@]}")
for name in "${chosen[@]}"; do
    case " ${names[*]} " in
        *" $name "*) ;;
        *) echo "test.sh: no section '$name'; the sections (scripts/test.sh --list):" >&2
           printf '  %s\n' "${names[@]}" >&2
           exit 2 ;;
    esac
done

# Every test takes a request budget of its own (tests/common/mod.rs, tests/c/own_budget.h, the
# Go and C# test mains) and the scripts give the programs they run one of theirs; this fresh
# file is for anything else this run starts, so that nothing touches the user's own.
budget_dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-test-budget.XXXXXX")
trap 'rm -rf "$budget_dir"' EXIT
export CAPMONSTER_BUDGET_FILE=$budget_dir/budget

now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { s = ns / 1e9; if (s < 60) printf "%.1f s", s; else printf "%d min %04.1f s", s / 60, s - 60 * int(s / 60) }'; }
results=()
summary() {
    local line name status ns total=0
    echo
    echo "== summary"
    for line in "${results[@]}"; do
        read -r name status ns <<<"$line"
        total=$((total + ns))
        printf '  %-17s %-7s %12s\n' "$name" "$status" "$(seconds "$ns")"
    done
    for name in "${chosen[@]:${#results[@]}}"; do
        printf '  %-17s %-7s\n' "$name" "not run"
    done
    printf '  %-17s %-7s %12s\n' "all" "" "$(seconds "$total")"
}

for name in "${chosen[@]}"; do
    for entry in "${SECTIONS[@]}"; do
        [ "${entry%%|*}" = "$name" ] || continue
        IFS='|' read -r _ description command <<<"$entry"
    done
    echo "== $name: $description"
    started=$(now)
    # In a subshell of its own, outside any `||`, so that set -e stops the section at its
    # first failing command (within `cmd || ...` bash ignores set -e, in functions too).
    set +e
    # shellcheck disable=SC2086 # the command is words: a program and its arguments
    (set -e; $command)
    status=$?
    set -e
    elapsed=$(( $(now) - started ))
    if [ "$status" != 0 ]; then
        results+=("$name FAILED $elapsed")
        echo "== $name: FAILED (exit status $status) after $(seconds "$elapsed")"
        summary
        exit "$status"
    fi
    results+=("$name passed $elapsed")
    echo "== $name: passed in $(seconds "$elapsed")"
done
summary
echo "== all tests passed"
