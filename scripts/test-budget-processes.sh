#!/usr/bin/env bash
# The request budget and the account guard across processes and languages, each with one budget
# file all the processes share (the script's own):
# - the budget: 2 C, 2 Go and 2 C# processes poll one emulator task 50 times each at once:
#   exactly 120 requests may reach the service, 180 are refused; then again with a budget file
#   of its own for each process (standing for 6 hosts) and CAPMONSTER_BUDGET naming one Redis
#   (Debian's redis-server, started here on a loopback port): 120 again, counted in Redis;
# - the guard: 8 processes (3 C, 3 Go, 2 C#) start storms together (1,000 waits each, or 200
#   calls from 4 threads) against an emulator that revokes their key, bans their address or
#   has no money. At most max_connections + 1 requests a process reach it (max_connections
#   is 4 here), every other call gets the guard's local answer; processes started later send
#   nothing; a getBalance showing money from C#, and EndStops from Go or C, end the stop for
#   the other languages. Each program (tests/budget/guard.c, guard-go, csharp/Guard.cs) prints
#   what it saw; the totals are checked against the emulator's counters.
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
gcc -std=c99 -Wall -Wextra -Werror tests/budget/guard.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/guard-c"
(cd tests/budget/guard-go && go build -o "../../../$build/guard-go" .)
mcs -r:"$build/CapMonster.dll" -out:"$build/Guard.exe" tests/budget/csharp/Guard.cs >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-budget-processes.XXXXXX")
at_exit rm -rf "$work"
private_budget # the one file all the processes share, the budget's and the guard's
start_emulator
task=$(python3 -c "
import json, urllib.request
body = json.dumps({'type': 'ImageToTextTask', 'solveAfterMs': 3600000}).encode()
print(json.load(urllib.request.urlopen(urllib.request.Request('$EMULATOR_URL/_emulator/task', body)))['taskId'])")

# pollers TASK [REDIS_URL]: 2 C, 2 Go and 2 C# processes poll TASK 50 times each at once: with
# REDIS_URL, each with a budget file of its own (a host of its own) and that Redis; checks that
# exactly 120 polls reached the emulator.
pollers() {
    local task=$1 redis=${2:-} n lang pids=() pid sent exhausted served
    for n in 1 2; do
        for lang in c go cs; do
            local env=()
            [ -z "$redis" ] || env=(CAPMONSTER_BUDGET="$redis" CAPMONSTER_BUDGET_FILE="$work/host-$lang$n")
            case $lang in
                c) env "${env[@]}" "$build/poller-c" "$EMULATOR_URL" "$task" 50 >"$work/$lang$n" & pids+=($!) ;;
                go) env "${env[@]}" "$build/poller-go" "$EMULATOR_URL" "$task" 50 >"$work/$lang$n" & pids+=($!) ;;
                cs) env "${env[@]}" LD_LIBRARY_PATH=target/release mono "$build/Poller.exe" "$EMULATOR_URL" "$task" 50 \
                    >"$work/$lang$n" & pids+=($!) ;;
            esac
        done
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    cat "$work"/c1 "$work"/c2 "$work"/go1 "$work"/go2 "$work"/cs1 "$work"/cs2
    read -r sent exhausted < <(cat "$work"/c1 "$work"/c2 "$work"/go1 "$work"/go2 "$work"/cs1 "$work"/cs2 | sed -n 's/.* sent=\([0-9]*\) exhausted=\([0-9]*\)/\1 \2/p' |
        awk '{ s += $1; e += $2 } END { print s, e }')
    served=$(python3 -c "
import json, urllib.request
print(json.load(urllib.request.urlopen('$EMULATOR_URL/_emulator/stats'))['tasks'].get('$task', 0))")
    echo "6 processes (C, Go, C#) x 50 polls of task $task${redis:+, each with a file of its own and one Redis}: $sent sent, $exhausted refused; the emulator served $served"
    [ "$sent" = 120 ] && [ "$exhausted" = 180 ] && [ "$served" = 120 ] || { echo "the budget was not shared" >&2; exit 1; }
}
pollers "$task"
echo "budget across processes and languages: passed"

redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
    --logfile "$work/redis/log" &
redis_pid=$!
at_exit kill "$redis_pid"
for _ in $(seq 1 200); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
task=$(python3 -c "
import json, urllib.request
body = json.dumps({'type': 'ImageToTextTask', 'solveAfterMs': 3600000}).encode()
print(json.load(urllib.request.urlopen(urllib.request.Request('$EMULATOR_URL/_emulator/task', body)))['taskId'])")
pollers "$task" "redis://127.0.0.1:$redis_port/0"
[ "$(redis-cli -p "$redis_port" hget "$(redis-cli -p "$redis_port" --scan --pattern 'capmonster:v1:task:*')" s)" = 120 ] ||
    { echo "the counts are not in Redis" >&2; exit 1; }
echo "budget across hosts (one Redis) and languages: passed"

# --- the account guard -------------------------------------------------------------------
# Every answer of the emulator takes 200 ms, like a round trip to the service: the processes
# of a storm start within it, so each has its max_connections requests out before any answer
# comes back, and the storm comes close to the bound (32 of 40) rather than far below it by
# luck of timing. (CAPMONSTER_GUARD=off: 8,000 requests, and the check fails.) The phases take
# seconds, well within the first cool-down (1 minute), so no probe goes out during them.
start_emulator --answer-delay-ms 200
PROCESSES=(c c c go go go cs cs)
MAX_PER_PROCESS=5 # the programs' max_connections (4) + 1

fail() { echo "budget-processes: $*" >&2; exit 1; }

# emulator PATH [BODY]: GET (or, given a body, even an empty one, POST) one of the emulator's
# control endpoints; prints the answer.
emulator() {
    python3 - "$EMULATOR_URL$1" "${@:2}" <<'EOF'
import sys, urllib.request
url, body = sys.argv[1], sys.argv[2].encode() if sys.argv[2:] else None
request = urllib.request.Request(url, body, {'Content-Type': 'application/json'})
print(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request).read().decode())
EOF
}
# emulator_requests [METHOD]: the API requests that reached the emulator, of METHOD or of every method.
emulator_requests() {
    emulator /_emulator/stats | python3 -c "
import json, sys
methods = json.load(sys.stdin)['methods']
print(methods[sys.argv[1]] if sys.argv[1:] else sum(methods.values()))" "$@"
}

# guard LANG KEY START_MS ACTION COUNT TASK_ID EXPECT: one guard program (tests/budget/guard.c
# says what the arguments mean and what it prints).
guard() {
    local lang=$1
    shift
    case $lang in
        c) "$build/guard-c" "$EMULATOR_URL" "$@" ;;
        go) "$build/guard-go" "$EMULATOR_URL" "$@" ;;
        cs) LD_LIBRARY_PATH=target/release mono "$build/Guard.exe" "$EMULATOR_URL" "$@" ;;
    esac
}

# total FIELD FILE...: the sum of FIELD=N over the programs' lines in the files.
total() {
    local field=$1
    shift
    cat "$@" | sed -n "s/.* $field=\([0-9]*\).*/\1/p" | awk '{ s += $1 } END { print s + 0 }'
}

# storm NAME KEY COUNT TASK_ID EXPECT ACTION_C ACTION_GO ACTION_CS: the 8 processes, started
# together 2 s from now (the time mono takes to start, with room), each running its
# language's action COUNT times; their lines go to $work/NAME.LANG.N.
storm() {
    local name=$1 key=$2 count=$3 task=$4 expect=$5 n=0 lang action pids=() pid
    local start=$(($(date +%s%3N) + 2000))
    declare -A actions=([c]=$6 [go]=$7 [cs]=$8)
    for lang in "${PROCESSES[@]}"; do
        n=$((n + 1))
        action=${actions[$lang]}
        guard "$lang" "$key" "$start" "$action" "$count" "$task" "$expect" >"$work/$name.$lang.$n" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || fail "$name: a process of the storm failed"; done
    cat "$work/$name".*
}

