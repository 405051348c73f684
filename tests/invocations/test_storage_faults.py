"""Storage faults are storage faults: a background run whose events cannot be stored for a
while (DynamoDB Local frozen mid-run with SIGSTOP, then resumed) goes on and ends
with every event stored in order, never recorded as a client cancel; an event larger than
a DynamoDB item is stored truncated with a note while a live /invoke stream gets it whole."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.stack import Server, start_dynamodb_local, start_local_runtime
from sessions.models import TRUNCATED_NOTE
from tests.conftest import _ApiServers, sessions_table_create
from tests.invocations.live import BASE_ENV, PROMPT, App, Stack, new_session_id, sse_parse
from tests.signing import botocore_headers

pytestmark = pytest.mark.slow

RUN_ENV = {"RUN_POLL_SECONDS": "0.05", "RUN_CANCEL_CHECK_SECONDS": "0.2"}


def _get(url: str) -> httpx.Response:
    return httpx.get(url, headers=botocore_headers("GET", url), timeout=30)


def _submit(api: Server) -> str:
    url = f"{api.http_url}/api/v1/invocations"
    body = json.dumps({"prompt": PROMPT, "session_id": new_session_id()}).encode()
    headers = {"Content-Type": "application/json"}
    signed = botocore_headers("POST", url, body=body, headers=headers)
    response = httpx.post(url, content=body, headers={**headers, **signed}, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


def _events(api: Server, request_id: str) -> list[dict[str, Any]]:
    response = _get(f"{api.http_url}/api/v1/invocations/{request_id}/events?follow=false")
    assert response.status_code == 200, response.text
    return [{"id": e.id, "event": e.event, "data": e.data} for e in sse_parse(response.text)]


def _final(api: Server, request_id: str, within: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        url = f"{api.http_url}/api/v1/invocations/{request_id}/wait?timeout=5"
        response = _get(url)
        if response.status_code == 200 and response.json()["status"] not in ("queued", "running"):
            return dict(response.json())
        time.sleep(0.2)
    raise AssertionError(f"{request_id} did not end within {within} s")


@pytest.fixture
def own_dynamodb(log_dir: Path) -> Iterator[Server]:
    """A DynamoDB Local of this test's own: the test freezes it."""
    server = start_dynamodb_local(log_dir=log_dir)
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_a_run_goes_on_while_dynamodb_is_frozen_and_stores_every_event_after(
    own_dynamodb: Server, log_dir: Path
) -> None:
    table = sessions_table_create(own_dynamodb, "sessions-faults")
    runtime = start_local_runtime("--agent-latency-ms", "2000", log_dir=log_dir)  # ~14 s
    apis = _ApiServers(log_dir, own_dynamodb, runtime)
    try:
        api = apis(
            SESSION_TABLE_NAME=table,
            DYNAMODB_MAX_RETRY_ATTEMPTS="0",
            DYNAMODB_CONNECT_TIMEOUT_SECONDS="1.5",
            DYNAMODB_READ_TIMEOUT_SECONDS="1.5",
            **RUN_ENV,
            **BASE_ENV,
        )
        request_id = _submit(api)
        while len(_events(api, request_id)) < 3:  # start and the first chunks are stored
            time.sleep(0.1)

        # SIGSTOP: DynamoDB Local still accepts connections (the kernel does) and answers
        # nothing; every write of the run times out until SIGCONT.
        os.kill(own_dynamodb.process.pid, signal.SIGSTOP)
        time.sleep(6)  # longer than one append's 3 attempts (1.5 s each, 0.5 s of pauses)
        os.kill(own_dynamodb.process.pid, signal.SIGCONT)
        run = _final(api, request_id)
        events = _events(api, request_id)
    finally:
        apis.stop_all()
        runtime.stop()

    assert run["status"] == "succeeded", run
    assert [e["event"] for e in events] == ["start"] + ["chunk"] * 14 + ["complete"]
    assert [e["id"] for e in events] == list(range(1, 17))
    log = api.log_path.read_text(encoding="utf-8")
    # The freeze did hit the run: a write of its events or a read of its cancel flag failed.
    assert "failed to store the invocation's event" in log or "cancel check failed" in log


@pytest.fixture(scope="module")
def oversize_app(invoke_stack: Stack) -> App:
    return invoke_stack.fault(
        "oversize-frame", "--oversize-bytes", "600000", "--fault-after", "2", **RUN_ENV
    )


def test_an_event_too_large_for_an_item_is_stored_truncated_with_a_note(
    oversize_app: App,
) -> None:
    request_id = _submit(oversize_app.api)
    run = _final(oversize_app.api, request_id)
    events = _events(oversize_app.api, request_id)

    assert run["status"] == "failed"
    assert run["error"]["error_code"] == "INVALID_RUNTIME_RESPONSE"  # closed with no complete
    assert [e["event"] for e in events] == ["start", "chunk", "chunk", "chunk", "error"]
    oversize = events[3]["data"]
    assert oversize["truncated"] is True
    assert oversize["note"] == TRUNCATED_NOTE
    assert oversize["original_bytes"] > 600_000
    assert oversize["data_prefix"].startswith('{"agent":')


def test_a_live_stream_receives_the_oversize_event_whole(oversize_app: App) -> None:
    response = oversize_app.invoke({"prompt": PROMPT, "streaming": True})

    assert response.status_code == 200, response.text[:500]
    events = sse_parse(response.text)
    assert [e.event for e in events] == ["start", "chunk", "chunk", "chunk", "error"]
    assert len(events[3].data["partial_result"]["padding"]) == 600_000


def test_events_waiting_for_storage_do_not_hold_up_the_run(
    own_dynamodb: Server, settings: Any
) -> None:
    """While DynamoDB does not answer, the first event that cannot be stored is retried;
    the events after it wait without a retry each (the run reads its stream against its
    deadline: retrying every event held a run that had succeeded at the runtime until it
    timed out), and all are stored, in order, once DynamoDB answers again."""
    from invocations.outcome import RunEventLog, StreamEvent
    from sessions.begin import interaction_begin
    from sessions.run_selectors import run_events_after, run_find
    from sessions.table import sessions_table_ensure

    settings.DYNAMODB_ENDPOINT_URL = own_dynamodb.http_url
    settings.SESSION_TABLE_NAME = f"sessions-events-{uuid.uuid4().hex[:12]}"
    sessions_table_ensure()
    started = interaction_begin(
        session_id=None,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn="arn:aws:iam::000000000000:user/events-test",
        kind="invocation",
    )
    run = run_find(started.request_id)
    assert run is not None
    log = RunEventLog(run)
    log.append(StreamEvent("start", {"request_id": run.request_id}))
    settings.DYNAMODB_MAX_RETRY_ATTEMPTS = 0
    settings.DYNAMODB_READ_TIMEOUT_SECONDS = 0.5

    os.kill(own_dynamodb.process.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        for number in range(14):
            log.append(StreamEvent("chunk", {"sequence": number}))
        held = time.monotonic() - began
    finally:
        os.kill(own_dynamodb.process.pid, signal.SIGCONT)
    settings.DYNAMODB_READ_TIMEOUT_SECONDS = 5
    number, event, _ = log.final("complete", {"status": "success"})

    # One event's three attempts (0.5 s each, 0.5 s of pauses), and at most a few single
    # attempts after it; retrying every event took 14 x 2 s.
    assert held < 5, held
    assert (number, event) == (16, "complete")
    stored = run_events_after(run.request_id, 0)
    assert [e.number for e in stored] == list(range(1, 16))
    assert [json.loads(e.data).get("sequence") for e in stored[1:]] == list(range(14))
