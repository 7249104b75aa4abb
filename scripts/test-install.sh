#!/usr/bin/env bash
# Installs into a temporary prefix and consumes the installation the ways users do: the C
# example built with pkg-config (shared and static), with CMake's find_package (shared and
# static); each build solves a task against the emulator. The Go binding's pkg-config build is
# checked too when Go is present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps install

prefix=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-prefix.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-consumers.XXXXXX")
at_exit rm -rf "$prefix" "$work"
# The consumers count their requests in a budget file of this run, never the user's.
private_budget

build_release capmonster-emulator
scripts/install.sh "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
start_emulator --solve-after-ms 200

# `! command` never stops a set -e script: a check that must find nothing says so itself.
refuse() { # PATTERN FILE WHY: fails when readelf -d FILE has a line matching PATTERN
    if readelf -d "$2" | grep -- "$1" >&2; then echo "$2: $3" >&2; exit 1; fi
}

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
refuse libcapmonster "$work/pkgconfig_static" "linked statically, yet it needs libcapmonster"
solve "$work/pkgconfig_static" "pkg-config, static"

# CMake find_package, shared and static.
cmake -S tests/install -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
solve "$work/cmake/solve_image_shared" "CMake find_package, capmonster::capmonster"
refuse libcapmonster "$work/cmake/solve_image_static" "linked statically, yet it needs libcapmonster"
solve "$work/cmake/solve_image_static" "CMake find_package, capmonster::capmonster_static"

# Go through pkg-config (the binding's capmonster_pkgconfig build tag), when there is Go.
if go_env 2>/dev/null; then
    (cd bindings/go && CGO_LDFLAGS="-Wl,-rpath,$prefix/lib" \
        go build -tags capmonster_pkgconfig -o "$work/go_solve" ./examples/solve)
    refuse "RUNPATH.*target/release" "$work/go_solve" "built through pkg-config, yet it runs with the in-tree library"
    CAPMONSTER_BASE_URL="$EMULATOR_URL" "$work/go_solve" | grep answer >/dev/null
    echo "ok: Go binding through pkg-config"
fi
