#!/usr/bin/env bash
# Windows tests under Wine, 64- and 32-bit, against the emulator running natively on Linux (a
# Windows program under Wine reaches the Linux loopback directly):
# - scripts/build-windows.sh (both DLLs; it checks their exports and imports);
# - the C tests (tests/c/test_capmonster.c, test_waiter.c) cross-compiled with MinGW, as
#   strict C99 with -Werror; what Windows cannot do (fork, poll(2) of the waiter's fd, /proc
#   counts) they skip and say so;
# - the demo (examples/solve_image.c) solving a task;
# - both for x86_64 and for i686: there the header's functions are __stdcall, the programs link
#   against both import libraries (checked to import only the DLL's plain names) and run under
#   32-bit Wine, in the same WoW64 prefix as the 64-bit ones (as on 64-bit Windows, both DLLs
#   share %LOCALAPPDATA%\capmonster\budget-v2);
# - the Rust tests that need no Linux server (unit tests; transport, waits, waiter, cancels in
#   flight, fault matrix, the budget shared by 8 Windows processes...), cargo's runner set to
#   Wine: x86_64 by default; WINDOWS_RUST_TESTS=all adds i686 (its build takes minutes more),
#   WINDOWS_RUST_TESTS=0 leaves them all out.
# Wine (64- and 32-bit) and MinGW come from scripts/install-deps.sh. TEST_WAITER_WAITS as in
# scripts/test-c.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0

# Debian 12's packages put neither loader on PATH: wine64 runs 64-bit programs, wine (from
# wine32:i386) 32-bit ones.
wine=/usr/lib/wine/wine64
wine32=/usr/lib/wine/wine
scripts/install-deps.sh --check windows || exit 1

scripts/build-windows.sh
source scripts/lib.sh
build_release capmonster-emulator
build_minutes=$SECONDS

build=target/windows-tests
rm -rf "$build"
mkdir -p "$build/x86_64" "$build/i686"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g -Iinclude)
# -static: the test programs carry winpthreads and libgcc themselves (Wine has neither DLL);
# only capmonster.dll is linked dynamically, through the named import library.
for arch in x86_64 i686; do
    for test in test_capmonster test_waiter; do
        "$arch-w64-mingw32-gcc" "${CFLAGS[@]}" "tests/c/$test.c" -Ldist/windows-$arch -l:libcapmonster.dll.a \
            -lws2_32 -static -pthread -o "$build/$arch/$test.exe"
    done
    # The MSVC-format import library links too (MinGW's ld reads it).
    "$arch-w64-mingw32-gcc" "${CFLAGS[@]}" -O2 examples/solve_image.c dist/windows-$arch/capmonster.lib \
        -o "$build/$arch/solve_image.exe"
    "$arch-w64-mingw32-g++" -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude \
        tests/c/header_compiles_as_cpp.cpp -Ldist/windows-$arch -l:libcapmonster.dll.a -static \
        -o "$build/$arch/header_compiles_as_cpp.exe"
    cp "dist/windows-$arch/capmonster.dll" "$build/$arch/"
