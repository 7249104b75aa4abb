#!/usr/bin/env bash
# The performance benchmark: libcapmonster against libcurl and Go's net/http, side by side,
# against one local nginx on loopback. See bench/README.md.
#
#   bench/run.sh             the comparison table (also written to bench/results.md)
#   bench/run.sh --profile   callgrind, allocations and system calls per call (lib vs curl)
#   bench/run.sh --log       the single call's cost with a log callback set and without
#   bench/run.sh --redis     a call's cost with the budget in Redis, in the file, and libcurl's
#
# Environment: BENCH_CALLS (calls per run, default 20000), BENCH_REPS (runs per contender and
# case, default 5; the median is reported), BENCH_PROFILE_CALLS (default 3000).
# Packages: scripts/install-deps.sh bench.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/bench
CALLS=${BENCH_CALLS:-20000}
REPS=${BENCH_REPS:-5}
PROFILE_CALLS=${BENCH_PROFILE_CALLS:-3000}
WARMUP=$(( CALLS / 20 > 200 ? CALLS / 20 : 200 ))
READY_AFTER_MS=1500
MODE=table
case "${1:-}" in
  "") ;;
  --profile) MODE=profile ;;
  --log) MODE=log ;;
  --redis) MODE=redis ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--profile|--log|--redis]" >&2; exit 2 ;;
esac

log() { echo "bench: $*" >&2; }
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need_deps bench
mkdir -p "$OUT"

# ---- build -------------------------------------------------------------------------------------
log "building"
build_release
LIBDIR=$ROOT/target/release
gcc -O2 -g -Wall -DCONTENDER_LIB "$ROOT/bench/bench.c" "${LINK_LIBCAPMONSTER[@]}" -o "$OUT/bench_lib"
gcc -O2 -g -Wall -DCONTENDER_CURL "$ROOT/bench/bench.c" -lcurl -lcjson -pthread -o "$OUT/bench_curl"
gcc -O2 -Wall -DCONTENDER_LIB "$ROOT/bench/rss.c" "${LINK_LIBCAPMONSTER[@]}" -o "$OUT/rss_lib"
gcc -O2 -Wall -DCONTENDER_CURL "$ROOT/bench/rss.c" -lcurl -lcjson -o "$OUT/rss_curl"
gcc -O2 -Wall "$ROOT/bench/rss.c" -o "$OUT/rss_none"
HAVE_GO=0
if go_env 2>/dev/null && (cd "$ROOT/bench/go" && go build -o "$OUT/gobench" . ) >&2; then
  HAVE_GO=1
else
  log "no Go toolchain: the Go column is left out"
fi

# ---- servers -----------------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/capmonster-bench.XXXXXX)
# libcapmonster counts every getTaskResult in a budget file that the user's processes share
# (README, "The request budget"). The benchmark polls the same task ids in every run, as no
# real program would, so each run gets a fresh file: the cost measured is the shared budget's.
export CAPMONSTER_BUDGET_FILE=$TMP/budget
fresh_budget() { rm -f "$CAPMONSTER_BUDGET_FILE"; }
NGINX_PID=""
stop_nginx() { [ -z "$NGINX_PID" ] || { kill "$NGINX_PID"; wait "$NGINX_PID"; } 2>/dev/null; }
at_exit rm -rf "$TMP"
at_exit stop_nginx

NCPU=$(nproc)
ALL_CPUS="0-$(( NCPU - 1 ))"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# The status page of our nginx; fails when it does not answer.
nginx_status() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  printf 'GET /_status HTTP/1.0\r\nHost: bench\r\n\r\n' >&3
  reply=$(cat <&3); exec 3<&-
  printf '%s\n' "$reply"
}
# Connections nginx has accepted so far (this query included).
accepts() { nginx_status | awk 'f { print $1; exit } /server accepts/ { f = 1 }'; }

start_nginx() {
  local d=$TMP/nginx try i
  mkdir -p "$d/logs"
  for try in $(seq 1 20); do
    PORT=$(( 20000 + RANDOM % 40000 ))
    sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$PORT|g" "$ROOT/bench/nginx.conf.in" >"$d/nginx.conf"
    taskset -c 0 "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/logs/stdout" 2>&1 &
    NGINX_PID=$!
    for i in $(seq 1 50); do
      kill -0 "$NGINX_PID" 2>/dev/null || break
      if nginx_status 2>/dev/null | grep -q 'Active connections'; then return 0; fi
      sleep 0.1
    done
    kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""
  done
  log "nginx did not start:"; cat "$d/logs/error.log" "$d/logs/stdout" >&2 || true; return 1
}

