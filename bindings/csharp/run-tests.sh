#!/usr/bin/env bash
# Tests the C# binding: builds the native library and the emulator (cargo), compiles the
# binding, its tests and its two examples with mcs (Mono: scripts/install-deps.sh csharp),
# starts the emulator, runs the examples (checking what they print) and then the tests. The last line is the tests'
# "N passed, M failed"; the exit code is 0 only when all passed.
# Usage: bindings/csharp/run-tests.sh [test-name-substring...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$here/../../scripts/lib.sh"
root=$REPO_ROOT
out="$root/target/csharp"
started=$SECONDS
need_deps csharp

# --- the native library and the emulator -------------------------------------------------
build_release

# --- the binding, its tests, its example -------------------------------------------------
mkdir -p "$out"
mcs_flags=(-debug -warn:4 -warnaserror+ -nologo)
# The library is kept to C# 6 so that every compiler (mcs, old csc, Roslyn) takes it.
mcs "${mcs_flags[@]}" -langversion:6 -target:library -doc:"$out/CapMonster.xml" -out:"$out/CapMonster.dll" "$here"/CapMonster/*.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Tests.exe" "$here"/Tests/*.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Example.exe" "$here"/Example/Program.cs
mcs "${mcs_flags[@]}" -target:exe -r:"$out/CapMonster.dll" -out:"$out/CapMonster.Batch.exe" "$here"/Batch/Program.cs

# --- the emulator ------------------------------------------------------------------------
# The examples count their requests in a budget file of this run, never the user's (the
# tests take one of their own).
private_budget
start_emulator
emulator_url=$EMULATOR_URL
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
