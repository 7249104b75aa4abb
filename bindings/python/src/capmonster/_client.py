"""The blocking client: Client, Cancel, TaskResult and the handle that guards a cm_client."""

from __future__ import annotations

import ctypes
import enum
import json
import math
import os
import threading
import urllib.parse
import weakref
from ctypes import byref, c_double, c_int64, c_void_p
from typing import Any, Callable, Literal, Mapping, Optional, Union

from . import _codes, _native
from ._errors import CapMonsterError
from ._native import CallOptions, WaitOptions, lib

_UINT32_MAX = 2**32 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Task = Union[Mapping[str, Any], str]
"""A task: the API's ``task`` object (with its ``"type"``) as a mapping, or as JSON text."""


class Engine(enum.IntEnum):
    """How a client's waits send their requests (the C API's ``CM_ENGINE_*``); the rules of a
    wait are the same on both."""

    EVENT_LOOP = 1
    """Requests in flight are futures on one event loop: at most three library threads per
    client, whatever the number of waits."""
    THREADS = 2
    """Each request in flight is sent by a worker thread that blocks until its answer, at most
    ``max_connections`` of them."""


class ClientClosedError(_codes.InvalidArgumentError):
    """A call on a closed client (code CM_ERR_INVALID_ARGUMENT; nothing was sent)."""


class ClientForkedError(_codes.InvalidArgumentError):
    """A call in a child process on a client made before ``os.fork`` (code
    CM_ERR_INVALID_ARGUMENT; nothing was sent). The library's threads and connections stay
    with the parent: make a new client in the child."""


def _milliseconds(seconds: float) -> int:
    """Seconds as the C API's milliseconds: a fraction rounded up, negative as 0, capped."""
    if seconds != seconds:  # NaN
        raise ValueError("capmonster: a duration is NaN")
    if seconds <= 0:
        return 0
    return min(math.ceil(seconds * 1000), _UINT32_MAX)


def _call_timeout(timeout: Optional[float]) -> int:
    """A per-call timeout: None is the client's request timeout (0 in C); anything else at
    least 1 ms, so that 0 s means "no time" rather than "the client's"."""
    return 0 if timeout is None else max(_milliseconds(timeout), 1)


def _count(value: int, what: str) -> int:
    """A whole number for a uint32 field: negative as 0 (refused by the library where 0 is),
    beyond the C type capped."""
    if not isinstance(value, int):
        raise TypeError(f"capmonster: {what} must be an int, not {type(value).__name__}")
    return min(max(value, 0), _UINT32_MAX)


def _task_id(task_id: int) -> int:
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise TypeError(f"capmonster: task_id must be an int, not {type(task_id).__name__}")
    if not _INT64_MIN <= task_id <= _INT64_MAX:
        raise _codes.InvalidArgumentError(f"task_id {task_id} is beyond a 64-bit integer", task_id=0)
    return task_id