start_nginx
URL="http://127.0.0.1:$PORT"
log "nginx (pid $NGINX_PID) at $URL, $NCPU CPUs"

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; }

# ---- one measured run ----------------------------------------------------------------------------
CONTENDERS=(lib curl); [ "$HAVE_GO" = 1 ] && CONTENDERS+=(go)
RAW=$TMP/raw
: >"$RAW"
run_one() { # case contender threads client_cpus [name to record instead of the contender's]
  local bin=$OUT/bench_$2; [ "$2" = go ] && bin=$OUT/gobench
  local before after line warm=$WARMUP
  [ "$3" -gt 1 ] && warm=$(( WARMUP > 20 * $3 ? WARMUP : 20 * $3 ))
  local cpu0 cpu1 f
  local seg0 seg1
  fresh_budget
  before=$(accepts); cpu0=$(server_cpu_ns); seg0=$(tcp_segments)
  line=$(taskset -c "$4" "$bin" run "$URL" "$3" "$CALLS" "$warm") || { log "$2 failed: $line"; exit 1; }
  seg1=$(tcp_segments); cpu1=$(server_cpu_ns); after=$(accepts)
  {
    printf '%s %s' "$1" "${5:-$2}"
    for f in us_per_call calls_per_s p50_us p99_us; do printf ' %s' "$(echo "$line" | field $f)"; done
    printf ' %s' $(( after - before - 1 ))
    for f in cpu_us_per_call sys_us_per_call vcsw_per_call; do printf ' %s' "$(echo "$line" | field $f)"; done
    # nginx's CPU time per request, warm-up requests included
    # and TCP segments sent per request (both directions: it is all loopback)
    awk -v d=$(( cpu1 - cpu0 )) -v g=$(( seg1 - seg0 )) -v n=$(( $(echo "$line" | field calls) + $(echo "$line" | field warmup) )) \
      'BEGIN { printf " %.2f %.2f\n", d / 1000 / n, g / n }'
  } >>"$RAW"
}
# TCP segments sent so far by this network namespace (both ends of loopback: client and nginx)
tcp_segments() { awk '$1 == "Tcp:" { if (!c) { for (i = 2; i <= NF; i++) if ($i == "OutSegs") c = i } else { print $c; exit } }' /proc/net/snmp; }
# nginx's time on CPU so far, in ns
server_cpu_ns() { awk '{ print $1 }' "/proc/$NGINX_PID/schedstat" 2>/dev/null || echo 0; }

# ---- log mode: a call's cost with a log callback ----------------------------------------------
if [ "$MODE" = log ]; then
  L=$OUT/log-cost.txt
  : >"$L"
  say() { echo "$*" | tee -a "$L"; }
  say "# cm_get_task_result on $URL (nginx), one thread, client and server on CPU 0: median of $REPS runs of"
  say "# $CALLS calls; Ir/call from callgrind over $PROFILE_CALLS calls (bench.c's BENCH_LOG_LEVEL callback counts lines)"
  say ""
  say "| callback | µs/call | Ir/call | log lines/call |"
  say "|---|---|---|---|"
  taskset -p -c 0 "$NGINX_PID" >/dev/null
  for level in none 1 4 5; do
    env=(); [ "$level" = none ] || env=(BENCH_LOG_LEVEL="$level")
    times=()
    for rep in $(seq 1 "$REPS"); do
      fresh_budget
      line=$(env "${env[@]}" taskset -c 0 "$OUT/bench_lib" run "$URL" 1 "$CALLS" "$WARMUP" 2>"$TMP/log.stderr") \
        || { cat "$TMP/log.stderr" >&2; exit 1; }
      times+=("$(echo "$line" | field us_per_call)")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    fresh_budget
    env "${env[@]}" valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measured_loop \
      --callgrind-out-file="$TMP/callgrind.log.out" "$OUT/bench_lib" run "$URL" 1 "$PROFILE_CALLS" 20 \
      >/dev/null 2>"$TMP/log.cg.stderr" || { cat "$TMP/log.cg.stderr" >&2; exit 1; }
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$TMP/callgrind.log.out")
    lines=$(sed -n 's/.*bench_lib: \([0-9]*\) log lines.*/\1/p' "$TMP/log.cg.stderr")
    case $level in none) name="none" ;; 1) name="set, CM_LOG_ERROR (no line taken)" ;;
                   4) name="set, CM_LOG_DEBUG" ;; 5) name="set, CM_LOG_TRACE" ;; esac
    say "| $name | $median | $(( ir / PROFILE_CALLS )) | $(awk -v l="${lines:-0}" -v n=$(( PROFILE_CALLS + 20 )) 'BEGIN { printf "%.1f", l / n }') |"
  done
  taskset -p -c "$ALL_CPUS" "$NGINX_PID" >/dev/null
  log "written to $L"
  exit 0
