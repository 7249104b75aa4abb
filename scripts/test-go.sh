#!/usr/bin/env bash
# Go binding tests: builds the library and the emulator, then in bindings/go checks gofmt,
# runs go vet, the tests (they start the emulator themselves) and the tests again under the
# race detector, and runs examples/many against an emulator of its own and checks what it
# prints. Offline: the module has no dependencies and no toolchain is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps go
go_env

build_release
export CAPMONSTER_EMULATOR="$PWD/target/release/capmonster-emulator"

cd bindings/go
echo "== $(go version)"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || { echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1; }
go vet ./...
echo "go vet: clean"

log=$(mktemp "${TMPDIR:-/tmp}/capmonster-go-test.XXXXXX")
at_exit rm -f "$log"
if ! go test -count=1 -v ./... >"$log" 2>&1; then
    cat "$log"
    echo "go test failed" >&2
    exit 1
fi
grep -E '^(ok|FAIL|\?) ' "$log"
echo "go test: $(grep -c '^--- PASS' "$log") tests and examples passed" \
    "($(grep -c -- '--- PASS' "$log") with subtests, $(grep -c -- '--- SKIP' "$log") skipped)"

go test -race -count=1 ./...
echo "go test -race: passed"

# examples/many against the emulator: every captcha solved; then with an empty image among
# them, that one counted as the service's error and the exit status 1.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-go-many.XXXXXX")
at_exit rm -rf "$tmp"
go build -o "$tmp/many" ./examples/many
start_emulator --solve-after-ms 200
export CAPMONSTER_BASE_URL=$EMULATOR_URL
# The example counts its requests in a budget file of this run, never the user's (the tests
# take one of their own).
private_budget

check_many() { # expected-status expected-lines... ; runs many with $many_args
    local want=$1 rc=0 line
    shift
    "$tmp/many" "${many_args[@]}" >"$tmp/out" 2>&1 || rc=$?
    for line in "$@"; do
        grep -qxF -- "$line" "$tmp/out" || { cat "$tmp/out" >&2; echo "examples/many: no line \"$line\"" >&2; exit 1; }
    done
    [ "$rc" = "$want" ] || { cat "$tmp/out" >&2; echo "examples/many: exit status $rc, want $want" >&2; exit 1; }
}
many_args=(-n 2000 -workers 16)
check_many 0 "captchas: 2000, solved: 2000, failed: 0"
: >"$tmp/empty.png"
many_args=(-n 50 "$tmp/empty.png")
check_many 1 "captchas: 51, solved: 50, failed: 1" "  CM_ERR_API ERROR_ZERO_CAPTCHA_FILESIZE: 1"
echo "examples/many: 2000 solved at once; an empty image counted as CM_ERR_API ERROR_ZERO_CAPTCHA_FILESIZE"
