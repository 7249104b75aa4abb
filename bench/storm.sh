#!/usr/bin/env bash
# The storm benchmark: what reaches the service when a program keeps calling with a revoked key,
# from a banned address or at zero balance, with the account guard on (the default) and off
# (CAPMONSTER_GUARD=off, the library before the guard). See bench/README.md ("Storm").
#
#   bench/storm.sh           the table, printed and written to bench/storm-results.md (~2.5 min)
#   bench/storm.sh --quick   1,000 waits or calls instead of 10,000, 10 processes one after
#                            another instead of 50 (~30 s); written to target/bench/ only
#
# Environment: STORM_WAITS (waits or createTask calls per process, default 10000),
# STORM_INTERVAL_MS (the waits' interval, over which their first polls are spread; default
# 1000), STORM_SMALL_CAP (the small max_connections, default 4), STORM_PROCESSES (default 8),
# STORM_PROCESS_CAP (max_connections of each of them, default 32), STORM_THREADS (createTask
# threads per process, default 4), STORM_SEQUENTIAL (processes one after another, default 50),
# STORM_DELAY_MS (the emulator's answer delay, default 10).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/bench
QUICK=0
case "${1:-}" in
  "") ;;
  --quick) QUICK=1 ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--quick] (settings through the environment: see --help)" >&2; exit 2 ;;
esac
if [ "$QUICK" = 1 ]; then N_DEFAULT=1000 SEQ_DEFAULT=10; else N_DEFAULT=10000 SEQ_DEFAULT=50; fi
N=${STORM_WAITS:-$N_DEFAULT}
INTERVAL=${STORM_INTERVAL_MS:-1000}
SMALL_CAP=${STORM_SMALL_CAP:-4}
PROCS=${STORM_PROCESSES:-8}
PROC_CAP=${STORM_PROCESS_CAP:-32}
THREADS=${STORM_THREADS:-4}
SEQ=${STORM_SEQUENTIAL:-$SEQ_DEFAULT}
DELAY=${STORM_DELAY_MS:-10}
CAP=64 # the library's default max_connections
KEY=storm-key

log() { echo "storm: $*" >&2; }
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps bench
mkdir -p "$OUT"

# ---- build -------------------------------------------------------------------------------------
log "building"
build_release
gcc -O2 -g -Wall -Wextra "$ROOT/bench/storm.c" "${LINK_LIBCAPMONSTER[@]}" -o "$OUT/storm"
STORM=$OUT/storm

# ---- the emulator ------------------------------------------------------------------------------
# One emulator for the run, answering every API request after DELAY ms (a round trip); each
# case resets it and sets the account's standing. Every case counts in a budget file of its
# own (the guard keeps its stops there, per endpoint and key): TMP, removed at exit.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-storm.XXXXXX")
at_exit rm -rf "$TMP"
start_emulator --answer-delay-ms "$DELAY"
URL=$EMULATOR_URL
unset CAPMONSTER_BUDGET CAPMONSTER_GUARD
log "emulator (pid $EMULATOR_PID) at $URL, answering after $DELAY ms"

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | head -n 1; }
commas() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The API requests the emulator received since its last reset, every method.
emulator_requests() {
  "$STORM" control "$URL" GET /_emulator/stats |
    sed -n 's/.*"methods":{\([^}]*\)}.*/\1/p' | tr ',' '\n' | awk -F: '{ n += $2 } END { print n + 0 }'
}
# standing: the POST /_emulator/account body of a case; code: the error every call should end with.
standing_of() {
  case $1 in
    revoked) echo "{\"revokedKeys\":[\"$KEY\"]}" ;;
    banned) echo '{"addressBan":"ERROR_IP_BANNED"}' ;;
    zero) echo '{"balance":0}' ;;
  esac
}
code_of() {
  case $1 in
    revoked) echo ERROR_KEY_DOES_NOT_EXIST ;;
    banned) echo ERROR_IP_BANNED ;;
    zero) echo ERROR_ZERO_BALANCE ;;
  esac
}