fi

# ---- redis mode: a call's cost with the budget in Redis ---------------------------------------
if [ "$MODE" = redis ]; then
  need_deps rust   # redis-server and redis-cli
  R=$OUT/redis-cost.txt
  : >"$R"
  say() { echo "$*" | tee -a "$R"; }
  RPORT=""
  for try in $(seq 1 20); do
    RPORT=$(( 20000 + RANDOM % 40000 ))
    mkdir -p "$TMP/redis"
    taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
      --logfile "$TMP/redis/log" &
    REDIS_PID=$!
    for i in $(seq 1 50); do
      redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break 2
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""
  done
  [ -n "$REDIS_PID" ] || { log "redis-server did not start"; exit 1; }
  at_exit kill "$REDIS_PID"
  REDIS_URL="redis://127.0.0.1:$RPORT/0"
  say "# cm_get_task_result on $URL (nginx): median of $REPS runs of $CALLS calls; one thread with client, nginx and"
  say "# redis-server on CPU 0 (so the server's work counts in the call's time), 8 threads on all CPUs"
  say ""
  say "| budget | µs/call, 1 thread | p99 µs, 1 thread | calls/s, 8 threads |"
  say "|---|---|---|---|"
  taskset -p -c 0 "$NGINX_PID" >/dev/null
  for store in file redis curl; do
    bin=$OUT/bench_lib env=(CAPMONSTER_BUDGET=shared); name="libcapmonster, the machine's file (default)"
    case $store in
      redis) env=(CAPMONSTER_BUDGET="$REDIS_URL"); name="libcapmonster, Redis on loopback" ;;
      curl) bin=$OUT/bench_curl; name="libcurl + cJSON (no budget)" ;;
    esac
    declare -A cells=()
    for threads in 1 8; do
      cpus=0; [ "$threads" = 1 ] || { cpus=$ALL_CPUS; taskset -p -c "$ALL_CPUS" "$NGINX_PID" >/dev/null; }
      times=() p99s=() rates=()
      for rep in $(seq 1 "$REPS"); do
        fresh_budget; redis-cli -p "$RPORT" flushdb >/dev/null
        line=$(env "${env[@]}" taskset -c "$cpus" "$bin" run "$URL" "$threads" "$CALLS" "$WARMUP") \
          || { log "$store failed: $line"; exit 1; }
        times+=("$(echo "$line" | field us_per_call)") p99s+=("$(echo "$line" | field p99_us)")
        rates+=("$(echo "$line" | field calls_per_s)")
      done
      median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
      cells[$threads.us]=$(median "${times[@]}") cells[$threads.p99]=$(median "${p99s[@]}")
      cells[$threads.rate]=$(median "${rates[@]}")
      taskset -p -c 0 "$NGINX_PID" >/dev/null
    done
    say "| $name | ${cells[1.us]} | ${cells[1.p99]} | ${cells[8.rate]} |"
    [ "$store" != redis ] || key=$(redis-cli -p "$RPORT" --scan | head -n 1)
  done
  say ""
  say "A key the library left in Redis: \`$key\`"
  taskset -p -c "$ALL_CPUS" "$NGINX_PID" >/dev/null
  log "written to $R"
  exit 0
fi

