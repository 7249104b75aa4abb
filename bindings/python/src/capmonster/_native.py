"""The C library through ctypes: finding it, declaring its functions, reading a cm_result.

Every function of include/capmonster.h that the package calls is declared here with its exact
argument and return types (a pointer left undeclared would be cut to a C int). Functions that
newer libraries add are looked up with ``optional`` so that the package still loads an older
library and says which function is missing when it is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pathlib
import sys
from ctypes import POINTER, Structure, c_char_p, c_double, c_int32, c_int64, c_uint32, c_uint64, c_void_p
from typing import Any, Optional

from . import _codes
from ._errors import CapMonsterError

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent

if sys.platform == "win32":
    _FILE_NAMES = ["capmonster.dll"]
elif sys.platform == "darwin":
    _FILE_NAMES = ["libcapmonster.dylib"]
else:
    _FILE_NAMES = ["libcapmonster.so"]


def _load() -> tuple[ctypes.CDLL, str]:
    """The library: the package's own copy (a wheel's), else $CAPMONSTER_LIBRARY, else the
    system loader's. The 32-bit Windows DLL exports stdcall functions: WinDLL calls them."""
    loader: Any = ctypes.CDLL
    if sys.platform == "win32" and ctypes.sizeof(c_void_p) == 4:
        loader = ctypes.WinDLL  # type: ignore[attr-defined]
    for name in _FILE_NAMES:
        bundled = _PACKAGE_DIR / name
        if bundled.exists():
            return loader(str(bundled)), str(bundled)
    override = os.environ.get("CAPMONSTER_LIBRARY")
    if override:
        return loader(override), override
    found = ctypes.util.find_library("capmonster")
    tried = [found] if found else []
    tried += _FILE_NAMES
    errors = []
    for candidate in tried:
        try:
            return loader(candidate), candidate
        except OSError as e:
            errors.append(str(e))
    raise ImportError(
        "capmonster: libcapmonster was not found: not in the package, CAPMONSTER_LIBRARY is not set, "
        "and the system loader has none (" + "; ".join(errors) + ")"
    )


lib, LIBRARY_PATH = _load()


class WaitOptions(Structure):
    """cm_wait_options."""

    _fields_ = [
        ("first_delay_ms", c_uint32),
        ("interval_ms", c_uint32),
        ("timeout_ms", c_uint32),
        ("max_requests", c_uint32),
        ("cancel", c_void_p),
    ]


class CallOptions(Structure):
    """cm_call_options."""

    _fields_ = [("timeout_ms", c_uint32), ("cancel", c_void_p)]