done
# The i686 programs call through __stdcall declarations (_cm_version@0): each must import
# from capmonster.dll only plain names the DLL exports, or it would not load on Windows.
i686-w64-mingw32-objdump -p dist/windows-i686/capmonster.dll >"$build/i686/capmonster.dll.txt"
for exe in "$build"/i686/*.exe; do
    i686-w64-mingw32-objdump -p "$exe" | python3 -c '
import re, sys
exports = set(re.findall(r"^\s*\[\s*\d+\]\s+(\S+)\s*$", open(sys.argv[2]).read().split("[Ordinal/Name Pointer] Table", 1)[1], re.M))
text = sys.stdin.read()
block = text.split("DLL Name: capmonster.dll", 1)[1].split("\n\n", 1)[0]
names = re.findall(r"^\s*[0-9a-f]+\s+\d+\s+(\S+)\s*$", block, re.M)
wrong = [name for name in names if name not in exports]
if not names or wrong:
    sys.exit(f"{sys.argv[1]}: imports from capmonster.dll {wrong or names} (not plain exported names)")
print(f"{sys.argv[1]}: {len(names)} imports from capmonster.dll, all plain exported names")
' "$exe" "$build/i686/capmonster.dll.txt"
done
echo "i686: the header compiles as C99 and C++ and the tests link against capmonster.dll's import libraries"
# 32-bit VBA pops what its Declares push: the decorated names' @N must match them.
scripts/check-vba.py --def dist/windows-i686/capmonster.def

# A private prefix; its first start (15-20 s here) is made here, not inside a timed test. With
# 32-bit Wine installed, wine64 makes it a WoW64 prefix, where 32-bit programs run too.
export WINEDEBUG=-all WINEPREFIX
WINEPREFIX=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-wine.XXXXXX")
cleanup() {
    stop_emulator
    "${wine%64}server" -k 2>/dev/null || true
    rm -rf "$WINEPREFIX"
}
trap cleanup EXIT
"$wine" cmd /c exit >/dev/null 2>&1 || true
# The programs that choose no budget (the examples; the tests count in their own process on
# Windows) use the file at its default place, %LOCALAPPDATA%\capmonster\, in this fresh prefix
# (scripts/test.sh's Linux path would not be an absolute Windows path).
unset CAPMONSTER_BUDGET_FILE
for arch in x86_64 i686; do
    run=$build/$arch
    loader=$wine
    [ "$arch" = x86_64 ] || loader=$wine32
    "$loader" "$run/header_compiles_as_cpp.exe" >/dev/null
    echo "header compiles and links as C++ and runs ($arch, Wine)"
    run_c_tests " ($arch, Wine)" "$run/test_capmonster.exe" "$run/test_waiter.exe" 5000 "$loader"
    echo "== solve_image.exe ($arch, Wine)"
    start_emulator --solve-after-ms 1000
    CAPMONSTER_BASE_URL="$EMULATOR_URL" "$loader" "$run/solve_image.exe"
    stop_emulator
done
scripts/test-windows-go.sh --built # the Go binding's tests and examples, in a Wine prefix of their own
case "${WINDOWS_RUST_TESTS:-1}" in
    0) rust_arches=() ;;
    1) rust_arches=(x86_64) ;;
    all) rust_arches=(x86_64 i686) ;;
    *) echo "WINDOWS_RUST_TESTS=${WINDOWS_RUST_TESTS}: want 0, 1 (x86_64) or all (x86_64 and i686)" >&2; exit 1 ;;
esac
for arch in "${rust_arches[@]}"; do
    echo "== Rust tests ($arch, Wine)"
    # Not here: tls, proxies, proxy_environment (they start nginx, tinyproxy, microsocks, which
    # Wine would hand Windows paths), header (the Linux run checks it), waiter_threads (Linux
    # only: it counts /proc). Skipped: connect_reset_before_headers, whose server runs inside
    # Wine too, and Wine's close with SO_LINGER 0 reaches the client as an end of stream, not a reset.
    rust_tests=(shared_budget transport waiting fault_matrix waiter in_flight ffi task_result
                connection_cap reports request_segments)
    target=$arch-win7-windows-gnu
    loader=$wine
    [ "$arch" = x86_64 ] || loader=$wine32
    runner_variable=CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_RUNNER
    env "$runner_variable=$loader" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo test --release --quiet -Zbuild-std=std,panic_unwind --target "$target" \
        --config "target.$target.linker=\"$arch-w64-mingw32-gcc\"" \
        --lib "${rust_tests[@]/#/--test=}" -- --test-threads 2 --skip connect_reset_before_headers
    echo "skipped under Wine: connect_reset_before_headers (its in-Wine server's reset arrives as an end of stream)"
    echo "== the waiters' engine on its event loop ($arch, Wine)"
    # The waiter's tests again with the event loop on (tokio's Windows backend), and the event
    # loop's own tests but those that start nginx (ignored on Windows: Wine would hand it
    # Windows paths); HTTP/2 over TLS runs against the emulator's own listener, in the same
    # Wine process (emulator_tls). The one
    # timed at 150 ms waits 150 times, not 2,000: its emulator runs in the same Wine process, and
    # Wine's server spends per socket event time that grows with the sockets open
    # (docs/engine.md, what remains: 2.0-2.2 s for 200 waits against the bound of 2.6 s).
    env "$runner_variable=$loader" CAPMONSTER_ENGINE=events CAPMONSTER_TEST_WAITS_AT_150_MS=150 \
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo test --release --quiet -Zbuild-std=std,panic_unwind --target "$target" \
        --config "target.$target.linker=\"$arch-w64-mingw32-gcc\"" \
        --test waiter --test engine_events --test emulator_tls -- --test-threads 2
    echo "ignored under Wine: the event loop's nginx tests (HTTP/2, TLS without HTTP/2, a cancelled stream, a reset under 100 streams, the cap with HTTP/2); HTTP/2 ran against the emulator's own TLS listener instead (emulator_tls: 1,000 waits multiplexed, a reset stream among 30, a cancelled stream among 50, the server gone under 100 streams); its waits at 150 ms ran 150 of them, not 2,000"
done
echo "Windows tests passed (build $((build_minutes / 60)) min $((build_minutes % 60)) s, in all $((SECONDS / 60)) min $((SECONDS % 60)) s)"
