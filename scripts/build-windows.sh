#!/usr/bin/env bash
# Builds capmonster.dll for Windows 7 and later, 64-bit and 32-bit, on Debian (the packages come
# from scripts/install-deps.sh), and leaves dist/windows-x86_64/ and dist/windows-i686/, each with
# capmonster.dll, capmonster.lib (MSVC import library), libcapmonster.dll.a (MinGW),
# capmonster.def, capmonster.h, the VBA modules (vba/), and a zip of the folder
# (capmonster-<version>-windows-<arch>.zip).
# i686: every function is stdcall under an undecorated export name; the .def lists the decorated
# names (cm_version@0) and both import libraries map them to the plain exports (dlltool -k).
#
# Rust for Windows here is Debian's (rustc-web, 1.96) with its std source: rustup's toolchain
# has only the Linux target. The *-win7-windows-gnu targets are built with -Zbuild-std; the
# default *-pc-windows-gnu std imports bcryptprimitives.dll, which Windows 7 (and Wine 8)
# lack. See ../shared/windows-notes.md for how this was found.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0

rust_src=/usr/src/rustc-1.96.0/library
scripts/install-deps.sh --check windows-build || exit 1
# -Zbuild-std looks for the std source under the sysroot.
if [ ! -e /usr/lib/rustlib/src/rust/library ]; then
    mkdir -p /usr/lib/rustlib/src/rust
    ln -sfn "$rust_src" /usr/lib/rustlib/src/rust/library
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
targets=(x86_64-win7-windows-gnu i686-win7-windows-gnu)

# RUSTC: without it cargo-web would run rustup's rustc, which has no std source.
# RUSTC_BOOTSTRAP: -Zbuild-std is unstable; Debian's stable compiler builds std with it.
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release --lib --quiet \
    -Zbuild-std=std,panic_unwind "${targets[@]/#/--target=}" \
    --config 'target.x86_64-win7-windows-gnu.linker="x86_64-w64-mingw32-gcc"' \
    --config 'target.i686-win7-windows-gnu.linker="i686-w64-mingw32-gcc"'

