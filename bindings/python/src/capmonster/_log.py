"""The library's log hook (cm_set_log_callback) as records of the ``logging`` module."""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from . import _native

TRACE = 5
"""The ``logging`` level of the library's trace lines (below ``logging.DEBUG``)."""

# CM_LOG_* -> logging's levels.
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: TRACE}

_lock = threading.Lock()
_logger: Optional[logging.Logger] = None
# Kept alive for as long as the library may call it (ctypes frees a callback with its object).
_callback: Any = None


def _on_line(user_data: Any, level: int, event: bytes, message: bytes) -> None:
    logger = _logger
    if logger is None:
        return
    try:
        text = message.decode("utf-8", "replace")
        name = event.decode("utf-8", "replace")
        logger.log(_LEVELS.get(level, TRACE), "%s: %s", name, text, extra={"capmonster_event": name})
    except Exception:  # noqa: BLE001 - nothing may unwind into the library's C frames
        pass


def log_to(logger: Optional[logging.Logger] = None) -> None:
    """Sends the library's log lines to ``logger`` (default: ``logging.getLogger("capmonster")``),
    process-wide, at the levels it is enabled for when this is called (``TRACE`` is 5). Each
    record's message is ``"<event>: <message>"`` and its ``capmonster_event`` attribute the stable
    event name ("request", "answer", "wait.start", ...). Lines never hold the client key or proxy
    credentials. The records are made on the library's threads; handlers must not make blocking
    calls into the library. ``log_to(None)`` after a logger was set removes it: call
    ``stop_logging()``.
    """
    global _logger, _callback
    if _native.cm_set_log_callback is None:
        raise _native.missing("cm_set_log_callback")
    logger = logger if logger is not None else logging.getLogger("capmonster")
    level = 1
    for cm_level in (2, 3, 4, 5):
        if logger.isEnabledFor(_LEVELS[cm_level]):
            level = cm_level
    with _lock:
        _logger = logger
        if _callback is None:
            _callback = _native.LogCallback(_on_line)
        _native.cm_set_log_callback(level, _callback, None)


def stop_logging() -> None:
    """Removes the logger set by ``log_to``: the library logs nothing (nor what CAPMONSTER_LOG
    asked for)."""
    global _logger
    if _native.cm_set_log_callback is None:
        return
    with _lock:
        _native.cm_set_log_callback(1, _native.LogCallback(), None)
        _logger = None
