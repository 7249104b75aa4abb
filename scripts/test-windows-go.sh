#!/usr/bin/env bash
# The Go binding's tests under Wine (x86_64), against the emulator running natively on Linux:
# - the test binary cross-compiled with cgo and MinGW (GOOS=windows CGO_ENABLED=1
#   CC=x86_64-w64-mingw32-gcc go test -c), linked against dist/windows-x86_64's import library;
#   it runs with capmonster.dll beside it and uses the emulator this script starts
#   (CAPMONSTER_TEST_EMULATOR_URL: a Windows binary cannot start the Linux emulator itself);
# - the same tests built with -race (Go's Windows race runtime links with MinGW and runs under
#   Wine: a racy program built so reports its race there), as scripts/test-go.sh on Linux;
# - examples/solve and examples/many, cross-compiled the same way, against the emulator.
#
# Go programs (Go 1.26 here) need ProcessPrng from bcryptprimitives.dll (Go supports Windows 10 and
# later), which Wine 8 lacks: tests/wine/bcryptprimitives.c, a test-only stand-in, is built
# into this script's private Wine prefix. It is no part of what is shipped (capmonster.dll
# targets Windows 7 and does not import it).
#
# Usage: scripts/test-windows-go.sh [--built]. It runs scripts/build-windows.sh first, unless
# --built says that dist/windows-x86_64/ is fresh (scripts/test-windows.sh, which has just built
# it). Wine and MinGW come from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SECONDS=0
source scripts/lib.sh

wine=/usr/lib/wine/wine64 # Debian 12's wine64 package puts no wine64 on PATH
scripts/install-deps.sh --check windows || exit 1
go_env

[ "${1:-}" = --built ] || scripts/build-windows.sh
dll_dir=$root/dist/windows-x86_64
[ -f "$dll_dir/capmonster.dll" ] || { echo "$dll_dir/capmonster.dll is missing" >&2; exit 1; }
build_release capmonster-emulator

build=$root/target/windows-go-tests
rm -rf "$build"
mkdir -p "$build"
# Offline, as every Go build here (go_env), for Windows. CGO_LDFLAGS come before
# link_intree.go's flags, so -lcapmonster finds the Windows import library
# (libcapmonster.dll.a) first; the rpath there means nothing to a PE file.
export GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc CGO_LDFLAGS="-L$dll_dir"
(
    cd bindings/go
    go test -c -o "$build/capmonster.test.exe" .
    go test -race -c -o "$build/capmonster-race.test.exe" .
    go build -o "$build/solve.exe" ./examples/solve
    go build -o "$build/many.exe" ./examples/many
)
cp "$dll_dir/capmonster.dll" "$build/"
x86_64-w64-mingw32-gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -shared -s \
    -o "$build/bcryptprimitives.dll" tests/wine/bcryptprimitives.c -ladvapi32
build_seconds=$SECONDS

# A private prefix of this script's own, so the stand-in DLL reaches no other test's prefix.
# Its first start (20-30 s here) is made before any timed test.
export WINEDEBUG=-all WINEPREFIX
WINEPREFIX=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-wine-go.XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/capmonster-wine-go-test.XXXXXX")
cleanup() {
    stop_emulator
    "${wine%64}server" -k 2>/dev/null || true
    rm -rf "$WINEPREFIX" "$log"
}
trap cleanup EXIT
"$wine" cmd /c exit >/dev/null 2>&1 || true
cp "$build/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
# The programs that choose no budget (the examples; the tests count in their own process on
# Windows) use the file at its default place, %LOCALAPPDATA%\capmonster\, in this fresh prefix
# (scripts/test.sh's Linux path would not be an absolute Windows path).
unset CAPMONSTER_BUDGET_FILE

run_tests() { # test-binary label: runs it against a fresh emulator, reports its count
    local passed skipped
    echo "== $2 (Wine)"
    # A fresh emulator started as the tests' TestMain starts its own.
    start_emulator --solve-after-ms 200
    # From bindings/go, as go test runs them: the docs examples are found relative to it.
    if ! (cd bindings/go && CAPMONSTER_TEST_EMULATOR_URL="$EMULATOR_URL" \
        "$wine" "$1" -test.count=1 -test.v -test.timeout=10m >"$log" 2>&1); then
        cat "$log"
        echo "$2 (Wine) failed" >&2
        exit 1
    fi
    stop_emulator
    passed=$(grep -c '^--- PASS' "$log") || true
    skipped=$(grep -c -- '--- SKIP' "$log") || true
    [ "$passed" -gt 0 ] || { cat "$log"; echo "$2 (Wine): no test passed" >&2; exit 1; }
    grep -- '--- SKIP' "$log" || true
    echo "$2 (Wine): $passed tests and examples passed" \
        "($(grep -c -- '--- PASS' "$log") with subtests, $skipped skipped)"
}
run_tests "$build/capmonster.test.exe" "go test"
run_tests "$build/capmonster-race.test.exe" "go test -race"

echo "== Go examples (Wine)"
start_emulator --solve-after-ms 200
rc=0
CAPMONSTER_BASE_URL="$EMULATOR_URL" CAPMONSTER_CLIENT_KEY=go-wine-example "$wine" "$build/solve.exe" >"$log" 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! grep '^text: ' "$log" >/dev/null; then
    cat "$log" >&2
    echo "examples/solve (Wine): exit status $rc, want 0 and a solution's text" >&2
    exit 1
fi
cat "$log"
# Every captcha solved, the summary line exactly as on Linux (scripts/test-go.sh).
CAPMONSTER_BASE_URL="$EMULATOR_URL" CAPMONSTER_CLIENT_KEY=go-wine-example "$wine" "$build/many.exe" \
    -n 500 -workers 16 >"$log" 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! grep -xF "captchas: 500, solved: 500, failed: 0" "$log" >/dev/null; then
    cat "$log" >&2
    echo "examples/many (Wine): exit status $rc, want 0 and all 500 solved" >&2
    exit 1
fi
stop_emulator
echo "examples/many (Wine): 500 solved at once"
echo "Windows Go tests passed (build ${build_seconds} s, in all ${SECONDS} s)"
