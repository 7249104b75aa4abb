"""The asyncio client: single calls on a thread pool, waits on one cm_waiter per event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import threading
from ctypes import byref, c_uint64, c_void_p
from typing import Any, Callable, Literal, Optional, TypeVar, Union

from . import _native
from ._client import (
    Cancel,
    Client,
    ClientClosedError,
    Task,
    TaskResult,
    _Handle,
    _task_id,
    _c_string,
    _task_json,
    _Token,
    task_wait_options,
    wait_options,
)
from ._native import lib

T = TypeVar("T")

# The most threads of the pool for single calls (createTask, getBalance, ...) when
# max_connections is not given: each blocks in one call, and a program's concurrent single calls
# are few beside its waits (which take no thread of the pool).
_SINGLE_CALL_THREADS = 64

# Finished waits taken per readable event of the waiter's descriptor, so that a burst of
# thousands of outcomes does not hold the event loop: the descriptor stays readable and the
# loop comes back to it after its other callbacks.
_TAKE_PER_EVENT = 256

# How long the thread that takes outcomes (platforms without a descriptor) blocks in
# cm_waiter_next at a time; cm_waiter_shutdown wakes it anyway.
_NEXT_TIMEOUT_MS = 1000

# While a closing client drains its waiters: each cm_waiter_next blocks at most this long, so
# that the lock it holds never keeps the loop's own callback waiting for long.
_DRAIN_STEP_MS = 20

# How long a client closing on another thread waits for a running loop to stop watching the
# waiter's descriptor.
_UNWATCH_WAIT_S = 1.0

_TIMEOUT = 4  # CM_ERR_TIMEOUT from cm_waiter_next: none finished yet
_CANCELLED = 8  # CM_ERR_CANCELLED from cm_waiter_next: shut down and drained


class _LoopWaiter:
    """One cm_waiter of a client, driven by one event loop: each wait_result adds a wait with a
    tag and awaits a future; the loop watches the waiter's descriptor and, when it is readable,
    takes the finished waits and completes their futures. A pending wait costs a future, a
    cm_cancel and a dict entry here (and a few hundred bytes in the library), never a thread.

    Where the platform has no descriptor (Windows), one thread takes the outcomes and hands
    them to the loop.
    """

    def __init__(self, handle: _Handle, loop: asyncio.AbstractEventLoop, use_thread: bool = False) -> None:
        ptr = handle.acquire()
        try:
            w = c_void_p()
            code = lib.cm_waiter_new(ptr, byref(w))
        finally:
            handle.release()
        if code != 0:
            raise _native.code_error(code, "cm_waiter_new")
        self.ptr: Optional[int] = w.value
        self.loop = loop
        self.lock = threading.Lock()  # around cm_waiter_next and cm_waiter_free
        self.tags = itertools.count()
        self.waits: dict[int, asyncio.Future[_native.Outcome]] = {}  # each wait's, by tag
        self.thread: Optional[threading.Thread] = None
        fd = -1 if use_thread else lib.cm_waiter_fd(self.ptr)
        self.fd = fd
        if fd >= 0:
            loop.add_reader(fd, self._readable)
        else:
            self.thread = threading.Thread(target=self._take_outcomes, name="capmonster-waiter", daemon=True)
            self.thread.start()

    def add(self, task_id: int, options: _native.WaitOptions, token: _Token) -> asyncio.Future[_native.Outcome]:
        """Adds a wait that ``token`` cancels. The token is the caller's to free: the library
        keeps a reference of its own while the wait runs."""
        options.cancel = token.ptr
        return self._add(lambda tag, r: lib.cm_waiter_add_with_result(self.ptr, task_id, byref(options), tag, r))

    def add_solve(
        self, task: bytes, callback_url: Optional[bytes], options: _native.WaitOptions, token: _Token
    ) -> asyncio.Future[_native.Outcome]:
        """Adds a solve (cm_waiter_add_solve: the library creates the task on a thread of its
        own, then waits for it) that ``token`` cancels; ``add``'s rules."""
        options.cancel = token.ptr
        add_solve = _native.cm_waiter_add_solve
        assert add_solve is not None  # solve checks before it comes here
        return self._add(lambda tag, r: add_solve(self.ptr, task, callback_url, byref(options), tag, r))

    def _add(self, add: Callable[[int, Any], int]) -> asyncio.Future[_native.Outcome]:
        future: asyncio.Future[_native.Outcome] = self.loop.create_future()
        tag = next(self.tags)
        # Registered before the add: the wait may finish at once.
        self.waits[tag] = future
        r = c_void_p()
        code = add(tag, byref(r))
        if code != 0:
            del self.waits[tag]
            raise _native.take(r).error(code)
        lib.cm_result_free(r)  # only a refusal's says anything
        return future

    def _next(self, timeout_ms: int) -> tuple[int, int, Optional[_native.Outcome]]:
        """cm_waiter_next: (code, tag, outcome); the outcome only on CM_OK. A freed waiter reads
        as shut down and drained."""
        with self.lock:
            if self.ptr is None:
                return _CANCELLED, 0, None
            tag = c_uint64()
            r = c_void_p()
            code = lib.cm_waiter_next(self.ptr, timeout_ms, byref(tag), byref(r))
        if code != 0:
            lib.cm_result_free(r)
            return code, 0, None
        return code, tag.value, _native.take(r)

    def _deliver(self, tag: int, outcome: _native.Outcome) -> None:
        future = self.waits.pop(tag, None)
        if future is not None and not future.done():  # a cancelled await left its future cancelled
            future.set_result(outcome)

    def _hand_over(self, tag: int, outcome: _native.Outcome) -> None:
        """_deliver on the loop's thread, from any thread."""
        try:
            self.loop.call_soon_threadsafe(self._deliver, tag, outcome)
        except RuntimeError:  # the loop is closed: nobody awaits
            pass

    def _readable(self) -> None:
        for _ in range(_TAKE_PER_EVENT):
            code, tag, outcome = self._next(0)
            if outcome is None:
                return
            self._deliver(tag, outcome)

    def _take_outcomes(self) -> None:
        # Bounded by the waiter's life: ends once it is shut down and drained.
        while True:
            code, tag, outcome = self._next(_NEXT_TIMEOUT_MS)
            if outcome is not None:
                self._hand_over(tag, outcome)
            elif code != _TIMEOUT:
                return

    def free(self) -> None:
        """Shuts the waiter down (every wait comes out cancelled, requests in flight within
        milliseconds), hands the outcomes to their futures, then frees it."""
        lib.cm_waiter_shutdown(self.ptr)
        if self.thread is not None:
            self.thread.join()
        else:
            # The loop's own callback may take some meanwhile: each goes to its future once.
            while True:
                code, tag, outcome = self._next(_DRAIN_STEP_MS)
                if outcome is not None:
                    self._hand_over(tag, outcome)
                elif code != _TIMEOUT:
                    break
            self._unwatch()
        if self.loop.is_closed():
            self.waits.clear()  # nobody awaits the waits of a closed loop
        with self.lock:
            ptr, self.ptr = self.ptr, None
        lib.cm_waiter_free(ptr)

    def _unwatch(self) -> None:
        """Stops the loop watching the descriptor before the waiter (and the descriptor) is
        freed: a descriptor number reused afterwards (another waiter's) must not find this
        one's reader still registered, nor lose its own to a late removal."""
        if self.fd < 0 or self.loop.is_closed():
            return
        if _running_loop() is self.loop or not self.loop.is_running():
            self._stop_watching()
            return
        done = threading.Event()

        def stop() -> None:
            self._stop_watching()
            done.set()

        try:
            self.loop.call_soon_threadsafe(stop)
        except RuntimeError:  # closed meanwhile
            return
        # Bounded: a loop that does not come back to its callbacks within this time is stuck,
        # and its descriptor is dropped from epoll when the library closes it.
        done.wait(_UNWATCH_WAIT_S)

    def _stop_watching(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            self.fd = -1


class _AsyncState:
    """What an AsyncClient's closing frees before the cm_client (its waiters, its pool), apart
    from the AsyncClient so that the client's finalizer does not keep it alive."""

    def __init__(self, handle: _Handle, workers: int, waiter_thread: bool) -> None:
        self.handle = handle
        self.executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="capmonster")
        self.lock = threading.Lock()
        self.waiters: dict[asyncio.AbstractEventLoop, _LoopWaiter] = {}
        self.waiter_thread = waiter_thread
        self.freed = False
        handle.before_free.append(self.free)

    def waiter(self, loop: asyncio.AbstractEventLoop) -> _LoopWaiter:
        with self.lock:
            if self.freed:  # closing began after the caller's check
                raise ClientClosedError("the client is closed")
            waiter = self.waiters.get(loop)
            if waiter is None:
                # A closed loop's waiter has nobody left to await it.
                for old in [lp for lp in self.waiters if lp.is_closed()]:
                    self.waiters.pop(old).free()
                waiter = _LoopWaiter(self.handle, loop, self.waiter_thread)
                self.waiters[loop] = waiter
            return waiter

    def pending(self) -> int:
        with self.lock:
            return sum(lib.cm_waiter_pending(w.ptr) for w in self.waiters.values() if w.ptr is not None)

    def free(self) -> None:
        with self.lock:
            self.freed = True
            waiters, self.waiters = list(self.waiters.values()), {}
        for waiter in waiters:
            waiter.free()
        self.executor.shutdown(wait=False)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AsyncClient:
    """An asyncio client of the CapMonster Cloud API for one account key.

    Single calls (``create_task``, ``get_task_result``, ``get_balance``, the reports) run on a
    pool of at most ``max_connections`` threads, so they never block the event loop. Waits
    (``wait_result``, ``solve``) run in the library: one ``cm_waiter`` per client and event
    loop, whose descriptor the loop watches, so that ten thousand awaits cost no thread each.
    Cancelling the awaiting task cancels the call or wait in flight within milliseconds and
    raises ``asyncio.CancelledError``. Several event loops (one per thread) may share a client.

    The arguments are ``Client``'s. Use ``async with``, or ``await aclose()``.
    """

    def __init__(
        self,
        client_key: str,
        *,
        base_url: Optional[str] = None,
        request_timeout: Optional[float] = None,
        proxy: Union[str, Literal[False], None] = None,
        ca_file: Optional[str] = None,
        max_connections: Optional[int] = None,
        soft_id: Optional[int] = None,
        engine: Optional[int] = None,
        user_agent_url: Optional[str] = None,
        _waiter_thread: bool = False,
    ) -> None:
        self._client = Client(
            client_key,
            base_url=base_url,
            request_timeout=request_timeout,
            proxy=proxy,
            ca_file=ca_file,
            max_connections=max_connections,
            soft_id=soft_id,
            engine=engine,
            user_agent_url=user_agent_url,
        )
        self._handle = self._client._handle
        workers = max_connections if max_connections and max_connections > 0 else _SINGLE_CALL_THREADS
        self._state = _AsyncState(self._handle, workers, _waiter_thread)
        self._executor = self._state.executor

    def _waiter(self, loop: asyncio.AbstractEventLoop) -> _LoopWaiter:
        return self._state.waiter(loop)

    async def _run(self, function: Callable[..., T], *args: Any, cancel: Optional[Cancel], **kwargs: Any) -> T:
        """Runs a call of the blocking client on the pool with a Cancel that the awaiting task's
        cancellation triggers (and the caller's ``cancel`` too)."""
        self._handle.check()
        own = Cancel()
        if cancel is not None:  # before the call starts: a triggered one ends it at once
            cancel._link(own)
        loop = asyncio.get_running_loop()
        job = functools.partial(function, *args, cancel=own, **kwargs)
        try:
            future = loop.run_in_executor(self._executor, job)
        except BaseException:
            if cancel is not None:
                cancel._unlink(own)
            raise
        try:
            return await future
        except asyncio.CancelledError:
            own.cancel()
            raise
        finally:
            if cancel is not None:
                cancel._unlink(own)

    async def create_task(
        self,
        task: Task,
        callback_url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> int:
        """``Client.create_task``, awaited."""
        return await self._run(self._client.create_task, task, callback_url, timeout=timeout, cancel=cancel)

    async def get_task_result(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> TaskResult:
        """``Client.get_task_result``, awaited."""
        return await self._run(self._client.get_task_result, task_id, timeout=timeout, cancel=cancel)

    async def get_balance(self, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> float:
        """``Client.get_balance``, awaited."""
        return await self._run(self._client.get_balance, timeout=timeout, cancel=cancel)

    async def get_user_agent(self, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> str:
        """``Client.get_user_agent``, awaited."""
        return await self._run(self._client.get_user_agent, timeout=timeout, cancel=cancel)

    async def report_incorrect_image(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> None:
        """``Client.report_incorrect_image``, awaited."""
        await self._run(self._client.report_incorrect_image, task_id, timeout=timeout, cancel=cancel)

    async def report_incorrect_token(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> None:
        """``Client.report_incorrect_token``, awaited."""
        await self._run(self._client.report_incorrect_token, task_id, timeout=timeout, cancel=cancel)

    async def end_stops(self) -> None:
        """``Client.end_stops``, awaited."""
        self._handle.check()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._client.end_stops)

    async def wait_result(
        self,
        task_id: int,
        *,
        task_type: Optional[str] = None,
        first_delay: Optional[float] = None,
        interval: Optional[float] = None,
        timeout: Optional[float] = None,
        max_requests: Optional[int] = None,
        cancel: Optional[Cancel] = None,
    ) -> TaskResult:
        """``Client.wait_result``, awaited: the wait runs in the library's waiter, the event loop
        only watches for its outcome. Cancelling the awaiting task cancels the wait."""
        task_id = _task_id(task_id)
        options = wait_options(task_type, first_delay, interval, timeout, max_requests)
        return await self._wait(task_id, options, cancel)

    async def _wait(self, task_id: int, options: _native.WaitOptions, cancel: Optional[Cancel]) -> TaskResult:
        return await self._on_waiter(task_id, lambda waiter, token: waiter.add(task_id, options, token), cancel)

    async def _on_waiter(
        self,
        task_id: int,
        add: Callable[[_LoopWaiter, _Token], asyncio.Future[_native.Outcome]],
        cancel: Optional[Cancel],
    ) -> TaskResult:
        """Adds a wait or solve to the loop's waiter with ``add`` and awaits its outcome."""
        loop = asyncio.get_running_loop()
        handle = self._handle
        handle.acquire(task_id)  # refuses a closed or forked client; keeps it while adding
        try:
            waiter = self._waiter(loop)
            token = _Token()
            try:
                future = add(waiter, token)
            except BaseException:
                token.free()
                raise
        finally:
            handle.release()
        if cancel is not None:
            cancel._link(token)
        try:
            outcome = await future
        except asyncio.CancelledError:
            token.trigger()  # the wait comes out cancelled, within milliseconds; nobody takes it
            raise
        finally:
            if cancel is not None:
                cancel._unlink(token)
            token.free()
        if outcome.code != 0:
            raise outcome.error()
        return TaskResult._of(outcome)

    async def solve(
        self,
        task: Task,
        callback_url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> TaskResult:
        """``Client.solve``, awaited: ``create_task`` then ``wait_result`` on the schedule of the
        task, ``timeout`` counted from the creation. With a library that has
        ``cm_waiter_add_solve``, both run in the library (the createTask on a thread of its own,
        not this client's thread pool), so a solve costs the event loop one add and one outcome."""
        if _native.cm_waiter_add_solve is None:
            options = task_wait_options(task, timeout)
            task_id = await self.create_task(task, callback_url, cancel=cancel)
            return await self._wait(task_id, options, cancel)
        json_text = _task_json(task)  # encoded once, for the schedule and the request
        options = task_wait_options(json_text, timeout)
        text = _c_string(json_text, "task")
        url = None if callback_url is None else _c_string(callback_url, "callback_url")
        return await self._on_waiter(0, lambda waiter, token: waiter.add_solve(text, url, options, token), cancel)

    def pending(self) -> int:
        """The waits of this client's waiters not yet taken (running or finished)."""
        return self._state.pending()

    async def aclose(self) -> None:
        """``Client.close``: waits in progress raise ``CallCancelledError``; the single calls in
        progress are waited for, off the loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """``Client.close``, blocking; also frees the waiters and the thread pool."""
        self._client.close()

    @property
    def closed(self) -> bool:
        """Whether the client is closed."""
        return self._client.closed

    def __reduce__(self) -> Any:
        raise TypeError("capmonster: an AsyncClient cannot be pickled (sent to another process): make one there")

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return repr(self._client).replace("capmonster.Client", "capmonster.AsyncClient", 1)
