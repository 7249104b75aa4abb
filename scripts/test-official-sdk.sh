#!/usr/bin/env bash
# The official Python SDK (capmonstercloudclient 4.3.1, from PyPI, in the virtual environment
# scripts/install-deps.sh official-sdk makes) against the emulator: every request class it
# knows creates its task and accepts the emulator's answer on its own schedule; getBalance
# and error answers too (tests/official_sdk/check.py). What the emulator answers is what the
# tests of this library are checked against, so this keeps it honest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_deps official-sdk

sdk=${CAPMONSTER_OFFICIAL_SDK:-/opt/capmonstercloudclient-4.3.1}
build_release capmonster-emulator
start_emulator --solve-after-ms 0
"$sdk/bin/python" tests/official_sdk/check.py "$EMULATOR_URL"
