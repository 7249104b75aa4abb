#!/usr/bin/env bash
# The scale benchmark: many waits on one cm_waiter (and one cm_wait_result thread per wait for
# comparison) against the emulator answering after 10 ms, and how fast cancels end waits and
# calls. See bench/README.md ("Scale").
#
#   bench/scale.sh     the scale tables, printed and written to bench/scale-results.md (~3 min)
#
# Environment: SCALE_CASES (WAITS:INTERVAL_MS on one waiter; default
# "1000:2000 10000:2000 100000:2000 100000:20000"), SCALE_THREAD_CASES (the same with a thread
# per wait; default "1000:2000 10000:2000"), SCALE_DELAY_MS (the emulator's answer delay,
# default 10), SCALE_FIRST_MS (first delay, default 1000), SCALE_MAX_CONNECTIONS (default 64).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/bench
CASES=${SCALE_CASES:-1000:2000 10000:2000 100000:2000 100000:20000}
THREAD_CASES=${SCALE_THREAD_CASES:-1000:2000 10000:2000}
DELAY=${SCALE_DELAY_MS:-10}
FIRST=${SCALE_FIRST_MS:-1000}
MAXCONN=${SCALE_MAX_CONNECTIONS:-64}
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  *) echo "usage: $0 (settings through the environment: see --help)" >&2; exit 2 ;;
esac

log() { echo "scale: $*" >&2; }
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps bench
mkdir -p "$OUT"

# ---- build -------------------------------------------------------------------------------------
log "building"
build_release
gcc -O2 -g -Wall -Wextra "$ROOT/bench/scale.c" "${LINK_LIBCAPMONSTER[@]}" -o "$OUT/scale"

# The library holds at most MAXCONN sockets and the emulator at most 512, but leave room.
HARD=$(ulimit -Hn)
WANT=65536
[ "$HARD" != unlimited ] && [ "$HARD" -lt "$WANT" ] && WANT=$HARD
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT" ] && ulimit -n "$WANT"

# How many threads this machine lets a process have (pid_max, threads-max; RLIMIT_NPROC unless root).
THREAD_ROOM=$(cat /proc/sys/kernel/pid_max)
TMAX=$(cat /proc/sys/kernel/threads-max)
[ "$TMAX" -lt "$THREAD_ROOM" ] && THREAD_ROOM=$TMAX
if [ "$(id -u)" != 0 ] && [ "$(ulimit -u)" != unlimited ] && [ "$(ulimit -u)" -lt "$THREAD_ROOM" ]; then
  THREAD_ROOM=$(ulimit -u)
fi

# ---- the emulator ------------------------------------------------------------------------------
# A fresh emulator answering every API request after DELAY ms, ready answers stamped with
# the moment they are sent; TMP is removed at exit.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-scale.XXXXXX")
at_exit rm -rf "$TMP"
start_emulator --answer-delay-ms "$DELAY" --stamp-ready
URL=$EMULATOR_URL
# A budget file of this run's own (the emulator's task ids restart with every reset).
export CAPMONSTER_BUDGET_FILE=$TMP/budget
log "emulator (pid $EMULATOR_PID) at $URL, answering after $DELAY ms; library capped at $MAXCONN connections"

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | head -n 1; }
commas() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

# ---- the runs ----------------------------------------------------------------------------------
LINES=()   # "mode n interval|rc|SCALE line"
run_case() { # mode n interval
  local mode=$1 n=$2 interval=$3 line rc=0 limit
  limit=$(( (FIRST + 3 * interval) / 1000 + n / 1000 + 120 ))
  log "$mode: $(commas "$n") waits, interval $interval ms (at most $limit s)"
  line=$(timeout "$limit" "$OUT/scale" "$mode" "$URL" "$n" "$FIRST" "$interval" "$DELAY" "$MAXCONN") || rc=$?
  case $rc in
    0) ;;
    124) log "$mode $n: timed out after $limit s: a hang" ;;
    1|2) log "$mode $n: exit status $rc (see above)" ;;
    *) log "$mode $n: exit status $rc (a crash? signal $((rc - 128)))" ;;
  esac
  LINES+=("$mode $n $interval|$rc|$line")
}
for c in $CASES; do run_case waiter "${c%%:*}" "${c##*:}"; done
SKIPPED=()
for c in $THREAD_CASES; do
  n=${c%%:*}
  if [ $(( n + 1000 )) -gt "$THREAD_ROOM" ]; then
    SKIPPED+=("$(commas "$n") waits with a cm_wait_result thread each: not run, this machine allows about $(commas "$THREAD_ROOM") threads (kernel.pid_max / threads-max).")
    log "threads: $(commas "$n") waits: skipped (room for $THREAD_ROOM threads)"
    continue
  fi
  run_case threads "$n" "${c##*:}"
