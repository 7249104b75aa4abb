#!/usr/bin/env bash
# The Python binding against the official client (capmonstercloudclient, pinned), side by side
# on one emulator, and the binding alone at scale. Prints a Markdown table (bench/python/
# results.md has a run's).
#
#   bench/python/run.sh                 1,000 solves each (3 runs of each client in turn),
#                                       then 10,000 and 100,000 waits
#   PY_BENCH_ROUNDS=5 ...                runs of each client side by side
#   PY_BENCH_MAX_CONNECTIONS=64 ...      the library's cap of connections (default: its own)
#   PY_BENCH_SOLVES="1000 10000" PY_BENCH_WAITS="10000" bench/python/run.sh
#   PY_BENCH_OFFICIAL="1000 10000" ...   the official client at 10,000 too (minutes, 10,000 threads)
#   CAPMONSTER_ENGINE=events bench/python/run.sh   the library's engine on its event loop
#
# Solves: N at once on one event loop, each createTask then polling on the official
# ImageToText schedule (both clients use the same one: 350 ms, then every 200 ms, 10 s in all);
# the emulator readies a task 2 s after its creation and serves up to 16,384 connections at
# once (the official client opens one per request), so the server is not what fails.
# Waits (the binding alone): N concurrent wait_result on tasks the emulator made at once,
# ready after 2 s, first poll at 2.5 s, then every 20 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
need_deps bench-python
build_release
venv=$REPO_ROOT/target/python/bench
SOLVES=${PY_BENCH_SOLVES:-1000}
# The counts at which the official client runs too: at 10,000 it starts 10,000 threads, takes
# minutes of CPU and every solve times out, so by default only where it can keep up.
OFFICIAL=${PY_BENCH_OFFICIAL:-1000}
WAITS=${PY_BENCH_WAITS:-10000 100000}
# Runs of each client side by side where both run (PY_BENCH_ROUNDS).
ROUNDS=${PY_BENCH_ROUNDS:-3}

