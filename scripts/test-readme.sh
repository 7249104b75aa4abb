#!/usr/bin/env bash
# The READMEs' and docs/' code blocks, built and run as a reader would (scripts/readme_blocks.py
# says how each block is marked), after checking that every relative link of the repository's
# Markdown resolves. Needs the release build, gcc, cmake, pkg-config, Go and Mono.
set -euo pipefail
cd "$(dirname "$0")/.."

# Links first: they need no build and fail in a second.
python3 scripts/readme_blocks.py --links

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
# Offline and reproducible, as scripts/test-go.sh: no toolchain or module download.
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-buildvcs=false CGO_ENABLED=1
# The blocks' programs count their requests in a budget file of this run, never the user's.
budget_dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-readme-budget.XXXXXX")
trap 'rm -rf "$budget_dir"' EXIT
export CAPMONSTER_BUDGET_FILE=$budget_dir/budget
unset CAPMONSTER_BUDGET
cargo build --release --workspace --quiet
# README.md first: its blocks save solve.c, which later blocks of it use.
python3 scripts/readme_blocks.py README.md docs/*.md bindings/go/README.md bindings/csharp/README.md \
    bindings/vba/README.md emulator/README.md
