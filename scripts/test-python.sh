#!/usr/bin/env bash
# Python binding tests: checks that bindings/python's exception classes match the header and
# its type hints (mypy --strict), builds the wheel (cargo build --release's library inside), tags it manylinux with auditwheel
# and checks its layout, installs it into a fresh virtual environment (offline, from the
# wheels scripts/install-deps.sh python keeps) and runs the tests there with pytest and
# pytest-asyncio against the emulator: the package as users install it, not the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps python

build_release
tools=$REPO_ROOT/target/python/tools
wheelhouse=$tools/wheelhouse
binding=$REPO_ROOT/bindings/python

/usr/bin/python3 "$binding/gen_codes.py" --check
echo "exception classes: as the header's codes"
# The type hints that py.typed promises, checked strictly for the oldest Python supported.
(cd "$binding/src" && "$tools/bin/mypy" --strict --python-version 3.10 --no-incremental capmonster)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-python.XXXXXX")
at_exit rm -rf "$tmp"
# The build works on a copy, so that the source tree gets no build/ or egg-info.
cp -r "$binding" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src/dist" "$tmp/src/src/"*.egg-info
(cd "$tmp/src" && CAPMONSTER_WHEEL_LIBRARY=$REPO_ROOT/target/release/libcapmonster.so \
    "$tools/bin/pip" wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps -w "$tmp/dist" .)
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --only-plat -w "$tmp/wheel" "$tmp"/dist/*.whl >"$tmp/repair.log" 2>&1 ||
    { cat "$tmp/repair.log" >&2; exit 1; }
wheel=$(echo "$tmp"/wheel/*.whl)
case "$(basename "$wheel")" in
    libcapmonster-*-py3-none-manylinux_*_x86_64.whl) ;;
    *) echo "test-python.sh: unexpected wheel $(basename "$wheel")" >&2; exit 1 ;;
esac
# Its layout: the package, its library, py.typed; nothing else beside the metadata, and no
# library that auditwheel grafted (libcapmonster needs only glibc).
/usr/bin/python3 - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
package = {n for n in names if not n.startswith("libcapmonster-")}
want = {"capmonster/" + n for n in ["__init__.py", "_async.py", "_client.py", "_codes.py", "_errors.py",
                                    "_log.py", "_native.py", "libcapmonster.so", "py.typed"]}
extra = package - want - {"capmonster/"}
assert want <= package, f"missing from the wheel: {sorted(want - package)}"
assert not extra, f"unexpected in the wheel: {sorted(extra)}"
PY
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB"

venv=$tmp/venv
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links "$wheelhouse" \
    pytest pytest-asyncio "$wheel"
echo "installed into a fresh virtual environment: $("$venv/bin/python" --version)"

export CAPMONSTER_EMULATOR=$REPO_ROOT/target/release/capmonster-emulator CAPMONSTER_TEST_WHEEL=1
unset CAPMONSTER_LIBRARY CAPMONSTER_BASE_URL
# From the tests' folder, with no cache written there: the package comes from the environment.
cd "$binding/tests"
"$venv/bin/pytest" -p no:cacheprovider -q -ra --durations=5 .
