#!/usr/bin/env bash
# C tests: the header compiles as strict C99 and as C++, the C tests pass against the
# emulator, and again under valgrind memcheck with no errors and no definite leaks.
# test_waiter runs its big waiter test with 20,000 waits, 2,000 under valgrind
# (TEST_WAITER_WAITS overrides both).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps c
SECONDS=0

CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g)
build=target/c-tests
mkdir -p "$build"
build_release

g++ -std=c++11 -Wall -Wextra -Werror -pedantic tests/c/header_compiles_as_cpp.cpp "${LINK_LIBCAPMONSTER[@]}" \
    -o "$build/header_compiles_as_cpp"
"$build/header_compiles_as_cpp" >/dev/null
echo "header compiles and links as C++"

gcc "${CFLAGS[@]}" tests/c/test_capmonster.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_capmonster"
gcc "${CFLAGS[@]}" tests/c/test_waiter.c "${LINK_LIBCAPMONSTER[@]}" -o "$build/test_waiter"

run_c_tests "" "$build/test_capmonster" "$build/test_waiter" 20000

if [ "${SKIP_VALGRIND:-0}" = 1 ]; then
    echo "valgrind runs skipped (SKIP_VALGRIND=1)"
    exit 0
fi
VALGRIND=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite)
run_c_tests " under valgrind" "$build/test_capmonster" "$build/test_waiter" 2000 "${VALGRIND[@]}"
echo "valgrind memcheck: no errors, no definite leaks (C tests passed in ${SECONDS} s)"
