#!/usr/bin/env bash
# The Python binding's Windows wheels: win_amd64 and win32, each carrying the capmonster.dll that
# scripts/build-windows.sh leaves in dist/ (built first when missing). No Windows Python runs
# here, so the wheels are checked, not imported: their names and tags, their files (the package,
# py.typed and that DLL, byte for byte, and no Linux library), the DLL's format for the tag
# (PE32+ x86-64, PE32 i386) and its exports: every function the package declares, under its
# plain name (the 32-bit DLL exports its stdcall functions undecorated, which ctypes' WinDLL
# looks up).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps python-windows
tools=$REPO_ROOT/target/python/tools
binding=$REPO_ROOT/bindings/python

if [ ! -f dist/windows-x86_64/capmonster.dll ] || [ ! -f dist/windows-i686/capmonster.dll ]; then
    scripts/build-windows.sh
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-python-windows.XXXXXX")
at_exit rm -rf "$tmp"
# The functions the package calls (its table in _native.py; the optional ones are looked up).
grep -oE '^    "cm_[a-z_]+": \(' "$binding/src/capmonster/_native.py" | grep -oE 'cm_[a-z_]+' | sort >"$tmp/needed"
[ "$(wc -l <"$tmp/needed")" -ge 40 ] || { echo "test-python-windows.sh: reading _native.py's table failed" >&2; exit 1; }

for row in "x86_64 win_amd64 pei-x86-64" "i686 win32 pei-i386"; do
    read -r arch tag format <<<"$row"
    dll=$REPO_ROOT/dist/windows-$arch/capmonster.dll
    rm -rf "$tmp/src" "$tmp/dist"
    cp -r "$binding" "$tmp/src"
    rm -rf "$tmp/src/build" "$tmp/src/src/"*.egg-info
    (cd "$tmp/src" && CAPMONSTER_WHEEL_LIBRARY=$dll CAPMONSTER_WHEEL_PLATFORM=$tag \
        "$tools/bin/pip" wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps -w "$tmp/dist" .)
    wheel=$(echo "$tmp"/dist/*.whl)
    case "$(basename "$wheel")" in
        libcapmonster-*-py3-none-"$tag".whl) ;;
        *) echo "test-python-windows.sh: unexpected wheel $(basename "$wheel") for $tag" >&2; exit 1 ;;
    esac
    /usr/bin/python3 - "$wheel" "$dll" "$tag" <<'PY'
import sys, zipfile
wheel, dll, tag = sys.argv[1:]
z = zipfile.ZipFile(wheel)
names = set(z.namelist())
package = {n for n in names if not n.startswith("libcapmonster-")}
want = {"capmonster/" + n for n in ["__init__.py", "_async.py", "_client.py", "_codes.py", "_errors.py",
                                    "_log.py", "_native.py", "capmonster.dll", "py.typed"]}
assert package == want, f"{tag}: the wheel's package differs: {sorted(package ^ want)}"
assert z.read("capmonster/capmonster.dll") == open(dll, "rb").read(), f"{tag}: not dist's capmonster.dll"
wheel_meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
meta = z.read(wheel_meta).decode()
assert f"Tag: py3-none-{tag}" in meta and "Root-Is-Purelib: false" in meta, meta
PY
    objdump -f "$dll" | grep -q "file format $format" ||
        { echo "test-python-windows.sh: $dll is not $format" >&2; objdump -f "$dll" >&2; exit 1; }
    objdump -p "$dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | grep -oE 'cm_[a-z_]+' | sort -u >"$tmp/exports"
    missing=$(comm -23 "$tmp/needed" "$tmp/exports")
    [ -z "$missing" ] || { echo "test-python-windows.sh: $arch DLL lacks: $missing" >&2; exit 1; }
    echo "$(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB, $format, exports the $(wc -l <"$tmp/needed") functions the package declares"
done
