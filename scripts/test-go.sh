#!/usr/bin/env bash
# Go binding tests: builds the library and the emulator, then in bindings/go checks gofmt,
# runs go vet, the tests (they start the emulator themselves) and the tests again under the
# race detector. Offline: the module has no dependencies and no toolchain is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] || { echo "go is not installed (Go 1.24 or newer is needed)" >&2; exit 1; }
    export PATH="/usr/local/go/bin:$PATH"
fi
# No toolchain download, no module download, no go.mod rewrite, no VCS stamping (which fails
# on a checkout owned by another user); cgo on, as the binding needs it.
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=1

cargo build --release --workspace --quiet
export CAPMONSTER_EMULATOR="$PWD/target/release/capmonster-emulator"

cd bindings/go
echo "== $(go version)"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || { echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1; }
go vet ./...
echo "go vet: clean"

log=$(mktemp "${TMPDIR:-/tmp}/capmonster-go-test.XXXXXX")
trap 'rm -f "$log"' EXIT
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