_R = POINTER(c_void_p)  # cm_result **out_result
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "cm_version": (c_char_p, []),
    "cm_code_name": (c_char_p, [c_int32]),
    "cm_client_new": (c_int32, [c_char_p, POINTER(c_void_p), _R]),
    "cm_client_set_base_url": (c_int32, [c_void_p, c_char_p, _R]),
    "cm_client_set_request_timeout_ms": (c_int32, [c_void_p, c_uint32, _R]),
    "cm_client_set_proxy": (c_int32, [c_void_p, c_char_p, _R]),
    "cm_client_set_ca_file": (c_int32, [c_void_p, c_char_p, _R]),
    "cm_client_set_max_connections": (c_int32, [c_void_p, c_uint32, _R]),
    "cm_client_set_soft_id": (c_int32, [c_void_p, c_uint32, _R]),
    "cm_client_end_stops": (c_int32, [c_void_p, _R]),
    "cm_client_free": (None, [c_void_p]),
    "cm_cancel_new": (c_int32, [POINTER(c_void_p)]),
    "cm_cancel_trigger": (None, [c_void_p]),
    "cm_cancel_free": (None, [c_void_p]),
    "cm_wait_options_init": (None, [POINTER(WaitOptions)]),
    "cm_wait_options_for_task_type": (c_int32, [POINTER(WaitOptions), c_char_p]),
    "cm_wait_result": (c_int32, [c_void_p, c_int64, POINTER(WaitOptions), _R]),
    "cm_waiter_new": (c_int32, [c_void_p, POINTER(c_void_p)]),
    "cm_waiter_add_with_result": (c_int32, [c_void_p, c_int64, POINTER(WaitOptions), c_uint64, _R]),
    "cm_waiter_next": (c_int32, [c_void_p, c_uint32, POINTER(c_uint64), _R]),
    "cm_waiter_fd": (c_int32, [c_void_p]),
    "cm_waiter_pending": (c_uint64, [c_void_p]),
    "cm_waiter_shutdown": (None, [c_void_p]),
    "cm_waiter_free": (None, [c_void_p]),
    "cm_call_options_init": (None, [POINTER(CallOptions)]),
    "cm_get_task_result_with": (c_int32, [c_void_p, c_int64, POINTER(CallOptions), _R]),
    "cm_create_task_with": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(CallOptions), POINTER(c_int64), _R]),
    "cm_get_balance_with": (c_int32, [c_void_p, POINTER(CallOptions), POINTER(c_double), _R]),
    "cm_report_incorrect_image_with": (c_int32, [c_void_p, c_int64, POINTER(CallOptions), _R]),
    "cm_report_incorrect_token_with": (c_int32, [c_void_p, c_int64, POINTER(CallOptions), _R]),
    "cm_result_code": (c_int32, [c_void_p]),
    "cm_result_is_ready": (c_int32, [c_void_p]),
    "cm_result_task_id": (c_int64, [c_void_p]),
    "cm_result_solution_json": (c_char_p, [c_void_p]),
    "cm_result_api_error_code": (c_char_p, [c_void_p]),
    "cm_result_api_error_description": (c_char_p, [c_void_p]),
    "cm_result_message": (c_char_p, [c_void_p]),
    "cm_result_request_count": (c_uint32, [c_void_p]),
    "cm_result_http_status": (c_int32, [c_void_p]),
    "cm_result_free": (None, [c_void_p]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes


def optional(name: str, restype: Any, argtypes: list[Any]) -> Optional[Any]:
    """A function that newer libraries have (e.g. issue 19's cm_get_user_agent), declared, or
    None when the loaded library lacks it."""
    function = getattr(lib, name, None)
    if function is not None:
        function.restype = restype
        function.argtypes = argtypes
    return function


# Functions newer libraries have (getUserAgent and the schedule of a whole task): None with an
# older library, whose calls then say what is missing.
cm_client_set_user_agent_url = optional("cm_client_set_user_agent_url", c_int32, [c_void_p, c_char_p, _R])
cm_get_user_agent_with = optional("cm_get_user_agent_with", c_int32, [c_void_p, POINTER(CallOptions), _R])
cm_result_text = optional("cm_result_text", c_char_p, [c_void_p])
cm_wait_options_for_task = optional("cm_wait_options_for_task", c_int32, [POINTER(WaitOptions), c_char_p])
cm_waiter_add_solve = optional(
    "cm_waiter_add_solve", c_int32, [c_void_p, c_char_p, c_char_p, POINTER(WaitOptions), c_uint64, _R]
)



class ClientStats(Structure):
    """cm_client_stats: ``size`` first (the library fills what fits), then the counters."""

    _fields_ = [("size", c_uint32), ("reserved", c_uint32)] + [
        (name, c_uint64)
        for name in (
            "requests_get_task_result",
            "requests_create_task",
            "requests_get_balance",
            "requests_report_incorrect_image",
            "requests_report_incorrect_token",
            "requests_get_user_agent",
            "answers_processing",
            "answers_ready",
            "answers_api_error",
            "answers_http_error",
            "answers_network_error",
            "answers_timeout",
            "answers_other",
            "retries",
            "budget_refusals",
            "guard_refusals",
            "connections_opened",
            "requests_in_flight",
            "waits_pending",
            "waits_finished",
            "bytes_sent",
            "bytes_received",
            "connections_open",
            "connections_idle",
        )
    ]


# cm_log_callback: stdcall on 32-bit Windows, like every function of the library.
_CALLBACK_TYPE: Any = ctypes.CFUNCTYPE
if sys.platform == "win32" and ctypes.sizeof(c_void_p) == 4:
    _CALLBACK_TYPE = ctypes.WINFUNCTYPE  # type: ignore[attr-defined]
LogCallback = _CALLBACK_TYPE(None, c_void_p, c_int32, c_char_p, c_char_p)

cm_client_get_stats = optional("cm_client_get_stats", c_int32, [c_void_p, POINTER(ClientStats)])
cm_set_log_callback = optional("cm_set_log_callback", c_int32, [c_int32, LogCallback, c_void_p])
cm_set_budget = optional("cm_set_budget", c_int32, [c_char_p, _R])
cm_client_set_engine = optional("cm_client_set_engine", c_int32, [c_void_p, c_uint32, _R])

def missing(function: str) -> CapMonsterError:
    """The error of a call that needs a function the loaded library lacks."""
    return _codes.InvalidArgumentError(
        f"{function} is not in {LIBRARY_PATH} (version {version()}): this needs a newer libcapmonster"
    )


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH" (cm_version)."""
    return str(lib.cm_version().decode())


def code_name(code: int) -> str:
    """The library's name of a code (cm_code_name), e.g. "CM_ERR_API"."""
    return str(lib.cm_code_name(code).decode())


# The classes were generated from a header: the library must agree on every name, or an
# exception would carry the wrong class.
for _code, _cls in _codes.BY_CODE.items():
    if code_name(_code) != _cls.code_name:
        raise ImportError(
            f"capmonster: {LIBRARY_PATH} (version {version()}) names code {_code} {code_name(_code)}, "
            f"this package {_cls.code_name} (header {_codes.HEADER_VERSION})"
        )


def _text(p: Optional[bytes]) -> Optional[str]:
    return None if p is None else p.decode("utf-8", "replace")


class Outcome:
    """What Python keeps of a cm_result, copied out before cm_result_free."""

    __slots__ = (
        "code",
        "ready",
        "task_id",
        "solution_json",
        "api_error_code",
        "api_error_description",
        "message",
        "request_count",
        "http_status",
        "text",
    )

    def __init__(self, r: Optional[int]) -> None:
        self.code: int = lib.cm_result_code(r)
        self.ready: bool = lib.cm_result_is_ready(r) == 1
        self.task_id: int = lib.cm_result_task_id(r)
        self.solution_json: Optional[str] = _text(lib.cm_result_solution_json(r))
        self.api_error_code: Optional[str] = _text(lib.cm_result_api_error_code(r))
        self.api_error_description: Optional[str] = _text(lib.cm_result_api_error_description(r))
        self.message: str = _text(lib.cm_result_message(r)) or ""
        self.request_count: int = lib.cm_result_request_count(r)
        self.http_status: int = lib.cm_result_http_status(r)
        self.text: Optional[str] = _text(cm_result_text(r)) if cm_result_text is not None else None

    def error(self, code: Optional[int] = None) -> CapMonsterError:
        """The exception for this outcome (of ``code`` when the return value says more)."""
        code = self.code if code is None else code
        cls = _codes.BY_CODE.get(code)
        fields: dict[str, Any] = dict(
            api_error_code=self.api_error_code,
            api_error_description=self.api_error_description,
            http_status=self.http_status,
            request_count=self.request_count,
            task_id=self.task_id,
        )
        if cls is None:  # a code newer than this package: the base class, with the library's name
            return CapMonsterError(self.message, code=code, code_name=code_name(code), **fields)
        return cls(self.message, **fields)


def code_error(code: int, function: str) -> CapMonsterError:
    """The error of a function that reports a code only (cm_cancel_new, cm_waiter_new)."""
    cls = _codes.BY_CODE.get(code)
    message = f"{function} returned {code_name(code)}"
    if cls is None:
        return CapMonsterError(message, code=code, code_name=code_name(code))
    return cls(message)


def take(r: c_void_p) -> Outcome:
    """Copies the result out and frees it."""
    try:
        return Outcome(r.value)
    finally:
        lib.cm_result_free(r)
