#!/usr/bin/env bash
# C tests: the header compiles as strict C99 and as C++, the C tests pass against the
# emulator, and again under valgrind memcheck with no errors and no definite leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/emulator.sh

CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g -Iinclude)
build=target/c-tests
mkdir -p "$build"
cargo build --release --workspace --quiet

g++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/header_compiles_as_cpp.cpp \
    -Ltarget/release -lcapmonster -Wl,-rpath,"$PWD/target/release" -o "$build/header_compiles_as_cpp"
"$build/header_compiles_as_cpp" >/dev/null
echo "header compiles and links as C++"

gcc "${CFLAGS[@]}" tests/c/test_capmonster.c -pthread \
    -Ltarget/release -lcapmonster -Wl,-rpath,"$PWD/target/release" -o "$build/test_capmonster"

# A fresh emulator per run: the scripted tasks count their requests.
start_emulator --script tests/c/emulator-script.json
"$build/test_capmonster" "$EMULATOR_URL"
stop_emulator

if [ "${SKIP_VALGRIND:-0}" = 1 ]; then
    echo "valgrind run skipped (SKIP_VALGRIND=1)"
    exit 0
fi
start_emulator --script tests/c/emulator-script.json
valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$build/test_capmonster" "$EMULATOR_URL"
echo "valgrind memcheck: no errors, no definite leaks"