done
log "cancels"
CANCEL_RC=0
CANCEL=$(timeout 300 "$OUT/scale" cancel "$URL" "$MAXCONN") || CANCEL_RC=$?
[ "$CANCEL_RC" = 0 ] || log "cancel: exit status $CANCEL_RC"

# ---- the report --------------------------------------------------------------------------------
row_of() { # mode n interval -> the SCALE line, if that case ran
  local l
  for l in "${LINES[@]}"; do [ "${l%%|*}" = "$1 $2 $3" ] && { echo "${l##*|}"; return; }; done
  return 0 # a case left out (SCALE_CASES) prints nothing; set -e must not end the report
}
status_of() {
  local l rest
  for l in "${LINES[@]}"; do [ "${l%%|*}" = "$1 $2 $3" ] && { rest=${l#*|}; echo "${rest%%|*}"; return; }; done
  return 0
}
fmt_bytes() { awk -v b="$1" 'BEGIN { if (b >= 1024) printf "%.1f KiB", b / 1024; else printf "%.0f B", b }'; }
TABLE=()
for l in "${LINES[@]}"; do
  read -r mode n interval <<<"${l%%|*}"
  rest=${l#*|}; rc=${rest%%|*}; line=${rest#*|}
  how="one cm_waiter"; [ "$mode" = threads ] && how="a cm_wait_result thread each"
  if [ -z "$(echo "$line" | field ok)" ] || [ "$(echo "$line" | field failed_setup)" = 1 ]; then
    TABLE+=("| $(commas "$n") | $how | $((interval / 1000)) s | did not run (exit status $rc: see the log) | | | | | | |")
    continue
  fi
  threads=$(echo "$line" | field lib_threads_peak)
  if [ "$mode" = threads ]; then
    if [ "$threads" = "$n" ]; then threads="$(commas "$n") (one per wait)"; else threads="$(commas "$n") + $((threads - n))"; fi
  fi
  before=$(echo "$line" | field rss_before_kib); hwm=$(echo "$line" | field hwm_kib)
  peak=$(awk -v h="$hwm" -v b="$before" -v n="$n" 'BEGIN { print (h - b) * 1024 / n }')
  req="$(echo "$line" | field req_per_wait) ($(echo "$line" | field req_expected))"
  x=$(echo "$line" | field req_extra); f=$(echo "$line" | field req_fewer)
  [ "$x" != 0 ] && req="$req, $(commas "$x") waits more"
  [ "$f" != 0 ] && req="$req, $(commas "$f") waits fewer"
  [ "$(echo "$line" | field emu_mismatch)" != 0 ] && req="$req, emulator disagrees on $(echo "$line" | field emu_mismatch)"
  ok=$(echo "$line" | field ok)
  note=""
  [ "$ok" != "$n" ] && note=" ($(commas "$ok") of $(commas "$n") ready)"
  [ "$(echo "$line" | field hang)" = 1 ] && note=" (HANG)"
  TABLE+=("| $(commas "$n") | $how | $((interval / 1000)) s | $threads | $(fmt_bytes "$(echo "$line" | field rss_per_wait_b)") | $(fmt_bytes "$peak") | $req | $(echo "$line" | field late_p50_ms) / $(echo "$line" | field late_p99_ms) ($(echo "$line" | field late_max_ms)) ms | $(echo "$line" | field slip_p50_ms) / $(echo "$line" | field slip_p99_ms) ms | $(echo "$line" | field run_s) s$note |")
done

verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }
GOALS=()
# 1. 100,000 waits on one waiter: at most 1 KiB each, threads at most max_connections + 4.
g=""; worst_b=0; worst_t=0
for l in "${LINES[@]}"; do
  read -r mode n interval <<<"${l%%|*}"
  [ "$mode" = waiter ] && [ "$n" = 100000 ] || continue
  line=${l##*|}
  [ -n "$(echo "$line" | field ok)" ] || { g=fail; continue; }
  b=$(echo "$line" | field rss_per_wait_b); t=$(echo "$line" | field lib_threads_peak)
  awk -v a="$b" -v c="$worst_b" 'BEGIN { exit !(a > c) }' && worst_b=$b
  [ "$t" -gt "$worst_t" ] && worst_t=$t
  g=${g:-ok}
done
if [ -z "$g" ]; then
  GOALS+=("- 100,000 waits on one waiter: not measured (no such case in SCALE_CASES)")
else
  GOALS+=("- 100,000 waits on one waiter, at most 1 KiB of RSS each: $(fmt_bytes "$worst_b") per pending wait: $(verdict "$( [ "$g" = ok ] && awk -v b="$worst_b" 'BEGIN { print (b <= 1024) }' || echo 0)")")
  GOALS+=("- ... and at most max_connections + 4 = $((MAXCONN + 4)) library threads: $worst_t at the peak: $(verdict "$( [ "$g" = ok ] && [ "$worst_t" -le $((MAXCONN + 4)) ] && echo 1 || echo 0)")")
fi
# 2. 10,000 waits, 2 s interval: lateness p99 at most 100 ms, exactly the requests the schedule implies.
line=$(row_of waiter 10000 2000)
if [ -z "$(echo "$line" | field ok)" ]; then
  GOALS+=("- 10,000 waits at a 2 s interval: not measured")
else
  p99=$(echo "$line" | field late_p99_ms)
  GOALS+=("- 10,000 waits at a 2 s interval, lateness p99 at most 100 ms: $p99 ms: $(verdict "$(awk -v p="$p99" -v ok="$(echo "$line" | field ok)" 'BEGIN { print (p >= 0 && p <= 100 && ok == 10000) }')")")
  x=$(echo "$line" | field req_extra); f=$(echo "$line" | field req_fewer)
  GOALS+=("- ... and no extra requests: $(echo "$line" | field req_per_wait) per wait, the schedule implies $(echo "$line" | field req_expected) ($x waits more, $f fewer; the emulator counted $(commas "$(echo "$line" | field emu_requests)")): $(verdict "$( [ "$x" = 0 ] && [ "$f" = 0 ] && [ "$(echo "$line" | field emu_mismatch)" = 0 ] && echo 1 || echo 0)")")
fi
# 3. Cancels: p99 at most 10 ms, every case.
CTABLE=()
worst=0; worst_case=""; cok=1
while read -r l; do
  [ -n "$l" ] || continue
  name=$(echo "$l" | field case); n=$(echo "$l" | field n); ok=$(echo "$l" | field ok)
  [ "$ok" = "$n" ] || cok=0
  if [ "$name" = waiter_shutdown ]; then
    SHUTDOWN="cm_waiter_shutdown with $MAXCONN waits in flight and $(commas $((n - MAXCONN))) asleep: all $(commas "$n") out of cm_waiter_next (CM_ERR_CANCELLED) $(echo "$l" | field all_out_ms) ms after the call"
    continue
  fi
  p99=$(echo "$l" | field p99_ms)
  awk -v a="$p99" -v c="$worst" 'BEGIN { exit !(a > c) }' && { worst=$p99; worst_case=$name; }
  case $name in
    waiter_inflight) what="cm_waiter wait, its request in flight (answer stalled)" ;;
    waiter_queued) what="cm_waiter wait, due but every worker busy on a stalled request" ;;
    waiter_sleeping) what="cm_waiter wait, asleep until its next poll" ;;
    wait_result_inflight) what="cm_wait_result, its request in flight (answer stalled)" ;;
    wait_result_queued) what="cm_wait_result, due but queued for a connection (all $MAXCONN stalled)" ;;
    wait_result_sleeping) what="cm_wait_result, asleep until its next poll" ;;
    get_task_result_with_inflight) what="cm_get_task_result_with, in flight (answer stalled)" ;;
    get_task_result_with_queued) what="cm_get_task_result_with, queued for a connection (all $MAXCONN stalled)" ;;
    *) what=$name ;;
  esac
  row="| $what | $(commas "$n") | $(echo "$l" | field p50_ms) | $p99 | $(echo "$l" | field max_ms) |"
  [ "$ok" = "$n" ] || row="$row only $ok ended CM_ERR_CANCELLED |"
  CTABLE+=("$row")
