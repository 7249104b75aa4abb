"""The base exception class: what the library says about a failed call, unchanged."""

from __future__ import annotations

from typing import Any, Optional


class CapMonsterError(Exception):
    """A call failed: the library's code and message, and what the service said.

    Catch a subclass to pick a code (``capmonster.APIError``, ``capmonster.TimedOutError``, ...;
    one per ``CM_ERR_*`` code of the C header), and look at ``api_error_code`` for the service's
    own error (``"ERROR_CAPTCHA_UNSOLVABLE"``, ...). ``str()`` is the code's name and the
    library's message, never reworded; neither holds the client key or proxy credentials.

    Attributes:
        code: the library's code (``CM_ERR_*`` value, never 0).
        code_name: its name, e.g. ``"CM_ERR_API"``.
        message: the library's one-line account of what happened.
        api_error_code: the service's errorCode for ``CM_ERR_API``, else None.
        api_error_description: the service's errorDescription when it sent one, else None.
        http_status: the status of the last answer, 0 when none arrived (also when the account
            guard answered locally).
        request_count: the HTTP requests the call sent, retries included (0: answered locally).
        task_id: the task the call was about, 0 when none.
    """

    code: int = 0
    code_name: str = "CM_ERR_UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        code_name: Optional[str] = None,
        api_error_code: Optional[str] = None,
        api_error_description: Optional[str] = None,
        http_status: int = 0,
        request_count: int = 0,
        task_id: int = 0,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if code_name is not None:
            self.code_name = code_name
        self.message = message
        self.api_error_code = api_error_code
        self.api_error_description = api_error_description
        self.http_status = http_status
        self.request_count = request_count
        self.task_id = task_id

    def _fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "code_name": self.code_name,
            "api_error_code": self.api_error_code,
            "api_error_description": self.api_error_description,
            "http_status": self.http_status,
            "request_count": self.request_count,
            "task_id": self.task_id,
        }

    def __str__(self) -> str:
        return f"{self.code_name}: {self.message}"

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}" for k, v in self._fields().items() if k not in ("code", "code_name") and v
        )
        return f"{type(self).__name__}({self.message!r}, code={self.code}{extra})"

    # Keyword arguments do not survive Exception's default pickling, and multiprocessing
    # pickles the exceptions a worker raises.
    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self._fields()))


def _rebuild(cls: type[CapMonsterError], message: str, fields: dict[str, Any]) -> CapMonsterError:
    return cls(message, **fields)
