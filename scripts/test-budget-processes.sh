#!/usr/bin/env bash
# The request budget across processes and languages: 2 C, 2 Go and 2 C# processes poll one
# emulator task 50 times each at once, with one budget file: exactly 120 requests may reach the
# service, 180 are refused.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps budget-processes
go_env

build=target/budget-processes
mkdir -p "$build"
build_release
gcc -std=c99 -Wall -Wextra -Werror tests/budget/poller.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/poller-c"
(cd tests/budget/go && go build -o "../../../$build/poller-go" .)
mcs -target:library -out:"$build/CapMonster.dll" bindings/csharp/CapMonster/*.cs >/dev/null
mcs -r:"$build/CapMonster.dll" -out:"$build/Poller.exe" tests/budget/csharp/Poller.cs >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-budget-processes.XXXXXX")
at_exit rm -rf "$work"
private_budget # the one file all six processes share
start_emulator
task=$(python3 -c "
import json, urllib.request
body = json.dumps({'type': 'ImageToTextTask', 'solveAfterMs': 3600000}).encode()
print(json.load(urllib.request.urlopen(urllib.request.Request('$EMULATOR_URL/_emulator/task', body)))['taskId'])")

pids=()
for n in 1 2; do
    "$build/poller-c" "$EMULATOR_URL" "$task" 50 >"$work/c$n" & pids+=($!)
    "$build/poller-go" "$EMULATOR_URL" "$task" 50 >"$work/go$n" & pids+=($!)
    LD_LIBRARY_PATH=target/release mono "$build/Poller.exe" "$EMULATOR_URL" "$task" 50 >"$work/cs$n" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
cat "$work"/c1 "$work"/c2 "$work"/go1 "$work"/go2 "$work"/cs1 "$work"/cs2
read -r sent exhausted < <(cat "$work"/c1 "$work"/c2 "$work"/go1 "$work"/go2 "$work"/cs1 "$work"/cs2 | sed -n 's/.* sent=\([0-9]*\) exhausted=\([0-9]*\)/\1 \2/p' |
    awk '{ s += $1; e += $2 } END { print s, e }')
served=$(python3 -c "
import json, urllib.request
print(json.load(urllib.request.urlopen('$EMULATOR_URL/_emulator/stats'))['tasks'].get('$task', 0))")
echo "6 processes (C, Go, C#) x 50 polls of task $task: $sent sent, $exhausted refused; the emulator served $served"
[ "$sent" = 120 ] && [ "$exhausted" = 180 ] && [ "$served" = 120 ] || { echo "the budget was not shared" >&2; exit 1; }
echo "budget across processes and languages: passed"
