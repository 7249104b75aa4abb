# Sourced by the scale benchmarks (scale.sh, go/scale.sh, csharp/run.sh). Needs ROOT (the
# repository) and log(). start_bench_emulator NAME DELAY_MS: makes TMP (removed at exit with
# the emulator stopped), starts the release emulator answering every API request after
# DELAY_MS with ready answers stamped, and sets EMU_PID and URL.
start_bench_emulator() {
  TMP=$(mktemp -d "/tmp/capmonster-$1.XXXXXX")
  EMU_PID=""
  trap bench_emulator_cleanup EXIT
  trap 'exit 130' INT TERM
  "$ROOT/target/release/capmonster-emulator" --port 0 --port-file "$TMP/port" --answer-delay-ms "$2" --stamp-ready \
    >"$TMP/emulator.log" 2>&1 &
  EMU_PID=$!
  for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
  [ -s "$TMP/port" ] || { log "the emulator did not start"; cat "$TMP/emulator.log" >&2; exit 1; }
  URL="http://127.0.0.1:$(cat "$TMP/port")"
}

bench_emulator_cleanup() {
  local rc=$?
  set +e
  [ -n "$EMU_PID" ] && { kill "$EMU_PID"; wait "$EMU_PID"; } 2>/dev/null
  rm -rf "$TMP"
  exit "$rc"
}
