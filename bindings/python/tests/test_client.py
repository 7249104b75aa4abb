"""The blocking Client against the emulator: each call, each setting, every error family,
cancel and timeouts, threads sharing a client, close, and secrets kept out of text."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import pathlib
import pickle
import threading
import time

import pytest

import capmonster
from conftest import FAST, IMAGE_TASK, REPO

SECRET_KEY = "py-secret-key-5f3a9c"


def client(emulator, key, **settings) -> capmonster.Client:
    return capmonster.Client(key, base_url=emulator.url, proxy=False, **settings)


def test_the_installed_package_and_its_own_library_are_loaded():
    package = pathlib.Path(capmonster.__file__).resolve().parent
    assert REPO / "bindings" / "python" / "src" not in package.parents, "the tests must run on the installed wheel"
    if os.environ.get("CAPMONSTER_TEST_WHEEL"):
        assert pathlib.Path(capmonster.LIBRARY_PATH).parent == package
    assert capmonster.version() == capmonster.__version__
    assert (package / "py.typed").exists()


def test_every_code_class_has_the_librarys_name():
    from capmonster import _codes, _native

    assert len(_codes.BY_CODE) == 9
    for code, cls in _codes.BY_CODE.items():
        assert issubclass(cls, capmonster.CapMonsterError)
        assert cls.code == code and _native.code_name(code) == cls.code_name
    assert _native.code_name(1000) == "CM_ERR_UNKNOWN"


def test_create_get_wait_solve_balance_reports(emulator, key):
    with client(emulator, key) as c:
        task_id = c.create_task(IMAGE_TASK)
        assert task_id > 0
        first = c.get_task_result(task_id)
        assert first.task_id == task_id and not first.ready and first.solution is None
        assert first.request_count == 1 and first.http_status == 200
        result = c.wait_result(task_id, **FAST)
        assert result.ready and result.solution == {"text": "answer"}
        assert json.loads(result.solution_json) == {"text": "answer"}
        solved = c.solve(json.dumps(IMAGE_TASK))  # a task as JSON text
        assert solved.solution["text"] == "answer"
        assert c.get_balance() == pytest.approx(345.678)
        c.report_incorrect_image(task_id)
        c.report_incorrect_token(task_id)
        assert emulator.requests("reportIncorrectImageCaptcha") == 1
        assert emulator.requests("reportIncorrectTokenCaptcha") == 1
        c.end_stops()


def test_solution_json_is_the_services_text(emulator, key):
    solution = {"gRecaptchaResponse": "03AGdBq2\u00e9\\\"x", "cookies": {"a": "b"}, "n": 1.50}
    task_id = emulator.task()
    emulator.script(task_id, [{"ready": solution}])
    with client(emulator, key) as c:
        result = c.get_task_result(task_id)
    assert result.ready and result.solution == solution
    assert "1.5" in result.solution_json and json.loads(result.solution_json) == solution


def test_settings_reach_the_library_and_refusals_carry_its_message(emulator, key):
    with client(emulator, key, request_timeout=5, max_connections=3, soft_id=77) as c:
        c.create_task(IMAGE_TASK)
    assert emulator.stats()["lastSoftId"] == 77
    refused = {
        "base_url": dict(base_url="http://example.com"),
        "timeout_ms": dict(request_timeout=0),
        "max_connections": dict(max_connections=0),
        "ca_file": dict(ca_file="/nonexistent/ca.pem"),
        "proxy": dict(proxy="ftp://127.0.0.1:1"),
    }
    for name, settings in refused.items():
        settings.setdefault("base_url", emulator.url)
        with pytest.raises(capmonster.InvalidArgumentError) as e:
            capmonster.Client(key, **settings)
        assert e.value.code == 1 and e.value.code_name == "CM_ERR_INVALID_ARGUMENT"
        assert name in e.value.message, e.value.message  # the library names the argument
        assert str(e.value) == "CM_ERR_INVALID_ARGUMENT: " + e.value.message
    with pytest.raises(capmonster.InvalidArgumentError, match="client_key"):
        capmonster.Client("")
    with pytest.raises(capmonster.InvalidArgumentError, match="NUL"):
        capmonster.Client("a\0b")


def test_error_families(emulator, key):
    with client(emulator, key) as c:
        # The service's error.
        with pytest.raises(capmonster.APIError) as api:
            c.get_task_result(987654)
        assert api.value.api_error_code == "ERROR_NO_SUCH_CAPCHA_ID" and api.value.api_error_description
        assert api.value.request_count == 1 and api.value.http_status == 200 and api.value.task_id == 987654
        # A status without an API body.
        task_id = emulator.task()
        emulator.script(task_id, [{"raw": "<html>busy</html>", "status": 503, "content_type": "text/html"}])
        with pytest.raises(capmonster.HTTPStatusError) as status:
            c.get_task_result(task_id)
        assert status.value.http_status == 503
        # Not what the API promises.
        emulator.script(task_id, [{"fault": "garbage"}])
        with pytest.raises((capmonster.BadResponseError, capmonster.NetworkError)):
            c.get_task_result(task_id)
        emulator.script(task_id, [{"json": {"errorId": 0, "status": "sleeping"}}])
        with pytest.raises(capmonster.BadResponseError):
            c.get_task_result(task_id)
        # A call's timeout.
        emulator.script(task_id, [{"fault": "stall", "ms": 5000}])
        started = time.monotonic()
        with pytest.raises(capmonster.TimedOutError):
            c.get_task_result(task_id, timeout=0.2)
        assert time.monotonic() - started < 2
        # A wait's budget of requests.
        emulator.script(task_id, ["processing"])
        with pytest.raises(capmonster.BudgetExhaustedError) as budget:
            c.wait_result(task_id, first_delay=0, interval=0.01, max_requests=3)
        assert budget.value.request_count == 3
        # A bad argument, refused by the library before anything is sent.
        with pytest.raises(capmonster.InvalidArgumentError):
            c.create_task("{not json")
        with pytest.raises(capmonster.InvalidArgumentError):
            c.wait_result(task_id, interval=0)
        # The binding's own checks: types C cannot carry.
        with pytest.raises(capmonster.InvalidArgumentError):
            c.get_task_result(2**70)
        with pytest.raises(TypeError):
            c.get_task_result("1")  # type: ignore[arg-type]
    # Nobody listening.
    closed_port = emulator.url
    emulator.stop()
    with capmonster.Client(key, base_url=closed_port, proxy=False) as c:
        with pytest.raises(capmonster.NetworkError) as network:
            c.get_balance()
        assert network.value.http_status == 0 and network.value.request_count >= 1


def test_errors_pickle_for_multiprocessing(emulator, key):
    with client(emulator, key) as c, pytest.raises(capmonster.APIError) as e:
        c.get_task_result(987654)
    copy = pickle.loads(pickle.dumps(e.value))
    assert type(copy) is capmonster.APIError and str(copy) == str(e.value)
    assert copy.api_error_code == e.value.api_error_code and copy.request_count == 1


def test_cancel_from_another_thread_ends_a_wait_and_a_request_in_flight(emulator, key):
    with client(emulator, key) as c:
        task_id = emulator.task(solve_after_ms=60000)
        cancel = capmonster.Cancel()
        threading.Timer(0.3, cancel.cancel).start()
        started = time.monotonic()
        with pytest.raises(capmonster.CallCancelledError):
            c.wait_result(task_id, first_delay=0, interval=0.05, cancel=cancel)
        assert 0.25 < time.monotonic() - started < 0.6  # loose: a loaded machine
        assert cancel.cancelled

        emulator.script(task_id, [{"fault": "stall", "ms": 10000}])
        cancel = capmonster.Cancel()
        threading.Timer(0.3, cancel.cancel).start()
        started = time.monotonic()
        with pytest.raises(capmonster.CallCancelledError):
            c.get_task_result(task_id, cancel=cancel)
        assert time.monotonic() - started < 0.6
        # A triggered Cancel ends the calls given it at once.
        with pytest.raises(capmonster.CallCancelledError):
            c.get_balance(cancel=cancel)


def test_threads_share_one_client(emulator, key):
    emulator.stop()
    from conftest import Emulator

    fast = Emulator("--solve-after-ms", "50")
    try:
        with client(fast, key, max_connections=8) as c:
            def work(_):
                return c.solve(IMAGE_TASK, timeout=20).solution["text"]

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(work, range(160)))
        assert answers == ["answer"] * 160
        assert fast.requests("createTask") == 160
        assert fast.stats()["connections"] <= 8 * 3  # the cap, with reconnects
    finally:
        fast.stop()


def test_close_cancels_waits_and_refuses_later_calls(emulator, key):
    c = client(emulator, key)
    task_id = emulator.task(solve_after_ms=60000)
    outcome = []

    def wait():
        try:
            c.wait_result(task_id, first_delay=0, interval=0.05)
        except capmonster.CapMonsterError as e:
            outcome.append(e)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.2)
    c.close()
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], capmonster.CallCancelledError)
    with pytest.raises(capmonster.ClientClosedError) as e:
        c.get_balance()
    assert isinstance(e.value, capmonster.InvalidArgumentError) and "closed" in str(e.value)
    assert c.closed and "closed" in repr(c)
    c.close()  # idempotent


def test_secrets_never_in_text(emulator):
    proxy_password = "pr0xy-pa55"
    with capmonster.Client(SECRET_KEY, base_url=emulator.url, proxy=f"http://user:{proxy_password}@127.0.0.1:9") as c:
        texts = [repr(c), str(c)]
        for call in (c.get_balance, lambda: c.get_task_result(1), lambda: c.create_task(IMAGE_TASK)):
            with pytest.raises(capmonster.CapMonsterError) as e:
                call()
            texts += [str(e.value), repr(e.value), repr(e.value.__reduce__())]
    with pytest.raises(capmonster.InvalidArgumentError) as e:
        capmonster.Client(SECRET_KEY, proxy=f"ftp://user:{proxy_password}@127.0.0.1:9")
    texts += [str(e.value), repr(e.value)]
    with pytest.raises(capmonster.InvalidArgumentError) as e:
        capmonster.Client(SECRET_KEY, base_url=f"http://user:{proxy_password}@127.0.0.1:9")
    texts += [str(e.value), repr(e.value)]
    for text in texts:
        assert SECRET_KEY not in text and proxy_password not in text, text


def test_account_guard_answers_locally_after_a_revoked_key(emulator, key):
    emulator.account(revokedKeys=[key])
    with client(emulator, key) as c:
        with pytest.raises(capmonster.APIError) as first:
            c.get_balance()
        assert first.value.api_error_code == "ERROR_KEY_DOES_NOT_EXIST" and first.value.request_count == 1
        sent = emulator.requests("getBalance") + emulator.requests("createTask")
        for call in (c.get_balance, lambda: c.create_task(IMAGE_TASK), lambda: c.get_task_result(5)):
            with pytest.raises(capmonster.APIError) as local:
                call()
            assert local.value.api_error_code == "ERROR_KEY_DOES_NOT_EXIST"
            assert local.value.request_count == 0 and local.value.http_status == 0
            assert local.value.message == first.value.message or local.value.message
        assert emulator.requests("getBalance") + emulator.requests("createTask") == sent
        # The key fixed: end_stops lets calls out at once.
        emulator.account(revokedKeys=[])
        c.end_stops()
        assert c.get_balance() == pytest.approx(345.678)


def test_zero_balance_stops_create_task_only(emulator, key):
    emulator.account(balance=0)
    with client(emulator, key) as c:
        with pytest.raises(capmonster.APIError) as first:
            c.create_task(IMAGE_TASK)
        assert first.value.api_error_code == "ERROR_ZERO_BALANCE" and first.value.request_count == 1
        with pytest.raises(capmonster.APIError) as local:
            c.create_task(IMAGE_TASK)
        assert local.value.request_count == 0
        assert c.get_balance() == 0
        emulator.account(balance=10)
        c.end_stops()
        assert c.create_task(IMAGE_TASK) > 0


def test_get_user_agent_or_a_clear_refusal_with_an_older_library(emulator, key):
    from capmonster import _native

    if _native.cm_get_user_agent_with is None:
        # A library from before getUserAgent: the call and the setting say what is missing.
        with client(emulator, key) as c, pytest.raises(capmonster.InvalidArgumentError, match="newer libcapmonster"):
            c.get_user_agent()
        with pytest.raises(capmonster.InvalidArgumentError, match="cm_client_set_user_agent_url"):
            client(emulator, key, user_agent_url=emulator.url + "/useragent")
        return
    with client(emulator, key, user_agent_url=emulator.url + "/useragent") as c:
        agent = c.get_user_agent()
    assert agent.startswith("Mozilla/5.0") and "\n" not in agent
    assert emulator.requests("getUserAgent") == 1


def test_log_to_sends_every_line_to_logging_without_the_key(emulator):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("capmonster-test")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    capmonster.log_to(logger)
    try:
        task_id = emulator.task()
        emulator.script(task_id, [{"raw": "", "status": 503}, "processing", {"ready": {"text": "ok"}}])
        with client(emulator, SECRET_KEY) as c:
            c.wait_result(task_id, **FAST)
            stats = c.stats()
        events = [record.capmonster_event for record in records]
        assert events.count("wait.start") == 1 and events.count("wait.end") == 1, events
        assert events.count("request") == 3 and events.count("wait.retry") == 1, events
        assert all(SECRET_KEY not in record.getMessage() for record in records)
        assert {record.levelno for record in records} <= {logging.DEBUG, logging.INFO, logging.WARNING}
        assert stats["requests_get_task_result"] == 3 == emulator.requests("getTaskResult")
        assert (stats["answers_http_error"], stats["answers_ready"], stats["retries"]) == (1, 1, 1)
        assert (stats["waits_pending"], stats["waits_finished"]) == (0, 1)
        assert 1 <= stats["connections_open"] == stats["connections_idle"] <= stats["connections_opened"]

        # A handler that raises loses its line, nothing else.
        class Raise(logging.Handler):
            def emit(self, record):
                raise RuntimeError("a handler that raises")

        logger.addHandler(Raise())
        logger.raiseExceptions = False
        with client(emulator, SECRET_KEY + "-2") as c:
            assert c.get_balance() > 0
    finally:
        capmonster.stop_logging()
    count = len(records)
    with client(emulator, SECRET_KEY + "-3") as c:
        c.get_balance()
    assert len(records) == count, "nothing logged after stop_logging"
