#!/usr/bin/env bash
# The Go binding's scale benchmark (see bench/README.md, "Go: waits at scale"): 100,000
# concurrent WaitResult calls on one Client against the emulator answering after 10 ms, and
# how fast a cancelled context ends WaitResult and GetTaskResult. A measurement, not a test:
# it prints each goal as met or NOT met, and fails only on a broken setup, a hang, or a wait
# or call that ended wrongly. About 1.5 minutes.
#
#   bench/go/scale.sh     prints the report and writes it to bench/go/scale-results.md
#
# Environment: GO_SCALE_WAITS (default 100000), GO_SCALE_INTERVAL_MS (default 20000: the
# client's 64 connections at 10 ms per answer serve 6,400 requests/s, and 100,000 waits at
# 20 s ask for 5,000/s), GO_SCALE_FIRST_MS (default 1000), GO_SCALE_DELAY_MS (the emulator's
# answer delay, default 10).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/target/bench
N=${GO_SCALE_WAITS:-100000}
INTERVAL=${GO_SCALE_INTERVAL_MS:-20000}
FIRST=${GO_SCALE_FIRST_MS:-1000}
DELAY=${GO_SCALE_DELAY_MS:-10}
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "usage: $0 (settings through the environment: see --help)" >&2; exit 2 ;;
esac
log() { echo "go-scale: $*" >&2; }
# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps go
go_env
mkdir -p "$OUT"

log "building"
build_release
(cd "$ROOT/bench/go/scale" && go build -o "$OUT/go-scale" .)

# The library holds at most 64 sockets and the emulator at most 512, but leave room.
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ] && ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# A fresh emulator answering every API request after DELAY ms, ready answers stamped with
# the moment they are sent; TMP is removed at exit.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-go-scale.XXXXXX")
at_exit rm -rf "$TMP"
start_emulator --answer-delay-ms "$DELAY" --stamp-ready
URL=$EMULATOR_URL

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | head -n 1; }
verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }

LIMIT=$(( (FIRST + 4 * INTERVAL) / 1000 + N / 2000 + 60 ))
log "$N waits, first poll after $FIRST ms + up to one interval, interval $INTERVAL ms, answers after $DELAY ms (at most $LIMIT s)"
RC=0
WAITS=$(timeout "$LIMIT" "$OUT/go-scale" waits "$URL" "$N" "$FIRST" "$INTERVAL") || RC=$?
[ "$RC" = 0 ] || log "waits: exit status $RC$([ "$RC" = 124 ] && echo ": a hang")"
log "cancels"
CRC=0
CANCEL=$(timeout 120 "$OUT/go-scale" cancel "$URL") || CRC=$?
[ "$CRC" = 0 ] || log "cancel: exit status $CRC$([ "$CRC" = 124 ] && echo ": a hang")"
{ echo "$WAITS"; echo "$CANCEL"; } >"$OUT/go-scale-raw.txt"

w() { echo "$WAITS" | field "$1"; }
{
  echo "# Go binding scale benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs, $(go version | cut -d' ' -f3), GOMAXPROCS $(w gomaxprocs),"
  echo "libcapmonster $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'). The emulator answers every request after $DELAY ms;"
  echo "the client keeps the library's default of 64 connections. \`bench/go/scale.sh\`."
  echo
  if [ -n "$(w ok)" ]; then
    hwm=$(w hwm_kib); before=$(w rss_before_kib)
    echo "$(w n) concurrent WaitResult calls on one Client (a goroutine each), interval $((INTERVAL / 1000)) s:"
    echo
    echo "| waits | right solution | OS threads, peak (before) | peak RSS (VmHWM) | per wait | wall time | requests per wait | lateness p50 / p99 (max) |"
    echo "|---|---|---|---|---|---|---|---|"
    echo "| $(w n) | $(w ok) | $(w threads_peak) ($(w threads_before)) | $(awk -v k="$hwm" 'BEGIN { printf "%.0f MiB", k / 1024 }') | $(awk -v h="$hwm" -v b="$before" -v n="$(w n)" 'BEGIN { printf "%.1f KiB", (h - b) / n }') | $(w run_s) s | $(w req_per_wait) (emulator: $(w emu_requests)) | $(w late_p50_ms) / $(w late_p99_ms) ($(w late_max_ms)) ms |"
    echo
    echo "- $(w n) waits, every one right: $(verdict "$( [ "$(w ok)" = "$(w n)" ] && echo 1 || echo 0)")"
    echo "- OS threads at most 100: $(w threads_peak): $(verdict "$( [ "$(w threads_peak)" -le 100 ] && echo 1 || echo 0)")"
    echo "- peak RSS at most 1 GiB: $(awk -v k="$hwm" 'BEGIN { printf "%.0f MiB", k / 1024 }'): $(verdict "$(awk -v k="$hwm" 'BEGIN { print (k <= 1048576) }')")"
  else
    echo "The waits did not run (exit status $RC): see the log."
  fi
  echo
  echo "Cancels (a context each, cancelled one at a time; cancel() to the call's return; the emulator"
  echo "stalls every getTaskResult answer; ok: errors matching both ErrCancelled and context.Canceled):"
  echo
  echo "| cancelled | n | p50 ms | p99 ms | max ms | ok |"
  echo "|---|---|---|---|---|---|"
  worst=0; cok=1
  while read -r l; do
    [ -n "$l" ] || continue
    name=$(echo "$l" | field case); n=$(echo "$l" | field n); ok=$(echo "$l" | field ok)
    [ "$ok" = "$n" ] || cok=0
    case $name in
      close) CLOSE="Close with $n waits pending (32 in flight, the rest asleep): all returned $(echo "$l" | field all_out_ms) ms after the call, $ok matching ErrClosed and ErrCancelled."; continue ;;
      wait_result_inflight) what="WaitResult, its request in flight" ;;
      get_task_result_inflight) what="GetTaskResult, in flight" ;;
      wait_result_sleeping) what="WaitResult, asleep before its first poll" ;;
      *) what=$name ;;
    esac
    p99=$(echo "$l" | field p99_ms)
    awk -v a="$p99" -v c="$worst" 'BEGIN { exit !(a > c) }' && worst=$p99
    echo "| $what | $n | $(echo "$l" | field p50_ms) | $p99 | $(echo "$l" | field max_ms) | $ok |"
  done <<<"$(echo "$CANCEL" | grep '^CANCEL' || true)"
  echo
  echo "${CLOSE:-Close: not measured.}"
  echo
  echo "- cancel p99 at most 10 ms in every case: worst $worst ms: $(verdict "$(awk -v w="$worst" -v ok="$cok" -v rc="$CRC" 'BEGIN { print (w <= 10 && ok && rc == 0) }')")"
  echo
  echo "OS threads: /proc/self/status Threads, sampled every 5 ms (the library's workers, at most 64, the"
  echo "dispatcher, and Go's own). Per wait: (VmHWM - VmRSS before the first wait) / waits. Lateness: the"
  echo "emulator's stamp of the ready answer (wall clock, just before writing it) to WaitResult's return."
} >"$TMP/results.md"
cp "$TMP/results.md" "$ROOT/bench/go/scale-results.md"
echo
cat "$ROOT/bench/go/scale-results.md"
[ "$RC" = 0 ] && [ "$CRC" = 0 ] || { log "some runs did not end cleanly: see above"; exit 1; }
