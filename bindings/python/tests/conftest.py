"""Shared by the tests: the emulator (a real server on a loopback port, started per test), its
control endpoints, and a request budget file of the test run's own (never the user's).

The tests import the package as installed (the python section of scripts/test.sh installs the
wheel into a fresh virtual environment): never the source tree.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
EMULATOR = os.environ.get("CAPMONSTER_EMULATOR", str(REPO / "target" / "release" / "capmonster-emulator"))

# Before the package is imported anywhere: the library reads it at the first client. The
# worker processes of the tests (multiprocessing's spawn imports this module again) inherit
# the run's file rather than make one of their own.
if os.environ.get("CAPMONSTER_PYTHON_TEST_BUDGET") != os.environ.get("CAPMONSTER_BUDGET_FILE"):
    _budget_dir = tempfile.mkdtemp(prefix="capmonster-python-budget.")
    # Removed by the process that made it, after its workers are gone: a budget file is megabytes.
    atexit.register(shutil.rmtree, _budget_dir, ignore_errors=True)
    os.environ["CAPMONSTER_BUDGET_FILE"] = os.environ["CAPMONSTER_PYTHON_TEST_BUDGET"] = os.path.join(_budget_dir, "budget")
os.environ.pop("CAPMONSTER_BUDGET", None)
os.environ.pop("CAPMONSTER_GUARD", None)

IMAGE_TASK = {"type": "ImageToTextTask", "body": "aGVsbG8="}


class Emulator:
    """A capmonster-emulator process on a free loopback port."""

    def __init__(self, *args: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="capmonster-python-emulator.")
        port_file = os.path.join(self._dir, "port")
        self._log = open(os.path.join(self._dir, "log"), "w")
        self.process = subprocess.Popen(
            [EMULATOR, "--port", "0", "--port-file", port_file, *args], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while not (os.path.exists(port_file) and os.path.getsize(port_file)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start: " + open(self._log.name).read())
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{open(port_file).read().strip()}"

    def control(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def stats(self) -> dict[str, Any]:
        return self.control("/_emulator/stats")

    def requests(self, method: str) -> int:
        return int(self.stats()["methods"].get(method, 0))

    def script(self, task_id: int, steps: list[Any]) -> None:
        self.control("/_emulator/script", {"taskId": task_id, "steps": steps})

    def script_method(self, method: str, steps: list[Any]) -> None:
        self.control("/_emulator/script", {"method": method, "steps": steps})

    def task(self, solve_after_ms: int = 0, **fields: Any) -> int:
        return int(self.control("/_emulator/task", {"type": "ImageToTextTask", "solveAfterMs": solve_after_ms, **fields})["taskId"])

    def tasks(self, count: int, solve_after_ms: int, spread_ms: int = 0) -> range:
        answer = self.control(
            "/_emulator/tasks",
            {"type": "ImageToTextTask", "count": count, "solveAfterMs": solve_after_ms, "spreadMs": spread_ms},
        )
        return range(answer["firstTaskId"], answer["firstTaskId"] + answer["count"])

    def account(self, **standing: Any) -> dict[str, Any]:
        return self.control("/_emulator/account", standing)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    e = Emulator("--solve-after-ms", "200")
    yield e
    e.stop()


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A key of the test's own: the budget and the guard's stops are per key."""
    return "py-" + request.node.name.replace("[", "-").replace("]", "")


# Fast polling for tests: the library's defaults wait a second before the first request.
FAST = dict(first_delay=0, interval=0.02, timeout=10)