# ---- the runs ----------------------------------------------------------------------------------
# run_case LABEL STANDING GUARD PROCS KIND ARG CAP: PROCS processes at once, each KIND (waits:
# N waits at INTERVAL; create: N createTask calls on ARG threads) with max_connections CAP,
# or (KIND one) PROCS processes one after another, each one createTask. Adds a ROWS entry:
#   label|standing|guard|procs|kind|cap|emulator|sum sent|most sent|wall ms|after first ms|wrong|rc
ROWS=()
FAILED=0
CASE=0
run_case() {
  local label=$1 standing=$2 guard=$3 procs=$4 kind=$5 arg=$6 cap=$7 code i rc=0 start t0 lines=() line
  local sent=0 most=0 wall=0 after=-1 wrong=0 s w a pid pids
  code=$(code_of "$standing")
  CASE=$((CASE + 1))
  "$STORM" control "$URL" POST /_emulator/reset "" >/dev/null
  "$STORM" control "$URL" POST /_emulator/account "$(standing_of "$standing")" >/dev/null
  export CAPMONSTER_BUDGET_FILE=$TMP/budget-$CASE
  if [ "$guard" = off ]; then export CAPMONSTER_GUARD=off; else unset CAPMONSTER_GUARD; fi
  log "$label, guard $guard"
  if [ "$kind" = one ]; then
    t0=$(now_ms)
    for ((i = 0; i < procs; i++)); do
      line=$(timeout 60 "$STORM" one "$URL" "$KEY" "$code") || rc=$?
      lines+=("$line")
    done
    wall=$(($(now_ms) - t0))
  else
    # Each process makes its client first, then all start their calls at the same moment.
    start=$(($(now_ms) + 300 + 50 * procs))
    pids=()
    for ((i = 0; i < procs; i++)); do
      timeout 300 "$STORM" "$kind" "$URL" "$KEY" "$code" "$N" "$arg" "$cap" "$start" >"$TMP/out-$i" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
    for ((i = 0; i < procs; i++)); do lines+=("$(cat "$TMP/out-$i")"); done
  fi
  unset CAPMONSTER_GUARD
  for line in "${lines[@]}"; do
    if [ -z "$(echo "$line" | field sent)" ]; then wrong=$((wrong + 1)); continue; fi
    s=$(echo "$line" | field sent)
    sent=$((sent + s))
    [ "$s" -gt "$most" ] && most=$s
    wrong=$((wrong + $(echo "$line" | field wrong)))
    if [ "$kind" != one ]; then
      w=$(echo "$line" | field wall_ms); a=$(echo "$line" | field after_first_ms)
      wall=$(awk -v x="$w" -v y="$wall" 'BEGIN { print (x > y) ? x : y }')
      after=$(awk -v x="$a" -v y="$after" 'BEGIN { print (x > y) ? x : y }')
    fi
  done
  [ "$rc" = 0 ] && [ "$wrong" = 0 ] || FAILED=1
  [ "$rc" = 0 ] || log "$label, guard $guard: exit status $rc (see above)"
  ROWS+=("$label|$standing|$guard|$procs|$kind|$cap|$(emulator_requests)|$sent|$most|$wall|$after|$wrong|$rc")
  printf '%s\n' "${lines[@]}" | sed "s/^/$label guard=$guard: /" >>"$OUT/storm-raw.txt"
}

: >"$OUT/storm-raw.txt"
for guard in off on; do
  run_case "waits" revoked "$guard" 1 waits "$INTERVAL" "$CAP"
  run_case "waits" revoked "$guard" 1 waits "$INTERVAL" "$SMALL_CAP"
  run_case "waits" banned "$guard" 1 waits "$INTERVAL" "$CAP"
  run_case "waits" banned "$guard" 1 waits "$INTERVAL" "$SMALL_CAP"
  run_case "createTask" zero "$guard" 1 create "$THREADS" "$CAP"
  run_case "waits" revoked "$guard" "$PROCS" waits "$INTERVAL" "$PROC_CAP"
  run_case "waits" banned "$guard" "$PROCS" waits "$INTERVAL" "$PROC_CAP"
  run_case "createTask" zero "$guard" "$PROCS" create "$THREADS" "$PROC_CAP"
  run_case "one createTask" revoked "$guard" "$SEQ" one 1 "$CAP"
done