# one NAME LANG KEY ACTION COUNT TASK_ID EXPECT: one process, started now; its line goes to
# $work/NAME and is printed.
one() {
    local name=$1
    shift
    guard "$1" "$2" 0 "${@:3}" >"$work/$name" || fail "$name: the process failed"
    cat "$work/$name"
}

# expect_line NAME WANT: the program's counts are exactly WANT ("local=1 service=0 ok=0 ...").
expect_line() {
    grep -q ": $2\$" "$work/$1" || fail "$1: expected $2, the program saw: $(cat "$work/$1")"
}

# check_storm NAME COUNT METHOD EXPECT: what a storm of a stopped key must show: every call
# answered by the service (the few that went out first) or locally, with EXPECT; the requests
# the programs counted are those that reached the emulator, at most MAX_PER_PROCESS a process
# (each process's own count, and the emulator's total).
check_storm() {
    local name=$1 count=$2 method=$3 expect=$4 file files locals service ok other requests arrived senders
    files=("$work/$name".*)
    locals=$(total local "${files[@]}") service=$(total service "${files[@]}")
    ok=$(total ok "${files[@]}") other=$(total other "${files[@]}") requests=$(total requests "${files[@]}")
    arrived=$(emulator_requests "$method")
    senders=$(cat "${files[@]}" | grep -vc ' service=0 ' || true)
    echo "$name: ${#PROCESSES[@]} processes x $count: $locals answered locally, $service by the service" \
        "($senders processes sent); $arrived $method requests reached the emulator"
    [ "$other" = 0 ] && [ "$ok" = 0 ] || fail "$name: $other calls ended otherwise than with $expect, $ok succeeded"
    [ $((locals + service)) = $((${#PROCESSES[@]} * count)) ] || fail "$name: $((locals + service)) outcomes of $expect, not $((${#PROCESSES[@]} * count))"
    [ "$requests" = "$arrived" ] || fail "$name: the programs counted $requests requests, the emulator $arrived"
    [ "$arrived" -ge 1 ] && [ "$arrived" -le $((${#PROCESSES[@]} * MAX_PER_PROCESS)) ] ||
        fail "$name: $arrived requests reached the emulator, not between 1 and ${#PROCESSES[@]} x $MAX_PER_PROCESS"
    for file in "${files[@]}"; do
        [ "$(total requests "$file")" -le "$MAX_PER_PROCESS" ] ||
            fail "$name: one process sent more than $MAX_PER_PROCESS requests: $(cat "$file")"
    done
}

# later NAME KEY EXPECT: processes started one after another with a stopped key, each making
# its calls of every kind: all answered locally, nothing reaches the emulator.
later() {
    local name=$1 key=$2 expect=$3 before lang n=0 action
    before=$(emulator_requests)
    for lang in c go cs c go cs; do
        n=$((n + 1))
        for action in wait getTaskResult createTask getBalance; do
            one "$name.$n.$action" "$lang" "$key" "$action" 40 1 "$expect" >/dev/null
            expect_line "$name.$n.$action" "local=40 service=0 ok=0 other=0 requests=0"
        done
    done
    [ "$(emulator_requests)" = "$before" ] || fail "$name: processes started later sent $(($(emulator_requests) - before)) requests"
    echo "$name: 6 processes (C, Go, C#) started one after another: 960 calls, all answered locally, none sent"
}

echo "== a revoked key"
emulator /_emulator/account '{"revokedKeys": ["guard-revoked"]}' >/dev/null
storm revoked guard-revoked 1000 0 ERROR_KEY_DOES_NOT_EXIST wait wait wait
check_storm revoked 1000 getTaskResult ERROR_KEY_DOES_NOT_EXIST
[ "$(emulator_requests)" = "$(emulator_requests getTaskResult)" ] || fail "revoked: other calls than the waits' reached the emulator"
later revoked-later guard-revoked ERROR_KEY_DOES_NOT_EXIST
# The user fixes the key: the stop holds until its cool-down, or until EndStops from any
# language ends it for all.
emulator /_emulator/account '{"revokedKeys": []}' >/dev/null
one revoked-fixed c guard-revoked getBalance 1 0 ERROR_KEY_DOES_NOT_EXIST
expect_line revoked-fixed "local=1 service=0 ok=0 other=0 requests=0"
one revoked-end go guard-revoked endStops 1 0 none
expect_line revoked-end "local=0 service=0 ok=1 other=0 requests=0"
one revoked-ended-c c guard-revoked getBalance 2 0 ERROR_KEY_DOES_NOT_EXIST
expect_line revoked-ended-c "local=0 service=0 ok=2 other=0 requests=2"
one revoked-ended-cs cs guard-revoked createTask 2 0 ERROR_KEY_DOES_NOT_EXIST
expect_line revoked-ended-cs "local=0 service=0 ok=2 other=0 requests=2"
echo "revoked: EndStops from Go ended the stop for C and C#"

echo "== a zero balance"
emulator /_emulator/reset '' >/dev/null
emulator /_emulator/account '{"balance": 0}' >/dev/null
task=$(emulator /_emulator/task '{"type": "ImageToTextTask", "solveAfterMs": 3600000}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["taskId"])')
storm broke guard-broke 200 0 ERROR_ZERO_BALANCE createTask createTask createTask
check_storm broke 200 createTask ERROR_ZERO_BALANCE
# Results and the balance still go out while createTask is stopped, from every language at once.
before=$(emulator_requests)
storm broke-others guard-broke 8 "$task" ERROR_ZERO_BALANCE getTaskResult getBalance createTask
for n in 1 2 3; do expect_line "broke-others.c.$n" "local=0 service=0 ok=8 other=0 requests=8"; done
for n in 4 5 6; do expect_line "broke-others.go.$n" "local=0 service=0 ok=8 other=0 requests=8"; done
for n in 7 8; do expect_line "broke-others.cs.$n" "local=8 service=0 ok=0 other=0 requests=0"; done
[ "$(emulator_requests)" = $((before + 48)) ] || fail "broke: $(($(emulator_requests) - before)) requests reached the emulator, not 48 (24 results, 24 balances)"
# The user tops up: createTask stays stopped until a getBalance shows the money (here from C#).
emulator /_emulator/account '{"balance": 25}' >/dev/null
one broke-topped-up c guard-broke createTask 1 0 ERROR_ZERO_BALANCE
expect_line broke-topped-up "local=1 service=0 ok=0 other=0 requests=0"
one broke-balance cs guard-broke getBalance 1 0 ERROR_ZERO_BALANCE
expect_line broke-balance "local=0 service=0 ok=1 other=0 requests=1"
one broke-ended-go go guard-broke createTask 4 0 ERROR_ZERO_BALANCE
expect_line broke-ended-go "local=0 service=0 ok=4 other=0 requests=4"
one broke-ended-c c guard-broke createTask 4 0 ERROR_ZERO_BALANCE
expect_line broke-ended-c "local=0 service=0 ok=4 other=0 requests=4"
echo "broke: a getBalance showing money from C# ended the stop for Go and C"

echo "== a banned address"
emulator /_emulator/reset '' >/dev/null
emulator /_emulator/account '{"addressBan": "ERROR_IP_BANNED"}' >/dev/null
storm banned guard-banned 1000 0 ERROR_IP_BANNED wait wait wait
check_storm banned 1000 getTaskResult ERROR_IP_BANNED
later banned-later guard-banned ERROR_IP_BANNED
emulator /_emulator/account '{"addressBan": null}' >/dev/null
one banned-lifted go guard-banned getBalance 1 0 ERROR_IP_BANNED
expect_line banned-lifted "local=1 service=0 ok=0 other=0 requests=0"
one banned-end c guard-banned endStops 1 0 none
expect_line banned-end "local=0 service=0 ok=1 other=0 requests=0"
one banned-ended-go go guard-banned getBalance 2 0 ERROR_IP_BANNED
expect_line banned-ended-go "local=0 service=0 ok=2 other=0 requests=2"
one banned-ended-cs cs guard-banned createTask 2 0 ERROR_IP_BANNED
expect_line banned-ended-cs "local=0 service=0 ok=2 other=0 requests=2"
echo "banned: cm_client_end_stops from C ended the stop for Go and C#"
echo "account guard across processes and languages: passed"