# What the header declares: every function the DLL must export.
header_functions=$(python3 -c '
import re, sys
text = open("include/capmonster.h").read()
print("\n".join(sorted(set(re.findall(r"\b(cm_[a-z0-9_]+)\(", text)))))
')

# DLLs every Windows since 7 has (compared without case). Anything else (libgcc, libwinpthread,
# vcruntime, bcryptprimitives, api-ms-win-*) would make the DLL fail to load somewhere.
windows7_dlls="advapi32.dll bcrypt.dll crypt32.dll kernel32.dll msvcrt.dll ntdll.dll secur32.dll userenv.dll ws2_32.dll"

for target in "${targets[@]}"; do
    arch=${target%%-*}
    case "$arch" in
        x86_64) prefix=x86_64-w64-mingw32 machine=i386:x86-64 ;;
        i686) prefix=i686-w64-mingw32 machine=i386 ;;
    esac
    out=dist/windows-$arch
    rm -rf "$out"
    mkdir -p "$out"
    built=target/$target/release
    # Without its symbol table the DLL is a third smaller; exports live elsewhere in a PE file.
    "$prefix-strip" --strip-all -o "$out/capmonster.dll" "$built/capmonster.dll"
    cp "$built/libcapmonster.dll.a" "$out/libcapmonster.dll.a" # replaced for i686, below
    cp include/capmonster.h "$out/capmonster.h"
    mkdir -p "$out/vba" # the VBA modules (bindings/vba), for Office macros
    cp bindings/vba/CapMonster.bas bindings/vba/Example.bas "$out/vba/"
    cp packaging/windows/README.txt LICENSE-MIT LICENSE-APACHE "$out/" # how to link and ship it; the licences

    dump=$("$prefix-objdump" -p "$out/capmonster.dll")
    # The export table's names (objdump lists them after "[Ordinal/Name Pointer] Table").
    exports=$(printf '%s\n' "$dump" | python3 -c '
import re, sys
text = sys.stdin.read()
table = text.split("[Ordinal/Name Pointer] Table", 1)[1]
names = re.findall(r"^\s*\[\s*\d+\]\s+(\S+)\s*$", table, re.M)
print("\n".join(sorted(names)))
')
    if [ "$exports" != "$header_functions" ]; then
        echo "$out/capmonster.dll: its exports differ from the header's functions:" >&2
        diff <(printf '%s\n' "$header_functions") <(printf '%s\n' "$exports") >&2 || true
        exit 1
    fi
    imports=$(printf '%s\n' "$dump" | sed -n 's/^\s*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
    for dll in $imports; do
        case " $windows7_dlls " in
            *" $dll "*) ;;
            *) echo "$out/capmonster.dll imports $dll, which Windows 7 does not have" >&2; exit 1 ;;
        esac
    done

    def_names=$exports
    kill_at=()
    if [ "$arch" = i686 ]; then
        # Every function is stdcall here (extern "system", CM_CALL in the header): the DLL's own
        # symbol table (objects' names, before stripping) holds _cm_x@N, N the bytes of
        # arguments the callee pops. Compared with the sizes the header's parameters take on
        # i686, this fails for a cdecl function (no @N) and for a signature that disagrees.
        def_names=$("$prefix-nm" --defined-only "$built/capmonster.dll" | python3 -c '
import re, sys
header = open("include/capmonster.h").read()
# Argument sizes on i686: pointers and 32-bit values take 4 bytes, 64-bit values 8.
sizes = {"int32_t": 4, "uint32_t": 4, "cm_code": 4, "cm_log_level": 4, "cm_engine": 4, "size_t": 4, "int64_t": 8, "uint64_t": 8, "double": 8,
         "cm_log_callback": 4}  # cm_log_callback: a function pointer
errors, expected = [], {}
for match in re.finditer(r"CM_CALL (cm_[a-z0-9_]+)\(([^)]*)\);", header):
    name, args = match.group(1), " ".join(match.group(2).split())
    total = 0
    for arg in ([] if args == "void" else args.split(",")):
        kind = arg.strip().rsplit(" ", 1)[0].replace("const ", "")
        if "*" in arg:
            total += 4
        elif kind in sizes:
            total += sizes[kind]
        else:
            errors.append(f"{name}: no i686 size known for the parameter type {kind!r}")
    expected[name] = total
defined = {}
for line in sys.stdin:
    match = re.fullmatch(r"[0-9a-f]+ T _(cm_[a-z0-9_]+)(?:@(\d+))?", line.strip())
    if match:
        # The linker adds an undecorated alias (_cm_x) beside a stdcall function (_cm_x@N).
        defined[match.group(1)] = match.group(2) or defined.get(match.group(1))
for name in sorted(set(expected) | set(defined)):
    if name not in defined:
        errors.append(f"{name}: declared in the header, not defined in the DLL")
    elif name not in expected:
        errors.append(f"{name}: defined in the DLL, not declared CM_CALL in the header")
    elif defined[name] is None:
        errors.append(f"{name}: cdecl (no @N): it must be extern \"system\" (stdcall)")
    elif int(defined[name]) != expected[name]:
        errors.append(f"{name}: pops {defined[name]} bytes of arguments, the header passes {expected[name]}")
if errors:
    sys.exit("capmonster.dll (i686) is not stdcall as the header declares:\n  " + "\n  ".join(errors))
print("\n".join(f"{name}@{expected[name]}" for name in sorted(expected)))
')
        # -k: the import libraries map the decorated symbol a caller references
        # (_cm_version@0, __imp__cm_version@0) to the undecorated export (cm_version).
        kill_at=(-k)
    fi
    # On i686 the .def lists the decorated names (cm_version@0): what dlltool -k and MSVC's
    # lib /def need to make an import library for undecorated stdcall exports.
    { echo "LIBRARY capmonster.dll"; echo "EXPORTS"; printf '    %s\n' $def_names; } >"$out/capmonster.def"
    llvm-dlltool -m "$machine" "${kill_at[@]}" -d "$out/capmonster.def" -D capmonster.dll -l "$out/capmonster.lib"
    if [ "$arch" = i686 ]; then
        # Cargo's own libcapmonster.dll.a has only undecorated symbols (_cm_version), which no
        # __stdcall caller references: MinGW's dlltool makes the one shipped.
        "$prefix-dlltool" -k -d "$out/capmonster.def" -D capmonster.dll -l "$out/libcapmonster.dll.a"
    fi

    zip_name=capmonster-$version-windows-$arch.zip
    rm -f "dist/$zip_name"
    (cd dist && python3 -m zipfile -c "$zip_name" "windows-$arch")
    mv "dist/$zip_name" "$out/"
    echo "$out: capmonster.dll $(stat -c %s "$out/capmonster.dll") bytes," \
        "$(printf '%s\n' "$exports" | wc -l) exports, imports: $(echo $imports)"
done
echo "Windows build done in ${SECONDS} s"
