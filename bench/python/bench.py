#!/usr/bin/env python3
"""Python clients at scale against the emulator, one contender per process.

    bench.py solve CONTENDER N URL SOLVE_AFTER_MS
        N solves at once on one event loop (createTask, then polling on the official
        ImageToText schedule, 350 ms / 200 ms / 10 s): CONTENDER is libcapmonster (this
        package's AsyncClient.solve) or official (capmonstercloudclient's solve_captcha).
    bench.py wait N URL SOLVE_AFTER_MS FIRST_MS INTERVAL_MS
        libcapmonster only: N concurrent AsyncClient.wait_result on tasks the emulator made
        at once (POST /_emulator/tasks), ready SOLVE_AFTER_MS after.

    bench.py cancel N URL
        libcapmonster only: N waits on tasks never ready, polled every 50 ms; each cancelled
        (task.cancel()) one at a time; prints the ms from task.cancel() to the await's
        CancelledError and to the library's wait being out of the waiter (p50, p99, max).

The others print one JSON line: n, right (solutions as expected), failures by kind, wall s, cpu s
(user + system of the process, every thread of it), peak RSS (MiB, ru_maxrss), peak OS
threads (/proc/self/status, sampled every 20 ms; the sampler's own thread not counted),
threads before, lateness (ms from each task's readiness to the solution in hand: p50, p99,
max; readiness counted as the call + SOLVE_AFTER_MS for solves, the batch's creation +
SOLVE_AFTER_MS for waits: an upper bound of the lateness, as the server creates a little later). The caller reads connections and requests from the
emulator's counters (bench/python/run.sh).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import resource
import sys
import threading
import time
import urllib.request
from typing import Optional

IMAGE = base64.b64encode(b"bench image").decode()

# libcapmonster's cap of connections: PY_BENCH_MAX_CONNECTIONS, else the library's default.
MAX_CONNECTIONS = int(os.environ["PY_BENCH_MAX_CONNECTIONS"]) if os.environ.get("PY_BENCH_MAX_CONNECTIONS") else None


def os_threads() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


class Sampler:
    """The peak of OS threads, sampled from a thread of its own (not counted)."""

    def __init__(self) -> None:
        self.before = os_threads()
        self.peak = self.before
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, os_threads() - 1)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


def cpu_by_thread(since: Optional[dict[str, float]] = None) -> dict[str, float]:
    """CPU seconds of the process's live threads (/proc/self/task/*/schedstat: nanoseconds on
    a CPU, exact where stat's clock ticks would round each thread's few ms away), summed by
    thread name, less ``since`` (an earlier reading, so that start-up and imports are left
    out): the event loop's thread is "loop", the library's are capmonster-wait (its waits) and
    capmonster-crea(te) (its solves' createTask); Python's own threads are "python" (3.11 does
    not name OS threads: the sampler, the binding's pool, the official client's timers).
    Threads that already ended are not counted (the process total is)."""
    by_name: collections.Counter[str] = collections.Counter()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                on_cpu_ns = int(f.read().split()[0])
        except OSError:  # ended meanwhile
            continue
        name = "loop" if tid == str(os.getpid()) else name
        by_name[name] += on_cpu_ns / 1e9
    for name, seconds in (since or {}).items():
        by_name[name] -= seconds
    return {name: round(seconds, 3) for name, seconds in by_name.most_common()}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def report(n: int, right: int, failures: collections.Counter, started: float, cpu0: float,
           sampler: Sampler, lateness: list[float], threads_cpu: dict[str, float]) -> None:
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = sampler.finish()
    print(json.dumps({
        "n": n,
        "right": right,
        "failures": dict(failures),
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu0, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "threads_peak": peak,
        "threads_before": sampler.before,
        "lateness_ms": [round(percentile(lateness, p), 1) for p in (50, 99, 100)],
        "cpu_by_thread_s": threads_cpu,
    }), flush=True)


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def solve_libcapmonster(n: int, url: str, solve_after: float) -> None:
    import capmonster

    failures: collections.Counter[str] = collections.Counter()
    lateness: list[float] = []
    threads0, sampler, cpu0, started = cpu_by_thread(), Sampler(), cpu_now(), time.monotonic()
    async with capmonster.AsyncClient("bench-key", base_url=url, proxy=False, max_connections=MAX_CONNECTIONS) as client:
        async def one() -> bool:
            # One call creates and polls, as the official client's: readiness is counted from the
            # call, a conservative bound (the emulator creates the task a little later).
            ready_at = time.monotonic() + solve_after
            try:
                result = await client.solve({"type": "ImageToTextTask", "body": IMAGE})
                lateness.append((time.monotonic() - ready_at) * 1000)
                return result.solution == {"text": "answer"}
            except capmonster.CapMonsterError as e:
                failures[f"{e.code_name} {e.api_error_code or ''}".strip()] += 1
                return False

        right = sum(await asyncio.gather(*(one() for _ in range(n))))
        threads_cpu = cpu_by_thread(threads0)  # before the close ends the library's threads
    report(n, right, failures, started, cpu0, sampler, lateness, threads_cpu)


async def solve_official(n: int, url: str, solve_after: float) -> None:
    from capmonstercloudclient import CapMonsterClient, ClientOptions
    from capmonstercloudclient.requests import ImageToTextRequest

    failures: collections.Counter[str] = collections.Counter()
    lateness: list[float] = []
    threads0, sampler, cpu0, started = cpu_by_thread(), Sampler(), cpu_now(), time.monotonic()
    client = CapMonsterClient(options=ClientOptions(api_key="bench-key", service_url=url))
    image = base64.b64decode(IMAGE)

    async def one() -> bool:
        # It creates and polls inside one call: readiness is counted from the call.
        ready_at = time.monotonic() + solve_after
        try:
            solution = await client.solve_captcha(ImageToTextRequest(image_bytes=image))
            lateness.append((time.monotonic() - ready_at) * 1000)
            return solution == {"text": "answer"}
        except Exception as e:  # noqa: BLE001 - counted by kind
            failures[type(e).__name__] += 1
            return False

    right = sum(await asyncio.gather(*(one() for _ in range(n))))
    report(n, right, failures, started, cpu0, sampler, lateness, cpu_by_thread(threads0))


async def wait_libcapmonster(n: int, url: str, solve_after_ms: int, first_ms: int, interval_ms: int) -> None:
    import capmonster

    body = json.dumps({"type": "ImageToTextTask", "count": n, "solveAfterMs": solve_after_ms}).encode()
    request = urllib.request.Request(url + "/_emulator/tasks", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        first = json.load(answer)["firstTaskId"]
    ready_at = time.monotonic() + solve_after_ms / 1000
    failures: collections.Counter[str] = collections.Counter()
    lateness: list[float] = []
    threads0, sampler, cpu0, started = cpu_by_thread(), Sampler(), cpu_now(), time.monotonic()
    async with capmonster.AsyncClient("bench-key", base_url=url, proxy=False, max_connections=MAX_CONNECTIONS) as client:
        async def one(task_id: int) -> bool:
            try:
                result = await client.wait_result(
                    task_id, first_delay=first_ms / 1000, interval=interval_ms / 1000, timeout=600)
                lateness.append((time.monotonic() - ready_at) * 1000)
                return result.solution == {"text": "answer"}
            except capmonster.CapMonsterError as e:
                failures[f"{e.code_name} {e.api_error_code or ''}".strip()] += 1
                return False

        right = sum(await asyncio.gather(*(one(first + i) for i in range(n))))
        threads_cpu = cpu_by_thread(threads0)
    report(n, right, failures, started, cpu0, sampler, lateness, threads_cpu)


async def cancel_libcapmonster(n: int, url: str) -> None:
    import capmonster

    body = json.dumps({"type": "ImageToTextTask", "count": n, "solveAfterMs": 3_600_000}).encode()
    request = urllib.request.Request(url + "/_emulator/tasks", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        first = json.load(answer)["firstTaskId"]
    raised: list[float] = []
    out: list[float] = []
    async with capmonster.AsyncClient("bench-key", base_url=url, proxy=False, max_connections=MAX_CONNECTIONS) as client:
        waits = [asyncio.ensure_future(client.wait_result(first + i, first_delay=0, interval=0.05, timeout=600))
                 for i in range(n)]
        await asyncio.sleep(0.5)  # every wait polling
        for wait in waits:
            pending = client.pending()
            started = time.perf_counter()
            wait.cancel()
            try:
                await wait
            except asyncio.CancelledError:
                raised.append((time.perf_counter() - started) * 1000)
            while client.pending() >= pending:
                await asyncio.sleep(0)
            out.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "n": n,
        "cancelled_error_ms": [round(percentile(raised, p), 3) for p in (50, 99, 100)],
        "wait_out_ms": [round(percentile(out, p), 3) for p in (50, 99, 100)],
        "cancelled": len(raised),
    }), flush=True)


def main() -> int:
    mode, *args = sys.argv[1:]
    if mode == "solve":
        contender, n, url, solve_after_ms = args
        run = {"libcapmonster": solve_libcapmonster, "official": solve_official}[contender]
        asyncio.run(run(int(n), url, int(solve_after_ms) / 1000))
    elif mode == "wait":
        n, url, solve_after_ms, first_ms, interval_ms = args
        asyncio.run(wait_libcapmonster(int(n), url, int(solve_after_ms), int(first_ms), int(interval_ms)))
    elif mode == "cancel":
        n, url = args
        asyncio.run(cancel_libcapmonster(int(n), url))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