done <<<"$(echo "$CANCEL" | grep '^CANCEL' || true)"
if [ ${#CTABLE[@]} = 0 ]; then
  GOALS+=("- Cancels, p99 at most 10 ms: not measured (exit status $CANCEL_RC)")
else
  GOALS+=("- Cancels, p99 at most 10 ms in every case: worst $worst ms ($worst_case): $(verdict "$(awk -v w="$worst" -v ok="$cok" -v rc="$CANCEL_RC" 'BEGIN { print (w <= 10 && ok && rc == 0) }')")")
fi

{
  echo "# libcapmonster scale benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
  echo "libcapmonster $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'). The emulator answers every request after"
  echo "$DELAY ms (\`--answer-delay-ms $DELAY --stamp-ready\`); the client is capped at $MAXCONN connections, so at most"
  echo "$MAXCONN / $DELAY ms = $(( MAXCONN * 1000 / DELAY )) requests/s. Wait *j* of *N* has first delay $FIRST ms + interval x *j*/*N*; its"
  echo "task turns ready $FIRST ms + 1.5 intervals + interval x *j*/*N* after the tasks were made, so the schedule"
  echo "takes 3 requests per wait, with half an interval of margin either side."
  echo
  echo "| waits | driven by | interval | library threads, peak | RSS per pending wait | peak RSS per wait | requests per wait (schedule) | lateness p50 / p99 (max) | slip p50 / p99 | run |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE[@]}"
  echo
  for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "$s"; echo; done
  printf '%s\n' "${GOALS[@]}"
  echo
  echo "- library threads: entries of /proc/self/task, sampled every 5 ms (50 ms with a thread per wait),"
  echo "  minus the program's own two (main, sampler); with a thread per wait, those threads are counted."
  echo "- RSS per pending wait: (VmRSS with every wait added and none polled yet - VmRSS just before the"
  echo "  first add, after a warm-up wait) / waits. Peak: (VmHWM at the end - the same baseline) / waits."
  echo "- requests per wait: cm_result_request_count, averaged; in brackets what the schedule implies, each"
  echo "  request taking $DELAY ms. The emulator's per-task counters (GET /_emulator/stats) are compared task by task."
  echo "- lateness: the emulator's stamp of the ready answer (wall clock just before it is written) to the"
  echo "  return of cm_waiter_next / cm_wait_result with it (wall clock), over every wait."
  echo "- slip: the moment the schedule's ready answer would arrive if every request took exactly $DELAY ms"
  echo "  to the same return (monotonic clock): timer and scheduling delays, queueing for a worker or a"
  echo "  connection, summed over the wait's polls. Negative when late polls found the task ready one poll early."
  echo
  echo "Cancels (each wait or call has its own cm_cancel, triggered one at a time; trigger to the return"
  echo "of cm_waiter_next / the call, monotonic clock; the emulator stalls every getTaskResult answer):"
  echo
  echo "| cancelled | n | p50 ms | p99 ms | max ms |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${CTABLE[@]+"${CTABLE[@]}"}"
  echo
  echo "${SHUTDOWN:-cm_waiter_shutdown: not measured}."
} >"$TMP/scale-results.md"
cp "$TMP/scale-results.md" "$ROOT/bench/scale-results.md"
{ for l in "${LINES[@]}"; do echo "${l##*|}"; done; echo "$CANCEL"; } >"$OUT/scale-raw.txt"
echo
cat "$ROOT/bench/scale-results.md"
# A missed goal is a finding, not a failure; a case that hung, crashed or lost a wait is.
FAILED=$CANCEL_RC
for l in "${LINES[@]}"; do rest=${l#*|}; [ "${rest%%|*}" = 0 ] || FAILED=1; done
[ "$FAILED" = 0 ] || { log "some cases did not run cleanly: see above"; exit 1; }
