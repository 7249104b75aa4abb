#!/usr/bin/env bash
# Hardening tests on the C side: the C tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer on); the ABI abuse test plain (cm_code_name for every int32) and under
# valgrind; a short soak (SOAK_CALLS, default 20,000 here). About 100 s on 2 cores once built.
# SKIP_VALGRIND=1 skips the valgrind run. The Rust side (tests/fault_matrix.rs and the short
# classifier fuzz) runs with `cargo test`; to see the matrix as a table:
#   cargo test --release --test fault_matrix -- --nocapture --test-threads=1
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps hardening
SECONDS=0

build=target/c-tests
mkdir -p "$build"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g)
SANITIZE=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)

echo "== build"
build_release

echo "== C tests under AddressSanitizer + UBSan"
gcc "${CFLAGS[@]}" -O1 "${SANITIZE[@]}" tests/c/test_capmonster.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_capmonster_asan"
gcc "${CFLAGS[@]}" -O1 "${SANITIZE[@]}" tests/c/test_abuse.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_abuse_asan"
gcc "${CFLAGS[@]}" -O1 "${SANITIZE[@]}" tests/c/test_waiter.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_waiter_asan"
# No suppressions: LeakSanitizer reports nothing from the library (its thread-locals and
# std's are freed or still reachable at exit, which LeakSanitizer does not report).
export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_c_tests "" "$build/test_capmonster_asan" "$build/test_waiter_asan" 20000
start_emulator
"$build/test_abuse_asan" "$EMULATOR_URL"
stop_emulator
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== ABI abuse, plain (every int32 into cm_code_name)"
gcc "${CFLAGS[@]}" -O2 tests/c/test_abuse.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_abuse"
start_emulator
"$build/test_abuse" --full-code-sweep "$EMULATOR_URL"
stop_emulator

if [ "${SKIP_VALGRIND:-0}" = 1 ]; then
    echo "== ABI abuse under valgrind: skipped (SKIP_VALGRIND=1)"
else
    echo "== ABI abuse under valgrind"
    start_emulator
    valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$build/test_abuse" "$EMULATOR_URL"
    stop_emulator
    echo "valgrind memcheck: no errors, no definite leaks"
fi

echo "== soak"
SOAK_CALLS="${SOAK_CALLS:-20000}" scripts/soak.sh

echo "== hardening tests passed in ${SECONDS} s"