# ---- profile mode ------------------------------------------------------------------------------
if [ "$MODE" = profile ]; then
  set +o pipefail   # `... | head` below
  P=$OUT/profile.txt
  : >"$P"
  say() { echo "$*" | tee -a "$P"; }
  N=$PROFILE_CALLS
  say "# libcapmonster profile: single thread, one client, $N calls of cm_get_task_result on $URL (nginx)"
  say "# (task id changes every 100 calls: the library's 120-per-task budget; nginx answers the same body)"
  say ""
  # callgrind_annotate's function rows, without the benchmark's own frames, paths shortened.
  cg_rows() {
    grep -E '^ *[0-9,]+ +\(' | grep -vE 'PROGRAM TOTALS|clone3?\.S:|:start_thread|:thread_main|:measured_loop|bench\.c:one_call' \
      | sed -E -e 's/\?\?\?://' -e 's# \[[^]]*/(lib[a-z]+)[^]/]*\]$# [\1]#' -e 's#^( *[0-9,]+ +\([ 0-9.%]+\) +)[^ ]*/([^/ ]+:)#\1\2#' | cut -c1-180
  }
  declare -A IR
  for who in lib curl; do
    fresh_budget
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measured_loop \
      --callgrind-out-file="$OUT/callgrind.$who.out" "$OUT/bench_$who" run "$URL" 1 "$N" 20 \
      >"$TMP/cg.$who.stdout" 2>"$TMP/cg.$who.stderr" || { cat "$TMP/cg.$who.stderr" >&2; exit 1; }
    IR[$who]=$(awk '/^(summary|totals):/ { print $2; exit }' "$OUT/callgrind.$who.out")
  done
  say "## Instructions per call (user space, callgrind, measured loop only)"
  say "libcapmonster: $(( IR[lib] / N )) Ir/call    libcurl+cJSON: $(( IR[curl] / N )) Ir/call    ratio $(awk -v a="${IR[lib]}" -v b="${IR[curl]}" 'BEGIN { printf "%.2f", a / b }')"
  say ""
  say "## libcapmonster: top functions, inclusive (callgrind_annotate --inclusive=yes)"
  callgrind_annotate --inclusive=yes "$OUT/callgrind.lib.out" 2>/dev/null | cg_rows | head -n 40 | tee -a "$P"
  say ""
  say "## libcapmonster: top functions, self"
  callgrind_annotate "$OUT/callgrind.lib.out" 2>/dev/null | cg_rows | head -n 30 | tee -a "$P"
  say ""
  say "## libcurl + cJSON: top functions, self (for comparison)"
  callgrind_annotate "$OUT/callgrind.curl.out" 2>/dev/null | cg_rows | head -n 15 | tee -a "$P"
  say ""

  # Heap allocations per call: memcheck's totals at two call counts, differenced (start-up cancels).
  A=200; B=1200
  say "## Heap allocations per call (valgrind memcheck totals at $B and $A calls, differenced)"
  for who in lib curl; do
    for n in $A $B; do
      fresh_budget
      valgrind --tool=memcheck --leak-check=no "$OUT/bench_$who" run "$URL" 1 "$n" 10 >/dev/null 2>"$TMP/mc.$who.$n" \
        || { cat "$TMP/mc.$who.$n" >&2; exit 1; }
    done
    read -r a1 b1 < <(sed -n 's/.*total heap usage: \([0-9,]*\) allocs, [0-9,]* frees, \([0-9,]*\) bytes.*/\1 \2/p' "$TMP/mc.$who.$A" | tr -d ,)
    read -r a2 b2 < <(sed -n 's/.*total heap usage: \([0-9,]*\) allocs, [0-9,]* frees, \([0-9,]*\) bytes.*/\1 \2/p' "$TMP/mc.$who.$B" | tr -d ,)
    say "$(printf '%-14s %6.1f allocations/call  %8.0f bytes allocated/call' "$who:" \
      "$(awk -v x=$a1 -v y=$a2 -v n=$((B - A)) 'BEGIN { print (y - x) / n }')" \
      "$(awk -v x=$b1 -v y=$b2 -v n=$((B - A)) 'BEGIN { print (y - x) / n }')")"
  done
  say ""

  # System calls per call: strace -f -c at two call counts, differenced.
  say "## System calls per call (strace -f -c at $B and $A calls, differenced)"
  WHO=(lib curl); [ "$HAVE_GO" = 1 ] && WHO+=(go)
  for who in "${WHO[@]}"; do
    bin=$OUT/bench_$who; [ "$who" = go ] && bin=$OUT/gobench
    for n in $A $B; do
      fresh_budget
      strace -f -c -o "$TMP/st.$who.$n" "$bin" run "$URL" 1 "$n" 10 >/dev/null
      awk '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { print $NF, $4 }' "$TMP/st.$who.$n" >"$TMP/st.$who.$n.counts"
    done
  done
  awk -v A=$A -v B=$B -v who="${WHO[*]}" '
    { np = split(FILENAME, path, "/"); split(path[np], p, "."); w = p[2]; n = p[3]; c[w, $1, n] += $2; names[$1] = 1 }
    END {
      nw = split(who, ws, " ")
      printf "%-16s", "syscall"; for (i = 1; i <= nw; i++) printf "%10s", ws[i]; printf "\n"
      for (s in names) {
        line = sprintf("%-16s", s); any = 0
        for (i = 1; i <= nw; i++) { v = (c[ws[i], s, B] - c[ws[i], s, A]) / (B - A); tot[i] += v
          if (v >= 0.005) any = 1; line = line sprintf("%10.2f", v) }
        if (any) print line
      }
      printf "%-16s", "TOTAL"; for (i = 1; i <= nw; i++) printf "%10.2f", tot[i]; printf "\n"
    }' $(for w in "${WHO[@]}"; do echo "$TMP/st.$w.$A.counts" "$TMP/st.$w.$B.counts"; done) \
    | { read -r header; echo "$header"; sort -k2 -n -r; } | tee "$TMP/syscalls" | tee -a "$P"
  say ""
  say "## The last call's system calls (strace; the library's ends with the probe made when the connection goes back to the pool)"
  for who in lib curl; do
    k=$(awk -v w="$who" 'NR == 1 { for (i = 2; i <= NF; i++) if ($i == w) c = i } $1 == "TOTAL" { printf "%d", $c + 0.5 }' "$TMP/syscalls")
    fresh_budget
    strace -f -e trace='!mmap,mprotect,munmap,brk,madvise,futex,close,exit,exit_group,rt_sigprocmask' -o "$TMP/one.$who" \
      "$OUT/bench_$who" run "$URL" 1 3 10 >/dev/null
    say "### $who"
    grep -E ' (sendto|recvfrom|sendmsg|recvmsg|setsockopt|poll|ppoll|ioctl\([0-9]+, FIONBIO)\(?' "$TMP/one.$who" \
      | grep -vE 'resumed>' | tail -n "$k" | cut -d' ' -f2- | cut -c1-150 | tee -a "$P"
  done
  say ""
  say "## Without tracing: $CALLS calls, client and nginx both pinned to CPU 0 (medians of 3 runs)"
  taskset -p -c 0 "$NGINX_PID" >/dev/null
  RAW=$TMP/raw; : >"$RAW"
  for rep in 1 2 3; do
    for who in "${WHO[@]}"; do run_one p "$who" 1 0; done
    BENCH_CURL_SPLIT=1 run_one p curl 1 0 curl-split
  done
  WHO+=(curl-split)
  med() { awk -v c="$1" -v w="$2" -v k="$3" '$1 == c && $2 == w { print $k }' "$RAW" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  say "$(printf '%-10s %10s %14s %12s %14s %12s %10s' who 'µs/call' 'client CPU µs' 'of it sys' 'nginx CPU µs' 'TCP seg' 'ctx sw')"
  for who in "${WHO[@]}"; do
    say "$(printf '%-10s %10s %14s %12s %14s %12s %10s' "$who" "$(med p "$who" 3)" "$(med p "$who" 8)" "$(med p "$who" 9)" "$(med p "$who" 11)" "$(med p "$who" 12)" "$(med p "$who" 10)")"
  done
  say "(curl-split: libcurl sending the head and the body in two writes, as ureq does: BENCH_CURL_SPLIT=1)"
  say ""
  say "(files: $OUT/callgrind.{lib,curl}.out for callgrind_annotate / kcachegrind; this text: $P)"
  exit 0
fi

# ---- the comparison ----------------------------------------------------------------------------

# name|threads|client CPUs|server CPUs|kind
CASES=("1 thread, client and server on CPU 0|1|0|0|time")
[ "$NCPU" -ge 2 ] && CASES+=("1 thread, client CPU 0, server CPU 1|1|0|1|time")
CASES+=("2 threads, one client / handle each|2|$ALL_CPUS|$ALL_CPUS|rate"
        "8 threads, one client / handle each|8|$ALL_CPUS|$ALL_CPUS|rate"
        "64 threads, one client / handle each|64|$ALL_CPUS|$ALL_CPUS|rate")
for i in "${!CASES[@]}"; do
  IFS='|' read -r name threads ccpu scpu kind <<<"${CASES[$i]}"
  taskset -p -c "$scpu" "$NGINX_PID" >/dev/null
  log "case $((i + 1))/${#CASES[@]}: $name ($REPS x $CALLS calls each)"
  for rep in $(seq 1 "$REPS"); do          # contenders interleaved: drift hits all alike
    for who in "${CONTENDERS[@]}"; do run_one "c$i" "$who" "$threads" "$ccpu"; done
  done
done
taskset -p -c "$ALL_CPUS" "$NGINX_PID" >/dev/null

# median of column $3 (1-based after "case contender") for case $1, contender $2
med() { awk -v c="$1" -v w="$2" -v k="$3" '$1 == c && $2 == w { print $k }' "$RAW" | sort -g \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
kilo() { awk -v x="$1" 'BEGIN { printf "%.1fk/s", x / 1000 }'; }

log "wait measurement (emulator)"
start_emulator
WAITS=()
for sched in "library default|1000|2000" "ImageToTextTask schedule|350|200" "first 0, every 200 ms|0|200"; do
  IFS='|' read -r sname first interval <<<"$sched"
  line=$("$OUT/bench_lib" wait "$EMULATOR_URL" "$READY_AFTER_MS" "$first" "$interval") || { log "wait failed: $line"; exit 1; }
  # The first poll at or after readiness if every answer were instantaneous.
  ideal=$(awk -v r=$READY_AFTER_MS -v f="$first" -v i="$interval" 'BEGIN { k = (r > f) ? int((r - f + i - 1) / i) : 0; print f + k * i - r }')
  WAITS+=("| $sname ($first ms, then every $interval ms) | $(echo "$line" | field late_ms) ms | $ideal ms | $(echo "$line" | field requests) |")
done

log "size and memory"
strip -o "$TMP/libcapmonster.stripped.so" "$LIBDIR/libcapmonster.so"
SIZE_STRIPPED=$(stat -c %s "$TMP/libcapmonster.stripped.so")
SIZE_FULL=$(stat -c %s "$LIBDIR/libcapmonster.so")
CURL_SO=$(readlink -f "$(ldconfig -p | awk '/libcurl.so.4 / { print $NF; exit }')" 2>/dev/null || true)
CURL_SIZE=$( [ -n "$CURL_SO" ] && stat -c %s "$CURL_SO" || echo "?")
rss() { "$OUT/rss_$1" "$URL" | field vmrss_kib; }
RSS_LIB=$(rss lib); RSS_CURL=$(rss curl); RSS_NONE=$(rss none)

# ---- the report --------------------------------------------------------------------------------
{
  echo "# libcapmonster benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
  echo "libcapmonster $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'), $(curl-config --version 2>/dev/null || echo libcurl), $( [ "$HAVE_GO" = 1 ] && go version | awk '{ print $3 }'), nginx $("$NGINX" -v 2>&1 | sed 's|.*/||')."
  echo "Server: nginx on 127.0.0.1 returning a fixed \`{\"errorId\":0,\"status\":\"processing\"}\` for every getTaskResult POST."
  echo "Each cell: the median of $REPS runs of $CALLS calls (after a warm-up), contenders interleaved."
  echo "The task id changes every 100 calls for every contender: libcapmonster refuses the 121st"
  echo "getTaskResult per task in a process; nginx answers the same body whatever the id."
  echo
  H="| case | libcapmonster | libcurl (easy + cJSON) |"; S="|---|---|---|"
  [ "$HAVE_GO" = 1 ] && { H="$H Go net/http |"; S="$S---|"; }
  echo "$H lib / curl | target |"; echo "$S---|---|"
  for i in "${!CASES[@]}"; do
    IFS='|' read -r name threads ccpu scpu kind <<<"${CASES[$i]}"
    row="| $name |"
    for who in "${CONTENDERS[@]}"; do
      us=$(med "c$i" "$who" 3); cps=$(med "c$i" "$who" 4); conns=$(med "c$i" "$who" 7)
      if [ "$kind" = time ]; then row="$row $us µs/call ($(kilo "$cps")) |"
      else row="$row $(kilo "$cps"), $conns conns |"; fi
    done
    if [ "$kind" = time ] && [ "$scpu" != "$ccpu" ]; then
      ratio=$(awk -v a="$(med "c$i" lib 3)" -v b="$(med "c$i" curl 3)" 'BEGIN { printf "%.2f x time", a / b }')
      target="(cross-CPU wake-ups dominate: see bench/README.md)"
    elif [ "$kind" = time ]; then
      ratio=$(awk -v a="$(med "c$i" lib 3)" -v b="$(med "c$i" curl 3)" 'BEGIN { printf "%.2f x time", a / b }')
      target="≤ 1.10 x time: $(awk -v a="$(med "c$i" lib 3)" -v b="$(med "c$i" curl 3)" 'BEGIN { print (a / b <= 1.10) ? "met" : "NOT met" }')"
    else
      ratio=$(awk -v a="$(med "c$i" lib 4)" -v b="$(med "c$i" curl 4)" 'BEGIN { printf "%.2f x calls/s", a / b }')
      target=""
      [ "$threads" = 8 ] && target="≥ 0.90 x calls/s: $(awk -v a="$(med "c$i" lib 4)" -v b="$(med "c$i" curl 4)" 'BEGIN { print (a / b >= 0.90) ? "met" : "NOT met" }')"
    fi
    echo "$row $ratio | $target |"
  done
  echo
  echo "Latency per call, p50 / p99 in µs (median over runs):"
  echo
  echo "$H"; echo "$S"
  for i in "${!CASES[@]}"; do
    IFS='|' read -r name _ <<<"${CASES[$i]}"
    row="| $name |"
    for who in "${CONTENDERS[@]}"; do row="$row $(med "c$i" "$who" 5) / $(med "c$i" "$who" 6) |"; done
    echo "$row"
  done
  echo
  echo "Per call: CPU µs of the client process, user+sys (of which sys), and of nginx; the client's voluntary"
  echo "context switches (cs); TCP segments sent on loopback, both directions (seg; nginx's and the segment"
  echo "counts include the warm-up calls):"
  echo
  echo "$H"; echo "$S"
  for i in "${!CASES[@]}"; do
    IFS='|' read -r name _ <<<"${CASES[$i]}"
    row="| $name |"
    for who in "${CONTENDERS[@]}"; do
      row="$row $(med "c$i" "$who" 8) ($(med "c$i" "$who" 9)), nginx $(med "c$i" "$who" 11); $(med "c$i" "$who" 10) cs; $(med "c$i" "$who" 12) seg |"
    done
    echo "$row"
  done
  echo
  echo "Pinning (taskset): single-thread rows pin the client to CPU 0 and nginx to CPU 0 or 1;"
  echo "multi-thread rows let both use CPUs $ALL_CPUS. 'conns' = connections nginx accepted during the"
  echo "run (warm-up included). Threads: libcapmonster shares one cm_client; libcurl has one easy"
  echo "handle per thread; Go shares one http.Client. nginx has a single worker, on the same CPUs."
  echo
  echo "cm_wait_result on an emulator task that turns ready $READY_AFTER_MS ms after its creation:"
  echo
  echo "| schedule | returned after ready | schedule alone | requests |"
  echo "|---|---|---|---|"
  printf '%s\n' "${WAITS[@]}"
  echo
  echo "('schedule alone': how late the first poll at or after readiness would be if answers took no time.)"
  echo
  echo "Size: libcapmonster.so stripped $SIZE_STRIPPED bytes ($(( SIZE_STRIPPED / 1024 )) KiB; $(( SIZE_FULL / 1024 )) KiB unstripped);"
  echo "for scale, Debian's $(basename "${CURL_SO:-libcurl}") is $( [ "$CURL_SIZE" != "?" ] && echo "$(( CURL_SIZE / 1024 )) KiB" || echo '?') (plus the TLS, HTTP/2, ... libraries it loads)."
  echo
  echo "Resident memory (VmRSS) of a process after one getTaskResult call, client still alive:"
  echo "libcapmonster $RSS_LIB KiB, libcurl + cJSON $RSS_CURL KiB, the same C program making no call $RSS_NONE KiB."
} >"$TMP/results.md"
cp "$TMP/results.md" "$ROOT/bench/results.md"
echo
cat "$ROOT/bench/results.md"
