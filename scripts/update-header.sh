#!/usr/bin/env bash
# Regenerates include/capmonster.h from the Rust sources (cbindgen runs in build.rs and
# writes the header to its OUT_DIR; this copies it into the tree).
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=$(cargo build --quiet --lib --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "build-script-executed" and "#capmonster@" in message["package_id"]:
        print(message["out_dir"])
')
cp "$out_dir/capmonster.h" include/capmonster.h
echo "include/capmonster.h updated from $out_dir"
