#!/usr/bin/env bash
# Tests the C# binding: builds the native library and the emulator (cargo), installs Mono when
# missing (Debian, as root), compiles the binding, its tests and its two examples with mcs,
# starts the emulator, runs the examples (checking what they print) and then the tests. The last line is the tests'
# "N passed, M failed"; the exit code is 0 only when all passed.
# Usage: bindings/csharp/run-tests.sh [test-name-substring...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/target/csharp"
started=$SECONDS

# --- Mono: the compiler, the runtime and the three assemblies the sources use -------------
mono_lib=/usr/lib/mono/4.5
packages=()
command -v mcs >/dev/null 2>&1 || packages+=(mono-mcs)
command -v mono >/dev/null 2>&1 || packages+=(mono-runtime)
[ -f "$mono_lib/mscorlib.dll" ] || packages+=(libmono-corlib4.5-cil)
[ -f "$mono_lib/System.dll" ] || packages+=(libmono-system4.0-cil)
[ -f "$mono_lib/System.Core.dll" ] || packages+=(libmono-system-core4.0-cil)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "run-tests.sh: Mono is missing; install (as root, Debian): ${packages[*]}" >&2
        exit 1
    fi
    echo "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# --- the native library and the emulator -------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v cargo >/dev/null 2>&1; then
    (cd "$root" && cargo build --release --workspace --quiet)
elif [ ! -f "$root/target/release/libcapmonster.so" ] || [ ! -x "$root/target/release/capmonster-emulator" ]; then
    echo "run-tests.sh: cargo is missing and target/release has no library or emulator" >&2
    exit 1
fi

# --- the binding, its tests, its example -------------------------------------------------
mkdir -p "$out"
mcs_flags=(-debug -warn:4 -warnaserror+ -nologo)
# The library is kept to C# 6 so that every compiler (mcs, old csc, Roslyn) takes it.
mcs "${mcs_flags[@]}" -langversion:6 -target:library -doc:"$out/CapMonster.xml" -out:"$out/CapMonster.dll" "$here"/CapMonster/*.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Tests.exe" "$here"/Tests/*.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Example.exe" "$here"/Example/Program.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Batch.exe" "$here"/Batch/Program.cs

# --- the emulator ------------------------------------------------------------------------
port_file=$(mktemp -u "${TMPDIR:-/tmp}/capmonster-csharp-port.XXXXXX")
# The examples count their requests in a budget file of this run, never the user's (the
# tests take one of their own).
budget_dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-csharp-budget.XXXXXX")
export CAPMONSTER_BUDGET_FILE=$budget_dir/budget
unset CAPMONSTER_BUDGET
"$root/target/release/capmonster-emulator" --port 0 --port-file "$port_file" >/dev/null &
emulator_pid=$!
cleanup() {
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    rm -f "$port_file"
    rm -rf "$budget_dir"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
    [ -s "$port_file" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || { echo "run-tests.sh: the emulator did not start" >&2; exit 1; }
    sleep 0.05
done
[ -s "$port_file" ] || { echo "run-tests.sh: the emulator did not report its port" >&2; exit 1; }
emulator_url="http://127.0.0.1:$(cat "$port_file")"
echo "emulator at $emulator_url"

# DllImport("capmonster") finds libcapmonster.so through the loader path; the code-table test
# reads the header.
export CAPMONSTER_HEADER="$root/include/capmonster.h"
export LD_LIBRARY_PATH="$root/target/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$out"

# --- the example, end to end -------------------------------------------------------------
example_output=$(env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY \
    CAPMONSTER_BASE_URL="$emulator_url" CAPMONSTER_CLIENT_KEY= mono --debug CapMonster.Example.exe)
echo "$example_output" | sed 's/^/example: /'
grep -qx 'text: answer' <<<"$example_output" || { echo "run-tests.sh: the example did not solve the task" >&2; exit 1; }

# --- the batch example: 100 captchas at once, two of them made to fail ----------------------
# After a reset the emulator numbers tasks from 1000: whichever two of the batch get ids 1003
# and 1042 are answered ERROR_CAPTCHA_UNSOLVABLE, so the example must solve 98 and count 2.
emulator_post() { # PATH ASCII-JSON: one HTTP/1.1 request over bash's /dev/tcp (no curl needed)
    local status
    exec 3<>"/dev/tcp/127.0.0.1/${emulator_url##*:}"
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "$1" "${#2}" "$2" >&3
    read -r _ status _ <&3
    cat <&3 >/dev/null
    exec 3<&-
    [ "$status" = 200 ] || { echo "run-tests.sh: POST $1: HTTP $status" >&2; exit 1; }
}
emulator_post /_emulator/reset ''
for id in 1003 1042; do
    emulator_post /_emulator/script "{\"taskId\":$id,\"steps\":[\"processing\",{\"error\":\"ERROR_CAPTCHA_UNSOLVABLE\"}]}"
done
batch_status=0
batch_output=$(env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY \
    CAPMONSTER_BASE_URL="$emulator_url" CAPMONSTER_CLIENT_KEY= timeout 120 mono --debug CapMonster.Batch.exe 100 16) || batch_status=$?
echo "$batch_output" | sed 's/^/batch: /'
for line in 'solved 98 of 100 in [0-9.]* s' 'text answer: 98' 'failed CM_ERR_API ERROR_CAPTCHA_UNSOLVABLE: 2'; do
    grep -qx "$line" <<<"$batch_output" || { echo "run-tests.sh: the batch example did not print '$line'" >&2; exit 1; }
done
[ "$(wc -l <<<"$batch_output")" -eq 3 ] || { echo "run-tests.sh: the batch example printed other outcomes" >&2; exit 1; }
[ "$batch_status" -eq 1 ] || { echo "run-tests.sh: the batch example exited with $batch_status, not 1 (some failed)" >&2; exit 1; }

# --- the tests ---------------------------------------------------------------------------
# A dead http_proxy: clients that leave the proxy to the environment must fail with a network
# error, clients with UseProxy = false must not notice it.
status=0
env -u no_proxy -u NO_PROXY -u all_proxy -u ALL_PROXY \
    http_proxy=http://127.0.0.1:1 CAPMONSTER_TEST_DEAD_HTTP_PROXY=1 \
    timeout 900 mono --debug CapMonster.Tests.exe "$emulator_url" "$@" >"$out/test-output.txt" 2>&1 || status=$?
summary=$(tail -n 1 "$out/test-output.txt")
sed '$d' "$out/test-output.txt"
echo "run-tests.sh took $((SECONDS - started)) s"
echo "$summary"
exit $status
