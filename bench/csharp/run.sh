#!/usr/bin/env bash
# The C# binding at scale: 100,000 concurrent WaitResultAsync on one client against the
# emulator (threads, peak RSS, wall time, requests per wait), then cancel latencies
# (WaitResultAsync and GetTaskResultAsync in flight against a stalled answer, asleep, Dispose).
# See bench/README.md ("C# at scale"). A measurement, not a test: goals are printed as met or
# NOT met; it fails only on a broken setup or a wait that ends wrongly. About 2 minutes.
#
#   bench/csharp/run.sh     prints the figures and writes them to target/bench/csharp-scale.txt
#
# Environment: CS_SCALE_WAITS (default 100000), CS_SCALE_INTERVAL_MS (20000), CS_SCALE_FIRST_MS
# (1000), CS_SCALE_DELAY_MS (the emulator's answer delay, 10).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/target/bench
N=${CS_SCALE_WAITS:-100000}
INTERVAL=${CS_SCALE_INTERVAL_MS:-20000}
FIRST=${CS_SCALE_FIRST_MS:-1000}
DELAY=${CS_SCALE_DELAY_MS:-10}
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: $0 (settings through the environment: see --help)" >&2; exit 2 ;;
esac
log() { echo "cs-scale: $*" >&2; }
# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps csharp
mkdir -p "$OUT"

# ---- build -------------------------------------------------------------------------------------
log "building"
build_release
LIBDIR=$ROOT/target/release
mcs -nologo -langversion:6 -target:library -out:"$OUT/CapMonster.dll" "$ROOT"/bindings/csharp/CapMonster/*.cs
mcs -nologo -optimize+ -target:exe -r:"$OUT/CapMonster.dll" -out:"$OUT/Scale.exe" "$ROOT/bench/csharp/Scale.cs"

# The library holds at most 64 sockets and the emulator at most 512, but leave room.
HARD=$(ulimit -Hn); WANT=65536
[ "$HARD" != unlimited ] && [ "$HARD" -lt "$WANT" ] && WANT=$HARD
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT" ] && ulimit -n "$WANT"

# ---- the emulator ------------------------------------------------------------------------------
# A fresh emulator answering every API request after DELAY ms, ready answers stamped with
# the moment they are sent.
start_emulator --answer-delay-ms "$DELAY" --stamp-ready
URL=$EMULATOR_URL
log "emulator (pid $EMULATOR_PID) at $URL, answering after $DELAY ms"

export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$OUT"
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | head -n 1; }

# ---- the runs ----------------------------------------------------------------------------------
STATUS=0
log "$N waits, first delay $FIRST ms, interval $INTERVAL ms"
LIMIT=$(( (FIRST + 4 * INTERVAL) / 1000 + N / 1000 + 120 ))
SCALE=$(env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY \
  timeout "$LIMIT" mono Scale.exe waits "$URL" "$N" "$FIRST" "$INTERVAL" "$DELAY") || { STATUS=$?; log "waits: exit status $STATUS"; }
log "cancels"
CANCEL=$(env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY \
  timeout 240 mono Scale.exe cancel "$URL") || { s=$?; [ "$STATUS" = 0 ] && STATUS=$s; log "cancel: exit status $s"; }

# ---- the report --------------------------------------------------------------------------------
verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }
{
  echo "C# binding at scale ($(mono --version | head -n 1 | sed 's/ (.*//'), $(nproc) CPUs; emulator answer delay $DELAY ms)"
  echo
  if [ -n "$(echo "$SCALE" | field ok)" ]; then
    n=$(echo "$SCALE" | field n); ok=$(echo "$SCALE" | field ok)
    peak=$(echo "$SCALE" | field threads_peak); hwm=$(echo "$SCALE" | field hwm_kib)
    echo "$n WaitResultAsync on one client (first delay $FIRST ms + spread, interval $INTERVAL ms, one shared cancellable token):"
    echo "  right solutions:        $ok of $n"
    echo "  wall time:              $(echo "$SCALE" | field run_s) s (adding them: $(echo "$SCALE" | field add_ms) ms)"
    echo "  threads:                $(echo "$SCALE" | field threads_before) before, $(echo "$SCALE" | field threads_pending) with all pending, $peak at the peak (process total, Mono's included)"
    echo "  RSS:                    $(( $(echo "$SCALE" | field rss_before_kib) / 1024 )) MiB before, $(( $(echo "$SCALE" | field rss_pending_kib) / 1024 )) MiB with all pending ($(echo "$SCALE" | field rss_per_wait_b) B per wait), peak (VmHWM) $(( hwm / 1024 )) MiB"
    echo "  requests per wait:      $(echo "$SCALE" | field req_per_wait) (the schedule implies 3; $(echo "$SCALE" | field waits_not_3_requests) waits differ; emulator counted $(echo "$SCALE" | field emulator_polls), the library $(echo "$SCALE" | field library_requests))"
    echo "  lateness p50/p99/max:   $(echo "$SCALE" | field late_p50_ms) / $(echo "$SCALE" | field late_p99_ms) / $(echo "$SCALE" | field late_max_ms) ms (emulator's send stamp -> the task's continuation)"
    echo
    echo "goals:"
    echo "  all $n right:          $(verdict "$([ "$ok" = "$n" ] && echo 1 || echo 0)")"
    echo "  threads <= 100:         $peak: $(verdict "$([ "$peak" -le 100 ] && echo 1 || echo 0)")"
    echo "  peak RSS <= 1.5 GiB:    $(( hwm / 1024 )) MiB: $(verdict "$([ "$hwm" -le 1572864 ] && echo 1 || echo 0)")"
  else
    echo "waits: did not run to the end (see the log above)"
  fi
  echo
  echo "cancels (Cancel() -> the task's continuation runs; one at a time):"
  worst=0
  while read -r l; do
    [ -n "$l" ] || continue
    c=$(echo "$l" | field case); [ "$c" = warmup ] && continue
    if [ "$c" = dispose ]; then
      echo "  Dispose, 64 in flight + 1,000 asleep: Dispose returned after $(echo "$l" | field dispose_ms) ms, all $(echo "$l" | field ok) of $(echo "$l" | field n) Canceled after $(echo "$l" | field all_canceled_ms) ms"
      continue
    fi
    p99=$(echo "$l" | field p99_ms)
    drain=$(echo "$l" | field native_drain_max_ms)
    [ "$drain" = "-1.000" ] && drain="" || drain="; native waits all out $drain ms after the round's last Cancel()"
    printf '  %-32s n=%-5s canceled=%-5s p50 %s ms, p99 %s ms, max %s ms%s\n' "$c" "$(echo "$l" | field n)" "$(echo "$l" | field ok)" \
      "$(echo "$l" | field p50_ms)" "$p99" "$(echo "$l" | field max_ms)" "$drain"
    awk -v a="$p99" -v b="$worst" 'BEGIN { exit !(a > b) }' && worst=$p99
  done <<<"$CANCEL"
  echo "  goal p99 <= 10 ms:      worst p99 $worst ms: $(verdict "$(awk -v w="$worst" 'BEGIN { print (w > 0 && w <= 10) }')")"
  echo
  echo "raw:"
  echo "$SCALE"
  echo "$CANCEL"
} | tee "$OUT/csharp-scale.txt"
exit "$STATUS"
