"""Processes: a client made before os.fork fails at once in the child (never a hang), a client
made in the child works, and processes of multiprocessing share one request budget."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time

import pytest

import capmonster
from conftest import FAST, IMAGE_TASK


def in_child(body, timeout: float = 20) -> int:
    """Runs body() in a forked child; its exit status (0 when body returns True). Fails the
    test if the child hangs."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = 0 if body() else 3
        except BaseException as e:  # noqa: BLE001 - the status says it
            print("child:", repr(e), flush=True)
            status = 2
        finally:
            os._exit(status)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the child hung")


# Python 3.12+ warns that forking a process with threads may deadlock the child: the point here
# is that this package's clients never do.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_client_made_before_fork_fails_at_once_in_the_child(emulator, key):
    parent = capmonster.Client(key, base_url=emulator.url, proxy=False)
    parent_async = capmonster.AsyncClient(key, base_url=emulator.url, proxy=False)
    task_id = parent.create_task(IMAGE_TASK)
    # The parent's waiter and pool are running at the fork.
    asyncio.run(parent_async.wait_result(task_id, **FAST))

    def child():
        started = time.monotonic()
        for call in (parent.get_balance, lambda: parent.wait_result(task_id)):
            try:
                call()
                return False
            except capmonster.ClientForkedError as e:
                assert "os.fork" in str(e) and "new client" in str(e), str(e)
                assert isinstance(e, capmonster.InvalidArgumentError)
        try:
            asyncio.run(parent_async.wait_result(task_id))
            return False
        except capmonster.ClientForkedError:
            pass
        parent.close()  # forgets the parent's client without touching it
        parent_async.close()
        assert time.monotonic() - started < 1
        # A new client in the child works.
        with capmonster.Client(key, base_url=emulator.url, proxy=False) as fresh:
            assert fresh.solve(IMAGE_TASK).solution["text"] == "answer"

        async def solve():
            async with capmonster.AsyncClient(key, base_url=emulator.url, proxy=False) as c:
                return await c.solve(IMAGE_TASK)

        return asyncio.run(solve()).solution["text"] == "answer"

    assert in_child(child) == 0
    # The parent's clients still work.
    assert parent.get_balance() > 0
    assert asyncio.run(parent_async.wait_result(task_id, **FAST)).ready
    parent.close()
    parent_async.close()


def poll(url: str, key: str, task_id: int, times: int) -> tuple[int, int]:
    """In a worker process: get_task_result `times` times; (answered, refused by the budget)."""
    answered = refused = 0
    with capmonster.Client(key, base_url=url, proxy=False) as c:
        for _ in range(times):
            try:
                c.get_task_result(task_id)
                answered += 1
            except capmonster.BudgetExhaustedError:
                refused += 1
    return answered, refused


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_one_budget(emulator, key, method):
    task_id = emulator.task(solve_after_ms=600000)
    context = multiprocessing.get_context(method)
    # Workers inherit CAPMONSTER_BUDGET_FILE: the test run's own file (conftest).
    with context.Pool(4) as pool:
        counts = pool.starmap(poll, [(emulator.url, key, task_id, 50)] * 4)
    assert sum(a for a, _ in counts) == 120
    assert sum(r for _, r in counts) == 80
    assert emulator.stats()["tasks"][str(task_id)] == 120


def test_clients_refuse_to_be_pickled(emulator, key):
    import pickle

    with capmonster.Client(key, base_url=emulator.url, proxy=False) as c:
        with pytest.raises(TypeError, match="make one there"):
            pickle.dumps(c)
    a = capmonster.AsyncClient(key, base_url=emulator.url, proxy=False)
    with pytest.raises(TypeError, match="make one there"):
        pickle.dumps(a)
    a.close()


_CHOOSE_BUDGET = """
import capmonster
try:
    capmonster.set_budget("nonsense")
    raise SystemExit("a bad value was taken")
except capmonster.InvalidArgumentError as e:
    assert '"nonsense"' in e.message, e.message
capmonster.set_budget("process")
with capmonster.Client("choose-budget") as client:
    pass
try:
    capmonster.set_budget("shared")
    raise SystemExit("a choice after the first client was taken")
except capmonster.InvalidArgumentError as e:
    assert "a client was already created" in e.message, e.message
print("ok")
"""


def test_the_budget_is_chosen_before_the_first_client():
    """set_budget: checked, taken before the first client, refused after it (in a process of
    its own: this one has clients already)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CHOOSE_BUDGET], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