# ---- the report --------------------------------------------------------------------------------
verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }
row_of() { # label standing guard procs cap -> the ROWS entry
  local r
  for r in "${ROWS[@]}"; do
    IFS='|' read -r l s g p _ c _ <<<"$r"
    [ "$l|$s|$g|$p|$c" = "$1|$2|$3|$4|$5" ] && { echo "$r"; return; }
  done
  return 0
}
secs() { awk -v m="$1" 'BEGIN { if (m < 999.5) printf "%.0f ms", m; else printf "%.2f s", m / 1000 }'; }
TABLE=()
GOALS=()
MISMATCH=()
# One table row per case, guard off next to guard on.
for r in "${ROWS[@]}"; do
  IFS='|' read -r label standing guard procs kind cap emu sent most wall after wrong rc <<<"$r"
  [ "$guard" = off ] || continue
  on=$(row_of "$label" "$standing" on "$procs" "$cap")
  IFS='|' read -r _ _ _ _ _ _ emu_on sent_on most_on wall_on after_on wrong_on rc_on <<<"$on"
  case $standing in
    revoked) why="revoked key" ;;
    banned) why="banned IP" ;;
    zero) why="zero balance" ;;
  esac
  case $kind in
    waits) what="$(commas "$N") waits on one cm_waiter" ;;
    create) what="$(commas "$N") createTask, $THREADS threads" ;;
    one) what="one createTask each" ;;
  esac
  if [ "$kind" = one ]; then
    who="$procs processes one after another"
    goal=2
    goal_text="at most 2 in all"
    most_off="-"; most_on_text="-"
    ok=$([ "$emu_on" -le 2 ] && echo 1 || echo 0)
  else
    who="1 process"; [ "$procs" -gt 1 ] && who="$procs processes at once"
    goal=$((cap + 1))
    goal_text="at most $goal per process"
    most_off=$(commas "$most"); most_on_text=$(commas "$most_on")
    ok=$([ "$most_on" -le "$goal" ] && echo 1 || echo 0)
  fi
  [ "$wrong$wrong_on$rc$rc_on" = 0000 ] || ok=0
  TABLE+=("| $why | $who, $what | $cap | $(commas "$emu") | $(commas "$emu_on") | $most_off / $most_on_text | $(secs "$wall") / $(secs "$wall_on") | $goal_text: $(verdict "$ok") |")
  [ "$emu" = "$sent" ] || MISMATCH+=("$why, $who, guard off: the emulator counted $emu, the library $sent")
  [ "$emu_on" = "$sent_on" ] || MISMATCH+=("$why, $who, guard on: the emulator counted $emu_on, the library $sent_on")
  # The pending waits of the process that heard the answer: how long after it the last one ended.
  if [ "$kind" = waits ] && [ "$procs" = 1 ] && [ "$standing" = revoked ] && [ "$cap" = "$CAP" ]; then
    GOALS+=("- Every pending wait ends within 100 ms of the service's first ERROR_KEY_DOES_NOT_EXIST (one process, $(commas "$N") waits, guard on): the last ended $(secs "$after_on") after it: $(verdict "$(awk -v a="$after_on" 'BEGIN { print (a >= 0 && a <= 100) }')")")
  fi
done

{
  echo "# libcapmonster storm benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
  echo "libcapmonster $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'). The emulator answers every API request"
  echo "after $DELAY ms (\`--answer-delay-ms $DELAY\`); its account's standing is set for each case. Waits: wait *j* of"
  echo "*N* first polls at $INTERVAL ms x *j*/*N* (spread over one interval, as waits of tasks made at a steady"
  echo "rate); each ends at its first answer (the service's error is final). Each case counts in a fresh budget"
  echo "file, shared by its processes. Guard off: \`CAPMONSTER_GUARD=off\`, the library before the guard."
  [ "$QUICK" = 1 ] && { echo; echo "A quick run (\`--quick\`): $(commas "$N") waits or calls per process, $SEQ processes one after another."; }
  echo
  echo "| refusal | processes, calls | max_connections | requests reaching the emulator, guard off | guard on | most from one process, off / on | wall time, off / on | goal (guard on) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE[@]}"
  echo
  printf '%s\n' "${GOALS[@]}"
  for m in "${MISMATCH[@]+"${MISMATCH[@]}"}"; do echo "- Counts disagree: $m"; done
  echo
  echo "- requests reaching the emulator: the sum of its method counters (\`GET /_emulator/stats\`) after the"
  echo "  case; the library's own count (the sum of \`cm_result_request_count\`) is compared with it."
  echo "- most from one process: the library's count in the process that sent the most."
  echo "- wall time: from the moment the calls start (together, in every process) to the last call back;"
  echo "  for processes one after another, from the first start to the last exit."
  echo "- goal: at most max_connections + 1 requests per process per cool-down (the guard's shortest cool-down"
  echo "  is 1 minute, longer than any case); processes one after another: at most 2 in all."
} >"$TMP/storm-results.md"
cp "$TMP/storm-results.md" "$OUT/storm-results.md"
[ "$QUICK" = 1 ] || cp "$TMP/storm-results.md" "$ROOT/bench/storm-results.md"
echo
cat "$TMP/storm-results.md"
# A missed goal is a finding, not a failure; a call that ended wrongly, a hang or a crash is.
[ "$FAILED" = 0 ] || { log "some cases did not run cleanly: see above and $OUT/storm-raw.txt"; exit 1; }
