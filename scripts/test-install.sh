#!/usr/bin/env bash
# Installs into a temporary prefix and consumes the installation the ways users do: the C
# example built with pkg-config (shared and static), with CMake's find_package (shared and
# static); each build solves a task against the emulator. The Go binding's pkg-config build is
# checked too when Go is present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/emulator.sh

prefix=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-prefix.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-consumers.XXXXXX")
trap 'stop_emulator; rm -rf "$prefix" "$work"' EXIT
# The consumers count their requests in a budget file of this run, never the user's.
export CAPMONSTER_BUDGET_FILE=$work/budget
unset CAPMONSTER_BUDGET

cargo build --release --workspace --quiet
scripts/install.sh "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
start_emulator --solve-after-ms 200

solve() { # program, how it was built
    local out
    out=$(CAPMONSTER_BASE_URL="$EMULATOR_URL" "$1")
    grep -q '^text: answer$' <<<"$out" || { echo "$2: unexpected output:" >&2; echo "$out" >&2; exit 1; }
    echo "ok: $2"
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}; minor=${version#*.}; minor=${minor%%.*}
if [ "$major" = 0 ]; then abi="0.$minor"; else abi="$major"; fi   # before 1.0 the soname carries the minor
[ "$(readlink "$prefix/lib/libcapmonster.so")" = "libcapmonster.so.$abi" ]
readelf -d "$prefix/lib/libcapmonster.so.$abi" | grep "SONAME.*\[libcapmonster.so.$abi\]" >/dev/null
[ "$(pkg-config --modversion capmonster)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ]
for licence in LICENSE-MIT LICENSE-APACHE; do cmp "$licence" "$prefix/share/doc/capmonster/$licence"; done

# pkg-config, shared: the program needs libcapmonster.so.$abi, found through the rpath.
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror -pedantic examples/solve_image.c $(pkg-config --cflags --libs capmonster) \
    -Wl,-rpath,"$prefix/lib" -o "$work/pkgconfig_shared"
readelf -d "$work/pkgconfig_shared" | grep "NEEDED.*\[libcapmonster.so.$abi\]" >/dev/null
solve "$work/pkgconfig_shared" "pkg-config, shared"

# pkg-config, static: the archive itself plus Libs.private (minus -lcapmonster, which would
# pick the shared library); nothing of libcapmonster is loaded at run time.
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror -pedantic examples/solve_image.c $(pkg-config --cflags capmonster) \
    "$prefix/lib/libcapmonster.a" $(pkg-config --libs-only-other --libs-only-l --static capmonster | sed 's/-lcapmonster//') \
    -o "$work/pkgconfig_static"
! readelf -d "$work/pkgconfig_static" | grep libcapmonster >/dev/null
solve "$work/pkgconfig_static" "pkg-config, static"

# CMake find_package, shared and static.
cmake -S tests/install -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
solve "$work/cmake/solve_image_shared" "CMake find_package, capmonster::capmonster"
! readelf -d "$work/cmake/solve_image_static" | grep libcapmonster >/dev/null
solve "$work/cmake/solve_image_static" "CMake find_package, capmonster::capmonster_static"

# Go through pkg-config (the binding's capmonster_pkgconfig build tag).
if command -v go >/dev/null && [ -d bindings/go ]; then
    (cd bindings/go && GOTOOLCHAIN=local CGO_LDFLAGS="-Wl,-rpath,$prefix/lib" \
        go build -tags capmonster_pkgconfig -o "$work/go_solve" ./examples/solve)
    ! readelf -d "$work/go_solve" | grep "RUNPATH.*target/release" >/dev/null
    CAPMONSTER_BASE_URL="$EMULATOR_URL" "$work/go_solve" | grep answer >/dev/null
    echo "ok: Go binding through pkg-config"
fi
