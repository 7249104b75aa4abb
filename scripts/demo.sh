#!/usr/bin/env bash
# The main job: builds everything, starts the emulator, and solves one image captcha with the
# C example (examples/solve_image.c) through libcapmonster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps demo

build_release
mkdir -p target/examples
gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 examples/solve_image.c "${LINK_LIBCAPMONSTER[@]}" \
    -o target/examples/solve_image

start_emulator --solve-after-ms 1000
echo "emulator at $EMULATOR_URL"
CAPMONSTER_BASE_URL="$EMULATOR_URL" target/examples/solve_image
