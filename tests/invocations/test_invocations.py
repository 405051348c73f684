"""Background runs over HTTP: POST /api/v1/invocations, GET it, wait for it, follow its
events (and resume them), cancel it; Idempotency-Key; one run per session."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from scripts.stack import Server
from tests.invocations.live import (
    BASE_ENV,
    PROMPT,
    STRANGER,
    App,
    SseEvent,
    Stack,
    assert_error,
    assert_error_body,
    assert_invoke_response,
    new_session_id,
    sse_events_incrementally,
)
from tests.signing import DEV_PRINCIPAL, botocore_headers, botocore_send

pytestmark = pytest.mark.slow

FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
RUN_ENV = {
    "RUN_POLL_SECONDS": "0.05",
    "RUN_CANCEL_CHECK_SECONDS": "0.2",
    "SSE_HEARTBEAT_SECONDS": "1",
}
# Seven agents one after another: a run takes about 7 x the agent latency.
SLOW = ("--agent-latency-ms", "300")


class Runs:
    """Signed calls to the invocations endpoints of one app."""

    def __init__(self, app: App) -> None:
        self.base = f"{app.api.http_url}/api/v1"
        self.app = app

    def _post(
        self,
        path: str,
        document: dict[str, Any],
        *,
        idempotency_key: str | None,
        timeout: float,
        **sign: Any,
    ) -> httpx.Response:
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base}/{path}"
        signed = botocore_headers("POST", url, body=body, headers=headers, **sign)
        return httpx.post(url, content=body, headers={**headers, **signed}, timeout=timeout)

    def create(
        self, document: dict[str, Any], *, idempotency_key: str | None = None, **sign: Any
    ) -> httpx.Response:
        return self._post(
            "invocations", document, idempotency_key=idempotency_key, timeout=30, **sign
        )

    def invoke(
        self,
        document: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float = 60,
    ) -> httpx.Response:
        return self._post("invoke", document, idempotency_key=idempotency_key, timeout=timeout)

    def get(self, request_id: str, suffix: str = "", **sign: Any) -> httpx.Response:
        return botocore_send("GET", f"{self.base}/invocations/{request_id}{suffix}", **sign)

    def wait(self, request_id: str, timeout: float) -> dict[str, Any]:
        url = f"{self.base}/invocations/{request_id}/wait?timeout={timeout:g}"
        response = httpx.get(url, headers=botocore_headers("GET", url), timeout=timeout + 10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def cancel(self, request_id: str, **sign: Any) -> httpx.Response:
        return botocore_send("DELETE", f"{self.base}/invocations/{request_id}", **sign)

    def until_final(self, request_id: str, *, within: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            body = self.wait(request_id, min(5.0, max(0.1, deadline - time.monotonic())))
            if body["status"] in FINAL:
                return body
            assert time.monotonic() < deadline, body

    def events(
        self,
        request_id: str,
        *,
        last_event_id: int | None = None,
        stop_after: int | None = None,
        follow: bool = True,
    ) -> list[SseEvent]:
        """The events, read as they arrive; with ``stop_after``, the connection is closed
        after that many (a client that drops)."""
        url = f"{self.base}/invocations/{request_id}/events" + ("" if follow else "?follow=false")
        headers = botocore_headers("GET", url)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        seen: list[SseEvent] = []
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in sse_events_incrementally(response):
                seen.append(event)
                if stop_after is not None and len(seen) >= stop_after:
                    break
        return seen


@pytest.fixture(scope="module")
def runs(invoke_stack: Stack) -> Runs:
    return Runs(invoke_stack.app(**RUN_ENV))


@pytest.fixture(scope="module")
def slow_runs(invoke_stack: Stack) -> Runs:
    return Runs(invoke_stack.app(*SLOW, **RUN_ENV))


def _accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert response.headers["Location"] == f"/api/v1/invocations/{body['request_id']}"
    if response.headers.get("Idempotent-Replayed") != "true":
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert body["status"] in {"queued", "running"}
    assert body["links"]["events"].endswith(f"{body['request_id']}/events")
    return body


# --- state transitions ---------------------------------------------------------------------


def test_a_run_goes_from_queued_to_succeeded_with_the_invoke_response(runs: Runs) -> None:
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    assert accepted["result"] is None
    assert accepted["error"] is None
    assert accepted["created_at"].endswith("Z") or "+00:00" in accepted["created_at"]

    done = runs.until_final(accepted["request_id"])
    assert done["status"] == "succeeded"
    assert done["started_at"] is not None
    assert done["finished_at"] >= done["started_at"] >= accepted["created_at"]
    assert_invoke_response(done["result"], request_id=accepted["request_id"])
    assert done["result"]["session_id"] == accepted["session_id"]
    assert done["error"] is None

    polled = runs.get(accepted["request_id"])
    assert polled.status_code == 200
    assert polled.json() == done
    [interaction] = runs.app.interactions(accepted["session_id"])
    assert interaction["request_id"] == accepted["request_id"]
    assert interaction["status"] == "success"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("error-message", "failed", "RUNTIME_ERROR"),
        ("drop-mid-stream", "failed", "CONNECTION_FAILED"),
        ("hang-mid-stream", "timed_out", "TIMEOUT"),
    ],
)
def test_a_failing_run_ends_failed_or_timed_out_with_the_error_shape(
    invoke_stack: Stack, fault: str, status: str, code: str
) -> None:
    app = invoke_stack.fault(fault, AGENTCORE_DEADLINE_SECONDS="2", **RUN_ENV)
    runs = Runs(app)
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    done = runs.until_final(accepted["request_id"])
    assert done["status"] == status
    assert done["result"] is None
    assert_error_body(done["error"], code, request_id=accepted["request_id"])
    [interaction] = app.interactions(accepted["session_id"])
    assert interaction["status"] == ("timeout" if status == "timed_out" else "error")
    events = runs.events(accepted["request_id"])
    assert events[0].event == "start"
    assert events[-1].event == "error"
    assert events[-1].data == done["error"]


def test_cancelling_a_hanging_run_takes_under_2_seconds(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("hang-mid-stream", **RUN_ENV)
    runs = Runs(app)
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    request_id = accepted["request_id"]
    deadline = time.monotonic() + 10
    while runs.get(request_id).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # the runtime has sent its chunks and hangs

    began = time.monotonic()
    response = runs.cancel(request_id)
    elapsed = time.monotonic() - began
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert elapsed < 2.0, elapsed
    assert_error_body(response.json()["error"], "CANCELLED", request_id=request_id)
    [interaction] = app.interactions(accepted["session_id"])
    assert interaction["status"] == "cancelled"
    assert interaction["error_message"] == "CANCELLED: The run was cancelled before it ended."
    assert runs.events(request_id)[-1].event == "error"

    again = runs.cancel(request_id)
    assert_error(again, 409, "INVOCATION_FINISHED")


def test_a_queued_run_is_cancelled_before_it_starts(slow_runs: Runs) -> None:
    session_id = new_session_id()
    first = _accepted(slow_runs.create({"prompt": PROMPT, "session_id": session_id}))
    second = _accepted(
        slow_runs.create({"prompt": PROMPT, "session_id": session_id, "on_conflict": "enqueue"})
    )
    assert second["status"] == "queued"
    assert second["queued_behind"] == first["request_id"]
    response = slow_runs.cancel(second["request_id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["started_at"] is None
    assert slow_runs.until_final(first["request_id"])["status"] == "succeeded"
    statuses = [i["status"] for i in slow_runs.app.interactions(session_id)]
    assert statuses == ["success", "cancelled"]


def test_another_callers_run_is_not_found(runs: Runs) -> None:
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    request_id = accepted["request_id"]
    sign = {"key": STRANGER["key"], "secret": STRANGER["secret"]}
    for response in (
        runs.get(request_id, **sign),
        runs.get(request_id, "/wait?timeout=0", **sign),
        runs.get(request_id, "/events", **sign),
        runs.cancel(request_id, **sign),
        runs.get(str(uuid.uuid4())),
        runs.get("not-a-uuid"),
    ):
        assert_error(response, 404, "INVOCATION_NOT_FOUND")
    runs.until_final(request_id)


def test_a_synchronous_invoke_is_not_an_invocation(runs: Runs) -> None:
    response = runs.invoke({"prompt": PROMPT})
    assert response.status_code == 200, response.text
    assert_error(runs.get(response.json()["request_id"]), 404, "INVOCATION_NOT_FOUND")


@pytest.mark.parametrize(
    ("query", "field"),
    [("?timeout=26", "timeout"), ("?timeout=-1", "timeout"), ("?timeout=soon", "timeout")],
)
def test_wait_refuses_a_timeout_over_25_seconds(runs: Runs, query: str, field: str) -> None:
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    body = assert_error(runs.get(accepted["request_id"], f"/wait{query}"), 400, "INVALID_REQUEST")
    assert field in body["details"]["fields"]
    runs.until_final(accepted["request_id"])


def test_a_background_run_is_not_streamed_in_its_response(runs: Runs) -> None:
    body = assert_error(runs.create({"prompt": PROMPT, "streaming": True}), 400, "INVALID_REQUEST")
    assert "streaming" in body["details"]["fields"]


# --- events ----------------------------------------------------------------------------------


def test_events_follow_the_run_live_and_end_with_its_outcome(slow_runs: Runs) -> None:
    accepted = _accepted(slow_runs.create({"prompt": PROMPT}))
    arrivals: list[float] = []
    events: list[SseEvent] = []
    began = time.monotonic()
    url = f"{slow_runs.base}/invocations/{accepted['request_id']}/events"
    with httpx.stream("GET", url, headers=botocore_headers("GET", url), timeout=60) as response:
        for event in sse_events_incrementally(response):
            events.append(event)
            arrivals.append(time.monotonic() - began)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].event == "start"
    assert {e.event for e in events[1:-1]} == {"chunk"}
    assert events[-1].event == "complete"
    assert_invoke_response(events[-1].data, request_id=accepted["request_id"])
    # Live: the first chunk came well before the outcome (seven agents at 300 ms).
    assert arrivals[-1] - arrivals[1] > 1.0, arrivals


@pytest.mark.parametrize("drop_after", [1, 3, 8])
def test_resuming_after_last_event_id_loses_and_repeats_nothing(
    slow_runs: Runs, drop_after: int
) -> None:
    accepted = _accepted(slow_runs.create({"prompt": PROMPT}))
    request_id = accepted["request_id"]
    first = slow_runs.events(request_id, stop_after=drop_after)
    assert len(first) == drop_after
    rest = slow_runs.events(request_id, last_event_id=first[-1].id)
    resumed = first + rest
    assert [e.id for e in resumed] == list(range(1, len(resumed) + 1))
    assert resumed[-1].event == "complete"
    # The same as reading the whole stored stream at once.
    whole = slow_runs.events(request_id, follow=False)
    assert [(e.id, e.event, e.data) for e in whole] == [(e.id, e.event, e.data) for e in resumed]
    assert slow_runs.events(request_id, last_event_id=whole[-1].id) == []


def test_events_without_follow_answer_with_what_is_stored(slow_runs: Runs) -> None:
    accepted = _accepted(slow_runs.create({"prompt": PROMPT}))
    time.sleep(0.5)
    partial = slow_runs.events(accepted["request_id"], follow=False)
    assert partial
    assert partial[-1].event not in {"complete", "error"}
    slow_runs.until_final(accepted["request_id"])


@pytest.mark.parametrize(
    "value",
    # "²" as one byte (0xB2, latin-1): str.isdigit() accepts it, int() does not; then the
    # same in UTF-8, Arabic-Indic digits, 19 digits, a sign, a space inside.
    [b"abc", b"\xb2", "²".encode(), "١٢".encode(), b"1" * 19, b"-1", b"+1", b"1 2"],
)
def test_a_malformed_last_event_id_is_400(runs: Runs, value: bytes) -> None:
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    url = f"{runs.base}/invocations/{accepted['request_id']}/events"
    headers: dict[str, str | bytes] = {**botocore_headers("GET", url), "Last-Event-ID": value}
    body = assert_error(httpx.get(url, headers=headers, timeout=10), 400, "INVALID_REQUEST")
    assert body["details"] == {"header": "Last-Event-ID"}
    runs.until_final(accepted["request_id"])


# --- Idempotency-Key -------------------------------------------------------------------------


def test_ten_parallel_identical_requests_with_one_key_start_one_run(slow_runs: Runs) -> None:
    key = str(uuid.uuid4())
    document = {"prompt": PROMPT}
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(
            pool.map(lambda _: slow_runs.create(document, idempotency_key=key), range(10))
        )
    bodies = [_accepted(r) for r in responses]
    assert len({b["request_id"] for b in bodies}) == 1
    assert len({b["session_id"] for b in bodies}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    done = slow_runs.until_final(bodies[0]["request_id"])
    assert done["status"] == "succeeded"
    assert len(slow_runs.app.interactions(bodies[0]["session_id"])) == 1

    again = slow_runs.create(document, idempotency_key=key)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == done


def test_a_repeated_key_hands_over_again_a_run_its_first_request_left_queued(
    runs: Runs, invoke_stack: Stack, dynamodb_local: Server
) -> None:
    """The first request recorded the run and died before handing it to a worker (or its
    write timed out but was applied): the retry with the same key answers the run, and
    hands it over, so it runs rather than wait queued for the sweeper."""
    from invocations.accept import InvocationRequest, _idempotency_claim
    from sessions.begin import interaction_begin
    from sessions.models import sessions_table_bind

    key = str(uuid.uuid4())
    request = InvocationRequest(
        prompt=PROMPT,
        session_id=None,
        principal_arn=DEV_PRINCIPAL,
        request_id=str(uuid.uuid4()),
        idempotency_key=key,
    )
    sessions_table_bind(table_name=invoke_stack.table, endpoint_url=dynamodb_local.http_url)
    try:
        interaction_begin(
            session_id=None,
            request_id=request.request_id,
            prompt=PROMPT,
            principal_arn=DEV_PRINCIPAL,
            kind="invocation",
            idempotency=_idempotency_claim(request, "invocation"),
        )
    finally:
        sessions_table_bind()

    again = runs.create({"prompt": PROMPT}, idempotency_key=key)
    assert again.headers.get("Idempotent-Replayed") == "true", again.text
    assert _accepted(again)["request_id"] == request.request_id
    assert runs.until_final(request.request_id, within=30)["status"] == "succeeded"


def test_the_same_key_with_another_body_is_422(runs: Runs) -> None:
    key = str(uuid.uuid4())
    first = _accepted(runs.create({"prompt": PROMPT}, idempotency_key=key))
    other = runs.create({"prompt": PROMPT + " and rain"}, idempotency_key=key)
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # Another endpoint is another request too.
    assert_error(
        runs.invoke({"prompt": PROMPT}, idempotency_key=key), 422, "IDEMPOTENCY_KEY_REUSED"
    )
    # Keys are per caller: another caller's same key is its own.
    sign = {"key": STRANGER["key"], "secret": STRANGER["secret"]}
    assert (
        _accepted(runs.create({"prompt": PROMPT}, idempotency_key=key, **sign))["request_id"]
        != (first["request_id"])
    )
    runs.until_final(first["request_id"])


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "caf\u00e9"])
def test_a_malformed_idempotency_key_is_400(runs: Runs, key: str) -> None:
    body = json.dumps({"prompt": PROMPT}).encode()
    url = f"{runs.base}/invocations"
    headers = {"Content-Type": "application/json"}
    signed = botocore_headers("POST", url, body=body, headers=headers)
    response = httpx.post(
        url,
        content=body,
        headers=[*{**headers, **signed}.items(), ("Idempotency-Key", key.encode("utf-8"))],
        timeout=10,
    )
    assert_error(response, 400, "INVALID_REQUEST")


def test_a_repeated_invoke_with_its_key_answers_the_original_response(slow_runs: Runs) -> None:
    key = str(uuid.uuid4())
    document = {"prompt": PROMPT}
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(
            pool.map(lambda _: slow_runs.invoke(document, idempotency_key=key), range(4))
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 3
    assert len(slow_runs.app.interactions(bodies[0]["session_id"])) == 1

    streamed = slow_runs.invoke({**document, "streaming": True}, idempotency_key=key)
    assert_error(streamed, 422, "IDEMPOTENCY_KEY_REUSED")


def test_a_failed_invoke_replays_its_error(invoke_stack: Stack) -> None:
    runs = Runs(invoke_stack.fault("error-message", **RUN_ENV))
    key = str(uuid.uuid4())
    first = runs.invoke({"prompt": PROMPT}, idempotency_key=key)
    body = assert_error(first, 502, "RUNTIME_ERROR")
    again = runs.invoke({"prompt": PROMPT}, idempotency_key=key)
    assert again.status_code == 502
    assert again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"


# --- one run per session -----------------------------------------------------------------------


def test_two_concurrent_invokes_on_one_session_one_runs_the_other_is_busy(
    slow_runs: Runs,
) -> None:
    session_id = new_session_id()
    document = {"prompt": PROMPT, "session_id": session_id}
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(slow_runs.invoke, document)
        time.sleep(0.5)
        second = pool.submit(slow_runs.invoke, document)
        responses = [first.result(), second.result()]
    assert responses[0].status_code == 200, responses[0].text
    busy = assert_error(responses[1], 409, "SESSION_BUSY")
    assert int(responses[1].headers["Retry-After"]) >= 1
    assert busy["details"]["active_request_id"] == responses[0].json()["request_id"]
    # A background run on the busy session is refused the same way.
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(slow_runs.invoke, document)
        time.sleep(0.5)
        assert_error(slow_runs.create(document), 409, "SESSION_BUSY")
        assert running.result().status_code == 200
    statuses = [i["status"] for i in slow_runs.app.interactions(session_id)]
    assert statuses == ["success", "success"]


def test_with_enqueue_concurrent_invokes_on_one_session_all_complete_in_order(
    slow_runs: Runs,
) -> None:
    session_id = new_session_id()
    prompts = [f"{PROMPT}, update {n}" for n in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = []
        for prompt in prompts:
            document = {"prompt": prompt, "session_id": session_id, "on_conflict": "enqueue"}
            futures.append(pool.submit(slow_runs.invoke, document))
            time.sleep(0.3)
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    interactions = slow_runs.app.interactions(session_id)
    assert [i["prompt"] for i in interactions] == prompts
    assert [i["status"] for i in interactions] == ["success"] * 3
    # In order, one after another: each started after the one before had finished.
    request_ids = [r.json()["request_id"] for r in responses]
    assert [i["request_id"] for i in interactions] == request_ids


def test_enqueued_background_runs_complete_in_order(slow_runs: Runs) -> None:
    session_id = new_session_id()
    accepted = [
        _accepted(
            slow_runs.create(
                {"prompt": f"{PROMPT}, leg {n}", "session_id": session_id, "on_conflict": "enqueue"}
            )
        )
        for n in range(3)
    ]
    assert [a["queued_behind"] for a in accepted[1:]] == [
        accepted[0]["request_id"],
        accepted[1]["request_id"],
    ]
    done = [slow_runs.until_final(a["request_id"]) for a in accepted]
    assert [d["status"] for d in done] == ["succeeded"] * 3
    for before, after in itertools.pairwise(done):
        assert after["started_at"] >= before["finished_at"]


# --- long runs and lost workers ------------------------------------------------------------------


def test_a_long_run_completes_through_polling_and_through_repeated_waits(
    invoke_stack: Stack,
) -> None:
    """A run of 30 s (past API Gateway's 29 s), followed at once by a client polling GET
    every 2 s and a client calling wait with a 2.5 s timeout: both see it end."""
    runs = Runs(invoke_stack.app("--agent-latency-ms", "4300", **RUN_ENV))
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    request_id = accepted["request_id"]
    polled: list[str] = []
    waited: list[str] = []

    def poll() -> None:
        while True:
            status = runs.get(request_id).json()["status"]
            polled.append(status)
            if status in FINAL:
                return
            time.sleep(2)

    def wait() -> None:
        while True:
            status = runs.wait(request_id, 2.5)["status"]
            waited.append(status)
            if status in FINAL:
                return

    began = time.monotonic()
    threads = [threading.Thread(target=poll), threading.Thread(target=wait)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert time.monotonic() - began > 29
    assert polled[-1] == waited[-1] == "succeeded"
    assert len(polled) >= 10
    assert len(waited) >= 10
    assert set(polled[:-1]) <= {"queued", "running"}
    assert set(waited[:-1]) <= {"queued", "running"}


def test_a_run_whose_worker_died_ends_failed_once_its_deadline_passes(
    invoke_stack: Stack, api_server_factory: Any
) -> None:
    env = {
        **RUN_ENV,
        "AGENTCORE_DEADLINE_SECONDS": "3",
        "RUN_GRACE_SECONDS": "1",
        "SESSION_TABLE_NAME": invoke_stack.table,
    }
    runtime = invoke_stack.runtime(*SLOW)
    doomed = api_server_factory(runtime=runtime, **BASE_ENV, **env)
    runs = Runs(App(api=doomed, runtime=runtime))
    accepted = _accepted(runs.create({"prompt": PROMPT, "session_id": new_session_id()}))
    request_id = accepted["request_id"]
    time.sleep(0.5)
    assert runs.get(request_id).json()["status"] == "running"
    os.killpg(doomed.process.pid, signal.SIGKILL)  # the worker and its threads, at once
    doomed.process.wait(timeout=10)

    survivor = Runs(
        App(api=api_server_factory(runtime=runtime, **BASE_ENV, **env), runtime=runtime)
    )
    done = survivor.until_final(request_id, within=15)
    assert done["status"] == "failed"
    # Ended by the deadline (3 s + 1 s of grace), not before.
    started = datetime.fromisoformat(done["started_at"])
    assert datetime.fromisoformat(done["finished_at"]) - started >= timedelta(seconds=4)
    assert_error_body(done["error"], "WORKER_LOST", request_id=request_id)
    [interaction] = survivor.app.interactions(accepted["session_id"])
    assert interaction["status"] == "error"
    assert survivor.events(request_id)[-1].event == "error"
    # The session is free again.
    follow_up = survivor.invoke({"prompt": PROMPT, "session_id": accepted["session_id"]})
    assert follow_up.status_code == 200, follow_up.text
