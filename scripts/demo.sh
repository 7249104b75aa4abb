#!/usr/bin/env bash
# The main job: builds everything, starts the emulator, and solves one image captcha with the
# C example (examples/solve_image.c) through libcapmonster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/emulator.sh

cargo build --release --workspace --quiet
mkdir -p target/examples
gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -Iinclude examples/solve_image.c \
    -Ltarget/release -lcapmonster -Wl,-rpath,"$PWD/target/release" -o target/examples/solve_image

start_emulator --solve-after-ms 1000
echo "emulator at $EMULATOR_URL"
CAPMONSTER_BASE_URL="$EMULATOR_URL" target/examples/solve_image
