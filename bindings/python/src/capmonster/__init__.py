"""libcapmonster for Python: a client of the CapMonster Cloud captcha-solving API.

``Client`` is blocking and thread-safe; ``AsyncClient`` is for asyncio. Both run on
libcapmonster, the C library (loaded with ctypes), which keeps the request budget of 120 per
task across the user's processes, the account guard, retries and the official schedules.

    import capmonster

    with capmonster.Client("YOUR_KEY") as client:
        result = client.solve({"type": "ImageToTextTask", "body": image_base64})
        print(result.solution["text"])

Every failed call raises a ``CapMonsterError``: one subclass per code of the library
(``APIError``, ``NetworkError``, ``TimedOutError``, ...), carrying the library's message.
"""

from ._async import AsyncClient
from ._client import Cancel, Client, ClientClosedError, ClientForkedError, Engine, Task, TaskResult, set_budget
from ._codes import (
    APIError,
    BadResponseError,
    BudgetExhaustedError,
    CallCancelledError,
    HTTPStatusError,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    TimedOutError,
)
from ._errors import CapMonsterError
from ._log import TRACE, log_to, stop_logging
from ._native import LIBRARY_PATH, version

__version__ = "0.2.0"
"""The version of this package (the library's it was made with)."""

__all__ = [
    "APIError",
    "AsyncClient",
    "BadResponseError",
    "BudgetExhaustedError",
    "CallCancelledError",
    "Cancel",
    "CapMonsterError",
    "Client",
    "ClientClosedError",
    "ClientForkedError",
    "Engine",
    "HTTPStatusError",
    "InternalError",
    "InvalidArgumentError",
    "LIBRARY_PATH",
    "NetworkError",
    "TRACE",
    "Task",
    "TaskResult",
    "TimedOutError",
    "log_to",
    "set_budget",
    "stop_logging",
    "version",
]
