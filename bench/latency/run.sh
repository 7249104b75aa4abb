#!/usr/bin/env bash
# The latency benchmark (issue 23; see bench/README.md, "Latency"): many waits on one cm_waiter
# against the emulator answering every request after a round trip, beside plain Go net/http
# with a goroutine per wait, over HTTP/1.1 and (through nginx with TLS) HTTP/2.
#
#   bench/latency/run.sh [options]    prints the table and writes it to bench/latency/results.md
#
# Options (each takes a comma-separated list or a number; defaults in brackets):
#   --delays MS,...        the emulator's answer delay, i.e. the round trip [0,50,150,300]
#   --waits N,...          waits per run [10000]; 100000 adds ~10 minutes (and 1e5 Go connections
#                          do not fit ulimit -n, which this script raises to 65,536 at most: Go's
#                          HTTP/1.1 row is then skipped)
#   --contenders C,...     lib:CAP (libcapmonster, max_connections CAP, HTTP/1.1 to the emulator),
#                          lib-tls:CAP (the same through nginx with TLS: HTTP/2 if the library
#                          offers it), lib-tls-direct:CAP (TLS straight to the emulator's own
#                          HTTP/2 listener, no nginx), go (net/http, HTTP/1.1 to the emulator),
#                          go-h2 (net/http, HTTP/2 through nginx), go-h2-direct (net/http, HTTP/2
#                          straight to the emulator) [lib:64,lib:512,lib:2048,go,go-h2]
#   --interval MS          the waits' interval [2000]
#   --ready MS             each task turns ready this long after its first poll [3000]
#   --spread MS            wait j's first delay is SPREAD * j / N [0: all polled at once]
#   --output FILE          where the table goes [bench/latency/results.md]; - for nowhere
#
# The default run (4 round trips x 5 contenders at 10,000 waits) takes about 6 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/target/bench
DELAYS=0,50,150,300
WAITS=10000
CONTENDERS=lib:64,lib:512,lib:2048,go,go-h2
INTERVAL=2000
READY=3000
SPREAD=0
OUTPUT=$ROOT/bench/latency/results.md
usage() { sed -n '2,24p' "$0"; }
while [ $# -gt 0 ]; do
  case $1 in
    --delays | --waits | --contenders | --interval | --ready | --spread | --output)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --delays) DELAYS=$2 ;; --waits) WAITS=$2 ;; --contenders) CONTENDERS=$2 ;;
        --interval) INTERVAL=$2 ;; --ready) READY=$2 ;; --spread) SPREAD=$2 ;; --output) OUTPUT=$2 ;;
      esac
      shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in ${DELAYS//,/ } ${WAITS//,/ } $INTERVAL $READY $SPREAD; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "not a number: $v" >&2; exit 2; }
done
NEED_H2=0   # nginx
NEED_CERT=0 # the emulator's own TLS listener
for c in ${CONTENDERS//,/ }; do
  case $c in
    lib:[1-9]*) [[ ${c#lib:} =~ ^[0-9]+$ ]] || { echo "bad contender $c" >&2; exit 2; } ;;
    lib-tls:[1-9]*) [[ ${c#lib-tls:} =~ ^[0-9]+$ ]] || { echo "bad contender $c" >&2; exit 2; }; NEED_H2=1 ;;
    lib-tls-direct:[1-9]*) [[ ${c#lib-tls-direct:} =~ ^[0-9]+$ ]] || { echo "bad contender $c" >&2; exit 2; }; NEED_CERT=1 ;;
    go) ;;
    go-h2) NEED_H2=1 ;;
    go-h2-direct) NEED_CERT=1 ;;
    *) echo "unknown contender $c (lib:CAP, lib-tls:CAP, lib-tls-direct:CAP, go, go-h2, go-h2-direct)" >&2; exit 2 ;;
  esac
done

log() { echo "latency: $*" >&2; }
# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps bench-latency
mkdir -p "$OUT"

# ---- build -------------------------------------------------------------------------------------
log "building"
build_release
gcc -O2 -g -Wall -Wextra "$ROOT/bench/latency/latency.c" "${LINK_LIBCAPMONSTER[@]}" -o "$OUT/latency"
go_env
(cd "$ROOT/bench/latency/go" && go build -o "$OUT/latency-go" .)

# Go with no cap opens a connection per wait in flight, the emulator holds one each: room for both.
HARD=$(ulimit -Hn)
WANT=65536
[ "$HARD" != unlimited ] && [ "$HARD" -lt "$WANT" ] && WANT=$HARD
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT" ] && ulimit -n "$WANT"
FDS=$(ulimit -n)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-latency.XXXXXX")
at_exit rm -rf "$TMP"
# A budget file of this run's own (the emulator's task ids restart with every reset).
export CAPMONSTER_BUDGET_FILE=$TMP/budget

# The emulator's own TLS listener (HTTP/2 by ALPN): a certificate for 127.0.0.1 from a CA of the
# run's own (the one nginx uses, made the same way).
[ "$NEED_CERT" = 0 ] || "$ROOT/tests/nginx/make-cert.sh" "$TMP/cert" >/dev/null

# ---- nginx (HTTP/2, TLS) in front of the emulator -----------------------------------------------
NGINX_PID=
H2_PORT=
stop_nginx() { [ -z "$NGINX_PID" ] || { kill "$NGINX_PID"; wait "$NGINX_PID"; } 2>/dev/null || true; NGINX_PID=; }
at_exit stop_nginx
# Connections nginx has accepted so far (this query's own included).
nginx_accepts() {
  curl -s --max-time 5 --cacert "$TMP/nginx/ca.pem" "https://127.0.0.1:$H2_PORT/_nginx/status" |
    awk 'f { print $1; exit } /server accepts/ { f = 1 }'
}
start_nginx() { # UPSTREAM_PORT
  local _
  stop_nginx
  for _ in 1 2 3 4 5; do
    H2_PORT=$((20000 + RANDOM % 40000))
    "$ROOT/tests/nginx/start-h2.sh" "$TMP/nginx" "$H2_PORT" "$1" >"$TMP/nginx.out" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
      [ -n "$(nginx_accepts 2>/dev/null)" ] && return 0
      kill -0 "$NGINX_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_nginx
  done
  log "nginx did not start:"; cat "$TMP/nginx.out" "$TMP/nginx/error.log" >&2 || true
  return 1
}

# The protocols of the API requests nginx served since the log was emptied, e.g. "HTTP/2.0:30000".
protocols() {
  sleep 1.2 # nginx flushes its buffered log at least every second
  sort "$TMP/nginx/protocol.log" | uniq -c | awk '{ printf "%s%s:%s", (NR > 1 ? "," : ""), $2, $1 }'
}

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | head -n 1; }
commas() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

# ---- the runs ----------------------------------------------------------------------------------
LINES=() # "delay n contender|rc|LATENCY line|nginx accepts during the run|protocols"
FAILED=0
for delay in ${DELAYS//,/ }; do
  for n in ${WAITS//,/ }; do
    for c in ${CONTENDERS//,/ }; do
      rc=0 line="" accepts="" protos=""
      if [ "$c" = go ] && [ $((n + 500)) -gt "$FDS" ]; then
        log "$c, $(commas "$n") waits: skipped (ulimit -n $FDS)"
        LINES+=("$delay $n $c|skip||"); continue
      fi
      # Servers of the case's own: connections an earlier case left open (nginx keeps its
      # upstream ones alive) would count against the next. No cap of the emulator's own: a
      # connection is a socket and a small task there, and ulimit -n (checked above for Go's
      # connection per wait) is the bound.
      tls=()
      case $c in
        lib-tls-direct:* | go-h2-direct)
          rm -f "$TMP/tls-port"
          tls=(--tls-cert "$TMP/cert/server.pem" --tls-key "$TMP/cert/server.key" --tls-port-file "$TMP/tls-port") ;;
      esac
      start_emulator --answer-delay-ms "$delay" --stamp-ready --max-connections 1000000 "${tls[@]}"
      port=${EMULATOR_URL##*:}
      TLS_URL=
      if [ ${#tls[@]} -gt 0 ]; then
        for _ in $(seq 1 100); do [ -s "$TMP/tls-port" ] && break; sleep 0.05; done
        TLS_URL=https://127.0.0.1:$(cat "$TMP/tls-port")
      fi
      case $c in lib-tls:* | go-h2) start_nginx "$port" ;; esac
      log "emulator (pid $EMULATOR_PID) at $EMULATOR_URL${TLS_URL:+ and $TLS_URL} answering after $delay ms${NGINX_PID:+; nginx h2 at https://127.0.0.1:$H2_PORT}"
      cap=$n
      case $c in lib:* | lib-tls:* | lib-tls-direct:*) cap=${c#*:} ;; esac
      # Generous: three polls per wait at cap / delay requests per second, twice over, plus the schedule.
      limit=$((120 + (INTERVAL * 3 + SPREAD + READY) / 1000 + 6 * n * (delay + 5) / (cap * 1000)))
      log "$c, $(commas "$n") waits, $delay ms round trip (at most $limit s)"
      before=""
      case $c in
        lib:*) line=$(timeout "$limit" "$OUT/latency" "$EMULATOR_URL" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay" "$cap") || rc=$? ;;
        go) line=$(timeout "$limit" "$OUT/latency-go" "$EMULATOR_URL" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay") || rc=$? ;;
        lib-tls-direct:*) line=$(LATENCY_CA_FILE=$TMP/cert/ca.pem timeout "$limit" "$OUT/latency" "$TLS_URL" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay" "$cap") || rc=$? ;;
        go-h2-direct) line=$(LATENCY_CA_FILE=$TMP/cert/ca.pem timeout "$limit" "$OUT/latency-go" "$TLS_URL" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay") || rc=$? ;;
        lib-tls:* | go-h2)
          : >"$TMP/nginx/protocol.log"
          before=$(nginx_accepts)
          if [ "$c" = go-h2 ]; then
            line=$(LATENCY_CA_FILE=$TMP/nginx/ca.pem timeout "$limit" "$OUT/latency-go" "https://127.0.0.1:$H2_PORT" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay") || rc=$?
          else
            line=$(LATENCY_CA_FILE=$TMP/nginx/ca.pem timeout "$limit" "$OUT/latency" "https://127.0.0.1:$H2_PORT" "$port" "$n" "$INTERVAL" "$SPREAD" "$READY" "$delay" "$cap") || rc=$?
          fi
          accepts=$(( $(nginx_accepts) - before - 1 ))
          protos=$(protocols) ;;
      esac
      [ "$rc" = 0 ] || { log "$c $n $delay ms: exit status $rc$( [ "$rc" = 124 ] && echo ' (timed out: a hang?)')"; FAILED=1; }
      echo "$line" >&2
      LINES+=("$delay $n $c|$rc|$line|$accepts|$protos")
      stop_nginx
      stop_emulator
    done
  done
done

# ---- the report --------------------------------------------------------------------------------
TABLE=()
for l in "${LINES[@]}"; do
  read -r delay n c <<<"${l%%|*}"
  rest=${l#*|}; rc=${rest%%|*}; rest=${rest#*|}; line=${rest%%|*}; rest=${rest#*|}
  accepts=${rest%%|*}; protos=${rest#*|}
  case $c in
    lib:*) who="libcapmonster, cap ${c#lib:}"; proto="HTTP/1.1" ;;
    lib-tls:*) who="libcapmonster, cap ${c#lib-tls:}" ;;
    lib-tls-direct:*) who="libcapmonster, cap ${c#lib-tls-direct:}" ;;
    go*) who="Go net/http"; proto="HTTP/1.1" ;;
  esac
  # Through nginx: the protocol(s) its log saw, e.g. "HTTP/2 (TLS, nginx)".
  if [ -n "$protos" ]; then
    proto=$(echo "$protos" | sed -e 's/:[0-9]*//g' -e 's|HTTP/2.0|HTTP/2|g' -e 's/,/ + /g')
    proto="$proto (TLS, nginx)"
  elif [ "$c" = go-h2 ] || [ "${c%%:*}" = lib-tls ]; then
    proto="TLS, nginx"
  elif [ "$c" = go-h2-direct ] || [ "${c%%:*}" = lib-tls-direct ]; then
    # Straight to the emulator: the answers that came over HTTP/2 (the emulator's count for
    # the library, the client's own for Go), of all getTaskResult answers.
    h2=$(echo "$line" | field emu_http2_requests)
    [ "$c" = go-h2-direct ] && h2=$(echo "$line" | field h2_answers)
    all_requests=$(echo "$line" | field emu_requests)
    if [ -n "$h2" ] && [ "$h2" = "$all_requests" ]; then
      proto="HTTP/2 (TLS, the emulator's own)"
    else
      proto="HTTP/2 for ${h2:-?} of ${all_requests:-?} (TLS, the emulator's own)"
    fi
  fi
  if [ "$rc" = skip ]; then
    TABLE+=("| $(commas "$n") | $delay ms | $who | $proto | not run: a connection per wait is more than ulimit -n allows | | | | | |")
    continue
  fi
  if [ -z "$(echo "$line" | field all_done_s)" ]; then
    TABLE+=("| $(commas "$n") | $delay ms | $who | $proto | did not run (exit status $rc: see the log) | | | | | |")
    continue
  fi
  # The schedule: every wait's task ready READY ms after its first poll; poll k reaches the
  # emulator at first + k * (interval + delay); the last wait's first poll is at SPREAD (N-1)/N.
  k=$(( $(echo "$line" | field req_schedule) - 1 ))
  sched_ms=$(awk -v s="$SPREAD" -v n="$n" -v k="$k" -v i="$INTERVAL" -v d="$delay" 'BEGIN { printf "%.0f", s * (n - 1) / n + k * (i + d) + d }')
  sched_late=$(( k * (INTERVAL + delay) + delay - READY ))
  all=$(echo "$line" | field all_done_s)
  ratio=$(awk -v a="$all" -v s="$sched_ms" 'BEGIN { printf "%.2f", a * 1000 / s }')
  note=""
  ok=$(echo "$line" | field ok)
  [ "$ok" != "$n" ] && note=" ($(commas "$ok") of $(commas "$n") ready)"
  [ "$rc" != 0 ] && note="$note (exit status $rc)"
  if [ "$c" = go-h2 ]; then
    conns="$(commas "$accepts") to nginx, $(echo "$line" | field client_connections) used"
  elif [ "$c" = go-h2-direct ]; then
    conns="$(commas "$(( $(echo "$line" | field emu_connections) - 2 ))") TLS, $(echo "$line" | field client_connections) used"
  elif [ -n "$accepts" ]; then
    conns="$(commas "$accepts") to nginx"
  else
    conns="$(commas "$(( $(echo "$line" | field emu_connections) - 2 ))") ($(commas "$(( $(echo "$line" | field emu_peak_connections) - 1 ))") at once)"
  fi
  rss=$(awk -v k="$(echo "$line" | field hwm_kib)" 'BEGIN { printf "%.0f", k / 1024 }')
  TABLE+=("| $(commas "$n") | $delay ms | $who | $proto | $all s (${ratio} x)$note | $(echo "$line" | field req_per_wait) ($(echo "$line" | field req_schedule)) | $(echo "$line" | field late_p50_ms) / $(echo "$line" | field late_p99_ms) ms ($sched_late) | $(echo "$line" | field threads_peak) | $conns | $rss MiB |")
done

REPORT=$TMP/results.md
{
  echo "# libcapmonster latency benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
  echo "libcapmonster $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'), $(go version | awk '{ print $3 }'), nginx $(nginx -v 2>&1 | sed 's|.*/||')."
  echo "\`bench/latency/run.sh --delays $DELAYS --waits $WAITS --contenders $CONTENDERS --interval $INTERVAL --ready $READY --spread $SPREAD\`"
  echo
  echo "N waits on one cm_waiter (Go: a goroutine each), added at once, first delay $SPREAD x j / N ms, interval"
  echo "$INTERVAL ms; the emulator answers every request after the round trip (\`--answer-delay-ms\`) and"
  echo "readies each task $READY ms after its first poll. The schedule alone: every wait done"
  echo "$SPREAD (N-1)/N + k (interval + round trip) + round trip after the start, k polls after the first."
  echo
  echo "| waits | round trip | contender | protocol | all done (x the schedule's time) | requests per wait (schedule) | lateness p50 / p99 (schedule) | threads, peak | connections | peak RSS |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE[@]}"
  echo
  echo "- lateness: the emulator's stamp of when the task turned ready (\`emulatorReadyAtUs\`) to the wait's"
  echo "  return from cm_waiter_next (Go: the goroutine read the ready answer), wall clock. In brackets what"
  echo "  the schedule alone gives: k (interval + round trip) + round trip - ready time."
  echo "- threads: libcapmonster's threads (peak of /proc/self/task, sampled every 5 ms, minus the driver's"
  echo "  main and sampler threads); Go: the whole process's."
  echo "- connections: straight to the emulator, those it accepted during the run (its control requests"
  echo "  left out) and the most open at once; through nginx, those nginx accepted (TLS handshakes: Go dials"
  echo "  one per request waiting for a connection, then keeps the first and closes the rest) and those Go used."
  echo "- protocol through nginx: what nginx's log saw for the run's API requests; straight to the"
  echo "  emulator's own TLS listener (\`--tls-cert\`, HTTP/2 by ALPN): the emulator's count of HTTP/2"
  echo "  requests (Go: the answers Go read over HTTP/2)."
  echo "- peak RSS: VmHWM of the whole client process."
} >"$REPORT"
echo
cat "$REPORT"
[ "$OUTPUT" = - ] || cp "$REPORT" "$OUTPUT"
{ for l in "${LINES[@]}"; do echo "${l}"; done; } >"$OUT/latency-raw.txt"
[ "$FAILED" = 0 ] || { log "some runs did not end cleanly: see above"; exit 1; }