# This package as a wheel, installed into the benchmark's environment.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-bench-python.XXXXXX")
at_exit rm -rf "$tmp"
cp -r bindings/python "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src/src/"*.egg-info
(cd "$tmp/src" && CAPMONSTER_WHEEL_LIBRARY=$REPO_ROOT/target/release/libcapmonster.so \
    "$venv/bin/pip" wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps -w "$tmp/dist" .)
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps --force-reinstall "$tmp"/dist/*.whl
private_budget
start_emulator --solve-after-ms 2000 --max-connections 16384

reset() { curl -sf -X POST "$EMULATOR_URL/_emulator/reset" >/dev/null; }
rows=()
threads=()
run_case() { # label n command...
    local label=$1 n=$2 row
    shift 2
    reset
    echo "== $label, $n" >&2
    timeout 900 "$@" >"$tmp/out" || { echo "$label $n: exit status $?" >&2; : >"$tmp/out"; }
    # The counters name every task: a file, not an argument.
    curl -sf "$EMULATOR_URL/_emulator/stats" >"$tmp/stats"
    row=$(/usr/bin/python3 - "$label" "$n" "$tmp/out" "$tmp/stats" <<'PY'
import json, sys
label, n = sys.argv[1], int(sys.argv[2])
text = open(sys.argv[3]).read().strip()
stats = json.load(open(sys.argv[4]))
requests = stats["methods"].get("createTask", 0) + stats["methods"].get("getTaskResult", 0)
if not text:
    print(f"| {label} | {n:,} | failed | | | | | | {stats['connections']:,} | {requests / n:.2f} | |")
    sys.exit()
out = json.loads(text)
failures = ", ".join(f"{k}: {v:,}" for k, v in out["failures"].items()) or "none"
late = out["lateness_ms"]
print(f"| {label} | {n:,} | {out['right']:,} ({failures}) | {out['wall_s']:.2f} s | {out['cpu_s']:.2f} s"
      f" ({out['cpu_s'] / n * 1000:.2f} ms) | {out['cpu_s'] / max(requests, 1) * 1e6:.0f} µs"
      f" | {out['peak_rss_mib']:.0f} MiB | {out['threads_peak']:,}"
      f" | {stats['connections']:,} | {requests / n:.2f} | {late[0]:.0f} / {late[1]:.0f} / {late[2]:.0f} |")
PY
)
    echo "$row" >&2
    rows+=("$row")
    # Where the CPU went, by thread (the live ones at the end; see bench.py).
    threads+=("- $label, $n: $(/usr/bin/python3 -c 'import json, sys; print(json.dumps(json.loads(sys.stdin.read() or "{}").get("cpu_by_thread_s", {})))' <"$tmp/out")")
}

cpu_of() { # the last case's CPU seconds
    /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.stdin.read() or "{}").get("cpu_s", ""))' <"$tmp/out"
}
ratios=()
for n in $SOLVES; do
    if [[ " $OFFICIAL " != *" $n "* ]]; then
        run_case "libcapmonster solve" "$n" "$venv/bin/python" bench/python/bench.py solve libcapmonster "$n" "$EMULATOR_URL" 2000
        continue
    fi
    # Side by side, ROUNDS times in turn: the CPU of one run moves by up to 1.5x with the
    # machine's other load, so the comparison is of the medians.
    ours=() theirs=()
    for _ in $(seq 1 "$ROUNDS"); do
        run_case "libcapmonster solve" "$n" "$venv/bin/python" bench/python/bench.py solve libcapmonster "$n" "$EMULATOR_URL" 2000
        ours+=("$(cpu_of)")
        run_case "capmonstercloudclient 4.3.1" "$n" "$venv/bin/python" bench/python/bench.py solve official "$n" "$EMULATOR_URL" 2000
        theirs+=("$(cpu_of)")
    done
    ratios+=("$(/usr/bin/python3 - "$n" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
ours = [float(x) for x in sys.argv[2].split() if x]
theirs = [float(x) for x in sys.argv[3].split() if x]
if ours and theirs:
    a, b = statistics.median(ours) / n * 1000, statistics.median(theirs) / n * 1000
    print(f"- {n:,} solves, median CPU per solve of {len(ours)} runs each: libcapmonster {a:.2f} ms"
          f" ({min(ours) / n * 1000:.2f}-{max(ours) / n * 1000:.2f}), capmonstercloudclient {b:.2f} ms"
          f" ({min(theirs) / n * 1000:.2f}-{max(theirs) / n * 1000:.2f}): {b / a:.1f}x less CPU")
PY
)")
done
for n in $WAITS; do
    run_case "libcapmonster wait_result" "$n" "$venv/bin/python" bench/python/bench.py wait "$n" "$EMULATOR_URL" 2000 2500 20000
done
reset
echo "== cancels" >&2
cancels=$(timeout 300 "$venv/bin/python" bench/python/bench.py cancel 1000 "$EMULATOR_URL")

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs, $("$venv/bin/python" --version), libcapmonster $(git rev-parse --short HEAD)"
echo
echo "| client | n | right (failures) | wall | CPU (per solve) | CPU per request | peak RSS | OS threads, peak | connections | requests per solve | lateness p50 / p99 / max ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${ratios[@]}"
echo
echo "CPU seconds by thread (loop: the event loop's; capmonster-wait: the library's waits (with CAPMONSTER_ENGINE=events, its timer thread); capmonster-even(ts): the library's event loop; capmonster-crea(te): its solves' createTask off that loop; python: Python's other threads, the sampler's 20 ms reads among them; threads that ended, such as the official client's timers, not counted):"
echo
printf '%s\n' "${threads[@]}"
echo
echo "Cancels of 1,000 waits polling every 50 ms, one at a time (task.cancel() to ...): $cancels"
