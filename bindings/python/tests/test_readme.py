"""The README's Python blocks and examples/many.py, run as a reader runs them, against the
emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

BINDING = REPO / "bindings" / "python"


def python_blocks() -> list[str]:
    text = (BINDING / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def run(args: list[str], emulator, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CAPMONSTER_BASE_URL=emulator.url)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_the_readme_has_a_blocking_and_an_asyncio_example():
    blocks = python_blocks()
    assert len(blocks) == 2
    assert "capmonster.Client(" in blocks[0] and "capmonster.AsyncClient(" in blocks[1]


@pytest.mark.parametrize("index,expected", [(0, ["solved: answer", "balance: 345.678"]), (1, ["aGVsbG8= -> answer"])])
def test_readme_block_runs(emulator, index, expected):
    done = run(["-c", python_blocks()[index]], emulator)
    assert done.returncode == 0, done.stderr
    for line in expected:
        assert line in done.stdout, done.stdout


def test_many_solves_at_once_and_counts_failures(emulator, tmp_path):
    done = run([str(BINDING / "examples" / "many.py"), "-n", "2000"], emulator)
    assert done.returncode == 0, done.stderr
    assert "captchas: 2000, solved: 2000, failed: 0" in done.stdout.splitlines()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    done = run([str(BINDING / "examples" / "many.py"), "-n", "50", str(empty)], emulator)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "captchas: 51, solved: 50, failed: 1" in lines
    assert "  CM_ERR_API ERROR_ZERO_CAPTCHA_FILESIZE: 1" in lines
