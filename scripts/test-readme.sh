#!/usr/bin/env bash
# The READMEs' and docs/' code blocks, built and run as a reader would (scripts/readme_blocks.py
# says how each block is marked), after checking that every relative link of the repository's
# Markdown resolves. Needs the release build, gcc, cmake, pkg-config, Go and Mono.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps readme

# Links first: they need no build and fail in a second.
python3 scripts/readme_blocks.py --links

go_env
# The blocks' programs count their requests in a budget file of this run, never the user's.
private_budget
build_release
# README.md first: its blocks save solve.c, which later blocks of it use.
python3 scripts/readme_blocks.py README.md docs/*.md bindings/go/README.md bindings/csharp/README.md \
    bindings/vba/README.md emulator/README.md