def _c_string(value: str, what: str) -> bytes:
    """UTF-8 for C. C strings end at the first NUL: a string holding one is refused rather
    than silently cut."""
    if not isinstance(value, str):
        raise TypeError(f"capmonster: {what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise _codes.InvalidArgumentError(f"{what} contains a NUL character")
    return value.encode("utf-8", "surrogatepass")


def set_budget(budget: Optional[str]) -> None:
    """Chooses where the request budget and the account guard's stops are kept, in place of
    the ``CAPMONSTER_BUDGET`` variable (cm_set_budget): ``"shared"`` (the machine's file, the
    default), ``"process"``, or a ``redis://`` / ``rediss://`` URL shared by every host that
    names it; ``None`` goes back to the variable's choice. Only before the process's first
    client: later it raises ``InvalidArgumentError`` and changes nothing.
    """
    if _native.cm_set_budget is None:
        raise _native.missing("cm_set_budget")
    value = None if budget is None else _c_string(budget, "budget")
    r = c_void_p()
    _check(_native.cm_set_budget(value, byref(r)), r)


class _Token:
    """One cm_cancel, made for one call or wait and freed after it."""

    __slots__ = ("ptr",)

    def __init__(self) -> None:
        ptr = c_void_p()
        code = lib.cm_cancel_new(byref(ptr))
        if code != 0:
            raise _native.code_error(code, "cm_cancel_new")
        self.ptr: Optional[int] = ptr.value

    def trigger(self) -> None:
        lib.cm_cancel_trigger(self.ptr)

    def free(self) -> None:
        ptr, self.ptr = self.ptr, None
        lib.cm_cancel_free(ptr)


class Cancel:
    """A cancel that any thread may trigger: the calls and waits given it end with
    ``CallCancelledError`` within milliseconds, also while a request is in flight.

    One Cancel may be given to many calls, before or after it is triggered (a call given a
    triggered one ends at once). Each call runs with a ``cm_cancel`` of its own, which this
    object triggers; so a Cancel holds no library object while no call uses it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._triggered = False
        self._tokens: set[Any] = set()  # each with a trigger(): a call's _Token, an inner Cancel

    def cancel(self) -> None:
        """Triggers it: idempotent; it stays triggered."""
        # Under the lock: a call unlinks its token (under it) before freeing it, so none is
        # triggered after its free. cm_cancel_trigger never blocks.
        with self._lock:
            self._triggered = True
            for token in self._tokens:
                token.trigger()

    trigger = cancel  # so that a Cancel may be linked to another

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._triggered

    def _link(self, token: Any) -> None:
        with self._lock:
            self._tokens.add(token)
            if self._triggered:
                token.trigger()

    def _unlink(self, token: Any) -> None:
        with self._lock:
            self._tokens.discard(token)

    def __repr__(self) -> str:
        return f"<capmonster.Cancel {'cancelled' if self._triggered else 'not cancelled'}>"


class TaskResult:
    """The state of a task: processing, or ready with its solution.

    Attributes:
        task_id: the task.
        ready: True when solved; ``solution`` then holds the solution.
        solution_json: the solution object exactly as the service sent it (JSON text), None
            unless ready.
        request_count: the HTTP requests the call sent, retries included.
        http_status: the status of the last answer.
    """

    __slots__ = ("task_id", "ready", "solution_json", "request_count", "http_status", "_solution")

    def __init__(self, task_id: int, ready: bool, solution_json: Optional[str], request_count: int, http_status: int):
        self.task_id = task_id
        self.ready = ready
        self.solution_json = solution_json
        self.request_count = request_count
        self.http_status = http_status
        self._solution: Optional[dict[str, Any]] = None

    @classmethod
    def _of(cls, outcome: _native.Outcome) -> "TaskResult":
        return cls(outcome.task_id, outcome.ready, outcome.solution_json, outcome.request_count, outcome.http_status)

    @property
    def solution(self) -> Optional[dict[str, Any]]:
        """The solution as a dict (parsed once from ``solution_json``), None unless ready."""
        if self._solution is None and self.solution_json is not None:
            self._solution = json.loads(self.solution_json)
        return self._solution

    def __repr__(self) -> str:
        state = "ready" if self.ready else "processing"
        return f"<capmonster.TaskResult task {self.task_id} {state}, {self.request_count} requests>"


class _Handle:
    """A cm_client and what guards it: the calls in progress (so that closing frees it only
    after they returned), the cancels of the waits in progress (closing triggers them), and
    the process that made it (a child of fork must not touch it).

    Nothing here refers to the Client, so that the Client's finalizer can close it.
    """

    def __init__(self, ptr: int) -> None:
        self.ptr: Optional[int] = ptr
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.active = 0
        self.closing = False
        self.waits: set[_Token] = set()
        # What else closing must free first (the asyncio waiters): callables run once.
        self.before_free: list[Callable[[], None]] = []

    def check(self, task_id: int = 0) -> None:
        if os.getpid() != self.pid:
            raise ClientForkedError(
                f"this client was made in process {self.pid}, before os.fork: "
                f"make a new client in this process ({os.getpid()})",
                task_id=task_id,
            )
        if self.closing:
            raise ClientClosedError("the client is closed", task_id=task_id)

    def acquire(self, task_id: int = 0, wait: Optional[_Token] = None) -> int:
        """The live cm_client for one call; ``release`` when C is done with it. A wait's token
        is triggered by close."""
        with self.lock:
            self.check(task_id)
            self.active += 1
            if wait is not None:
                self.waits.add(wait)
            assert self.ptr is not None
            return self.ptr

    def release(self, wait: Optional[_Token] = None) -> None:
        with self.lock:
            self.active -= 1
            if wait is not None:
                self.waits.discard(wait)
            if self.active == 0:
                self.idle.notify_all()

    def close(self) -> None:
        with self.lock:
            if self.ptr is None:
                return
            if os.getpid() != self.pid:
                # The parent's threads held the library's locks as they were at the fork: freeing
                # here could wait forever. The memory goes with this process.
                self.ptr = None
                return
            self.closing = True
            for token in self.waits:
                token.trigger()
            before, self.before_free = self.before_free, []
        for free in before:
            free()
        with self.lock:
            while self.active:
                self.idle.wait()
            ptr, self.ptr = self.ptr, None
        if ptr is not None:
            lib.cm_client_free(ptr)


def _check(code: int, r: c_void_p) -> _native.Outcome:
    """The outcome of a call that returned ``code``, raising its error unless CM_OK."""
    outcome = _native.take(r)
    if code != 0:
        raise outcome.error(code)
    return outcome


def _redacted(url: Optional[str]) -> Optional[str]:
    """A URL without its user:password@ (for repr)."""
    if url is None:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            if parts.port is not None:
                host += f":{parts.port}"
            return urllib.parse.urlunsplit(parts._replace(netloc=host))
    except ValueError:
        return "(unparsable)"
    return url


class Client:
    """A blocking client of the CapMonster Cloud API for one account key.

    Thread-safe: share one Client between the threads of a pool (it holds up to
    ``max_connections`` connections, reused). Use it as a context manager, or ``close`` it;
    a Client never closed is closed when it is garbage collected.

    Every setting is the C API's (``cm_client_set_*``), checked by the library: a refused
    one raises ``InvalidArgumentError`` with the library's message. Durations are seconds.

    Args:
        client_key: your account key; it is passed to the library and not kept here.
        base_url: the service's URL (default: the official one); ``http://`` only to a
            loopback host, such as the emulator.
        request_timeout: bounds each HTTP request (default: the library's, 21 s).
        proxy: a proxy URL (``http://``, ``https://``, ``socks4://``, ``socks4a://``,
            ``socks5://``, ``socks5h://``, optional ``user:password@``), or False for none
            whatever the environment says; None (the default): the environment decides, by
            curl's rules.
        ca_file: a PEM file of the only certificate authorities to trust (a private CA).
        max_connections: caps the connections held at once, calls and waits together
            (default: the library's, 64).
        soft_id: the software developer's id sent with every createTask.
        engine: how the waits send their requests (``Engine.EVENT_LOOP`` or ``Engine.THREADS``;
            default: the environment's ``CAPMONSTER_ENGINE``, else the library's); needs a
            library with ``cm_client_set_engine``.
        user_agent_url: where ``get_user_agent`` reads the User-Agent (default: the service's
            page); needs a library with getUserAgent.
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
    ) -> None:
        key = _c_string(client_key, "client_key")
        ptr = c_void_p()
        r = c_void_p()
        code = lib.cm_client_new(key, byref(ptr), byref(r))
        del key
        _check(code, r)
        handle = _Handle(ptr.value)  # type: ignore[arg-type]
        self._handle = handle
        self._finalizer = weakref.finalize(self, handle.close)
        self._base_url = _redacted(base_url)
        self._max_connections = max_connections
        try:
            p = handle.ptr
            if base_url is not None:
                self._set(lib.cm_client_set_base_url, p, _c_string(base_url, "base_url"))
            if request_timeout is not None:
                self._set(lib.cm_client_set_request_timeout_ms, p, _milliseconds(request_timeout))
            if proxy is False:
                self._set(lib.cm_client_set_proxy, p, None)
            elif proxy is not None:
                self._set(lib.cm_client_set_proxy, p, _c_string(proxy, "proxy"))
            if ca_file is not None:
                self._set(lib.cm_client_set_ca_file, p, _c_string(os.fspath(ca_file), "ca_file"))
            if max_connections is not None:
                self._set(lib.cm_client_set_max_connections, p, _count(max_connections, "max_connections"))
            if soft_id is not None:
                self._set(lib.cm_client_set_soft_id, p, _count(soft_id, "soft_id"))
            if engine is not None:
                if _native.cm_client_set_engine is None:
                    raise _native.missing("cm_client_set_engine")
                self._set(_native.cm_client_set_engine, p, _count(engine, "engine"))
            if user_agent_url is not None:
                if _native.cm_client_set_user_agent_url is None:
                    raise _native.missing("cm_client_set_user_agent_url")
                self._set(_native.cm_client_set_user_agent_url, p, _c_string(user_agent_url, "user_agent_url"))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _set(setter: Any, ptr: Optional[int], value: Any) -> None:
        r = c_void_p()
        _check(setter(ptr, value, byref(r)), r)

    # --- the calls ---------------------------------------------------------------------------

    def _single(
        self,
        task_id: int,
        timeout: Optional[float],
        cancel: Optional[Cancel],
        call: Callable[[int, Any, c_void_p], int],
    ) -> _native.Outcome:
        """One request through a ``_with`` function, with the call's timeout and a cm_cancel
        of its own that ``cancel`` triggers."""
        options = CallOptions(_call_timeout(timeout), None)
        token = _Token() if cancel is not None else None
        if token is not None:
            options.cancel = token.ptr
            cancel._link(token)  # type: ignore[union-attr]
        try:
            ptr = self._handle.acquire(task_id)
            try:
                r = c_void_p()
                code = call(ptr, byref(options), r)
            finally:
                self._handle.release()
            outcome = _native.take(r)
            if code != 0:
                error = outcome.error(code)
                if not error.task_id:
                    error.task_id = task_id
                raise error
            return outcome
        finally:
            if token is not None:
                cancel._unlink(token)  # type: ignore[union-attr]
                token.free()

    def create_task(
        self,
        task: Task,
        callback_url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> int:
        """Creates a task (createTask) and returns its id. Never retried: a duplicate would be a
        second paid task.

        Args:
            task: the API's ``task`` object, with its ``"type"``: a mapping (sent as JSON) or
                JSON text.
            callback_url: a URL the service will POST the result to.
            timeout: bounds the call, in seconds (default: the client's request timeout).
            cancel: ends the call with ``CallCancelledError`` when triggered; while the request
                is in flight the task may have been created (the message says so).
        """
        text = _c_string(_task_json(task), "task")
        url = None if callback_url is None else _c_string(callback_url, "callback_url")
        out = c_int64()

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(lib.cm_create_task_with(ptr, text, url, options, byref(out), byref(r)))

        self._single(0, timeout, cancel, call)
        return out.value

    def get_task_result(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> TaskResult:
        """Asks once for the state of a task (getTaskResult): ready or still processing. The
        request counts in the task's budget of 120, shared by the user's processes."""
        task_id = _task_id(task_id)

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(lib.cm_get_task_result_with(ptr, task_id, options, byref(r)))

        return TaskResult._of(self._single(task_id, timeout, cancel, call))

    def get_balance(self, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> float:
        """The account's balance in US dollars (getBalance)."""
        out = c_double()

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(lib.cm_get_balance_with(ptr, options, byref(out), byref(r)))

        self._single(0, timeout, cancel, call)
        return out.value

    def get_user_agent(self, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> str:
        """The browser User-Agent the service's workers use now, to put in a task's
        ``"userAgent"`` (getUserAgent). Needs a library that has it (libcapmonster after 0.2.0):
        with an older one, ``InvalidArgumentError`` saying so."""
        function = _native.cm_get_user_agent_with
        if function is None:
            raise _native.missing("cm_get_user_agent_with")

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(function(ptr, options, byref(r)))

        text = self._single(0, timeout, cancel, call).text
        assert text is not None  # the library's promise on CM_OK
        return text

    def report_incorrect_image(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> None:
        """Tells the service that the text it gave for an image captcha was wrong
        (reportIncorrectImageCaptcha). Never retried."""
        task_id = _task_id(task_id)

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(lib.cm_report_incorrect_image_with(ptr, task_id, options, byref(r)))

        self._single(task_id, timeout, cancel, call)

    def report_incorrect_token(
        self, task_id: int, *, timeout: Optional[float] = None, cancel: Optional[Cancel] = None
    ) -> None:
        """Tells the service that a token it gave (reCAPTCHA, Turnstile, ...) was refused by the
        site (reportIncorrectTokenCaptcha). Never retried."""
        task_id = _task_id(task_id)

        def call(ptr: int, options: Any, r: c_void_p) -> int:
            return int(lib.cm_report_incorrect_token_with(ptr, task_id, options, byref(r)))

        self._single(task_id, timeout, cancel, call)

    def wait_result(
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
        """Polls a task until it is ready and returns it (cm_wait_result), blocking this thread.

        The schedule is the library's defaults, or the official one of ``task_type`` (e.g.
        ``"ImageToTextTask"``); each argument given replaces its part. Network errors, request
        timeouts, HTTP 5xx/429 and ERROR_TOO_MUCH_REQUESTS are retried at the next poll.

        Args:
            task_id: the task.
            task_type: the task's type, for its official schedule.
            first_delay: seconds before the first request.
            interval: seconds between an answer and the next request.
            timeout: seconds for the whole wait, then ``TimedOutError``.
            max_requests: the most requests this wait may send (the task's budget of 120
                applies as well).
            cancel: ends the wait with ``CallCancelledError`` within milliseconds.

        Raises:
            CapMonsterError: the subclass of the library's code: ``APIError`` for the service's
                errors (``api_error_code``), ``TimedOutError``, ``BudgetExhaustedError``, ...
        """
        task_id = _task_id(task_id)
        options = wait_options(task_type, first_delay, interval, timeout, max_requests)
        return self._wait(task_id, options, cancel)

    def _wait(self, task_id: int, options: WaitOptions, cancel: Optional[Cancel]) -> TaskResult:
        token = _Token()
        options.cancel = token.ptr
        if cancel is not None:
            cancel._link(token)
        try:
            ptr = self._handle.acquire(task_id, wait=token)
            try:
                r = c_void_p()
                code = lib.cm_wait_result(ptr, task_id, byref(options), byref(r))
            finally:
                self._handle.release(wait=token)
            return TaskResult._of(_check(code, r))
        finally:
            if cancel is not None:
                cancel._unlink(token)
            token.free()

    def solve(
        self,
        task: Task,
        callback_url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> TaskResult:
        """Creates a task and waits for its solution on the official schedule of the task (its
        type; with a newer library also its class and "nocache"): ``create_task`` then
        ``wait_result``. ``timeout`` bounds the wait (the schedule's own otherwise); ``cancel``
        stops either."""
        options = task_wait_options(task, timeout)
        task_id = self.create_task(task, callback_url, cancel=cancel)
        return self._wait(task_id, options, cancel)

    def stats(self) -> dict[str, int]:
        """The client's counters since it was created (cm_client_get_stats), by name:
        ``requests_get_task_result`` .. ``requests_get_user_agent``, ``answers_processing``,
        ``answers_ready``, ``answers_api_error``, ``answers_http_error``,
        ``answers_network_error``, ``answers_timeout``, ``answers_other``, ``retries``,
        ``budget_refusals``, ``guard_refusals``, ``connections_opened``, ``requests_in_flight``,
        ``waits_pending``, ``waits_finished``, ``bytes_sent``, ``bytes_received``,
        ``connections_open``, ``connections_idle``. Cheap: no lock, nothing sent.
        """
        if _native.cm_client_get_stats is None:
            raise _native.missing("cm_client_get_stats")
        stats = _native.ClientStats()
        stats.size = ctypes.sizeof(stats)
        ptr = self._handle.acquire()
        try:
            code = _native.cm_client_get_stats(ptr, byref(stats))
        finally:
            self._handle.release()
        if code != 0:
            raise _native.code_error(code, "cm_client_get_stats")
        return {field[0]: int(getattr(stats, field[0])) for field in stats._fields_[2:]}

    def end_stops(self) -> None:
        """Ends the account guard's stops of this client's key and endpoint, in every process
        of the user (cm_client_end_stops): call it once the key, the address whitelist or the
        balance is fixed, so that calls go out at once rather than after the cool-down.

        While a stop is in force, a call it holds raises the service's own error
        (``APIError``, same ``api_error_code``) with ``request_count`` 0 and ``http_status`` 0.
        """
        ptr = self._handle.acquire()
        try:
            r = c_void_p()
            code = lib.cm_client_end_stops(ptr, byref(r))
        finally:
            self._handle.release()
        _check(code, r)

    # --- life --------------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the client: cancels its waits in progress (each raises ``CallCancelledError``),
        waits for its single calls in progress to return, then frees the library's client and
        its connections. Later calls raise ``ClientClosedError``. Idempotent. In a child process
        of ``os.fork`` it only forgets the parent's client."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._handle.ptr is None or self._handle.closing

    def __reduce__(self) -> Any:
        # The library's client lives in this process: a copy elsewhere could not reach it.
        raise TypeError("capmonster: a Client cannot be pickled (sent to another process): make one there")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._base_url or "the official service"
        state = " closed" if self.closed else ""
        return f"<capmonster.Client for {where}{state}>"


def _task_json(task: Task) -> str:
    if isinstance(task, str):
        return task
    if isinstance(task, Mapping):
        return json.dumps(task, separators=(",", ":"))
    raise TypeError(f"capmonster: a task is a mapping or JSON text, not {type(task).__name__}")


def _task_type(task: Task) -> Optional[str]:
    """The task's "type" member, for its schedule; None when it has none (the library then
    says what is wrong with the task)."""
    try:
        value = (json.loads(task) if isinstance(task, str) else task).get("type")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def task_wait_options(task: Task, timeout: Optional[float]) -> WaitOptions:
    """The official schedule of a task as created: cm_wait_options_for_task when the library
    has it, else the schedule of its "type"; ``timeout`` replaces the schedule's."""
    if _native.cm_wait_options_for_task is None:
        return wait_options(_task_type(task), timeout=timeout)
    options = WaitOptions()
    lib.cm_wait_options_init(byref(options))
    # A task the library cannot read keeps the defaults: create_task then says what is wrong.
    _native.cm_wait_options_for_task(byref(options), _c_string(_task_json(task), "task"))
    if timeout is not None:
        options.timeout_ms = _milliseconds(timeout)
    return options


def wait_options(
    task_type: Optional[str] = None,
    first_delay: Optional[float] = None,
    interval: Optional[float] = None,
    timeout: Optional[float] = None,
    max_requests: Optional[int] = None,
) -> WaitOptions:
    """A cm_wait_options: the library's defaults, or the schedule of ``task_type``, with the
    parts given replaced."""
    options = WaitOptions()
    if task_type is None:
        lib.cm_wait_options_init(byref(options))
    else:
        code = lib.cm_wait_options_for_task_type(byref(options), _c_string(task_type, "task_type"))
        if code != 0:
            raise _native.code_error(code, "cm_wait_options_for_task_type")
    if first_delay is not None:
        options.first_delay_ms = _milliseconds(first_delay)
    if interval is not None:
        options.interval_ms = _milliseconds(interval)
    if timeout is not None:
        options.timeout_ms = _milliseconds(timeout)
    if max_requests is not None:
        options.max_requests = _count(max_requests, "max_requests")
    return options
