#!/usr/bin/env bash
# Soak: SOAK_CALLS calls (default 200,000) on one client from 8 threads against a fresh
# emulator (tests/c/soak.c): every call's code is checked, resident memory may grow by at most
# 5 MiB between 10% and 100% of the calls, and afterwards the emulator's counters must show no
# task polled more than 120 times.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps demo

build=target/c-tests
mkdir -p "$build"
build_release
gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -g tests/c/soak.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/soak"

start_emulator
SOAK_CALLS="${SOAK_CALLS:-200000}" "$build/soak" "$EMULATOR_URL"

# The service's limit, seen from the server side: no task got more than 120 requests.
python3 - "$EMULATOR_URL" <<'PY'
import json, sys, urllib.request
stats = json.load(urllib.request.urlopen(sys.argv[1] + "/_emulator/stats", timeout=10))
tasks = stats["tasks"]
busiest = max(tasks.values()) if tasks else 0
print(f"emulator: {stats['connections']} connections, {stats['methods']}, "
      f"{len(tasks)} tasks polled, at most {busiest} requests for one task")
if busiest > 120:
    sys.exit(f"a task got {busiest} getTaskResult requests (limit 120)")
PY
stop_emulator
echo "soak.sh: passed (no unexpected code, memory flat, no task over 120 requests)"
