"""POST /api/v1/invoke with ``"streaming": true`` against the running app: the SSE frames
(Property 12), the events of a run (start, the runtime's chunks, one complete or one
error), failures before and during the stream, and a client that leaves mid-stream (the
interaction is recorded cancelled, the runtime connection closed: Property 9)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.invocations.live import (
    BUSINESS_AGENTS,
    PROMPT,
    SAFETY_AGENTS,
    App,
    SseEvent,
    Stack,
    assert_error,
    assert_error_body,
    assert_invoke_response,
    assert_no_connection_left,
    new_session_id,
    sse_events_incrementally,
    sse_parse,
)

DEADLINE = 2


def _stream(
    app: App, document: dict[str, Any], *, accept: str | None = None
) -> tuple[httpx.Response, str]:
    """POST ``document`` and read the whole answer: the response and its body."""
    body = json.dumps(document).encode()
    headers = app.signed_headers(body)
    if accept is not None:
        headers["Accept"] = accept  # not signed; the signature does not cover it
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", app.invoke_url, content=body, headers=headers) as response,
    ):
        text = response.read().decode()
    return response, text


def _sse(response: httpx.Response, text: str) -> list[SseEvent]:
    assert response.status_code == 200, text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "content-encoding" not in response.headers  # nothing may buffer the stream
    events = sse_parse(text)
    assert events[0].event == "start"
    assert events[0].data == {
        "request_id": response.headers["X-Request-ID"],
        "session_id": events[0].data["session_id"],
    }
    assert [e.event for e in events[1:-1]] == ["chunk"] * (len(events) - 2)
    return events


def _chunk_steps(events: list[SseEvent]) -> list[tuple[int, str, str, str]]:
    return [
        (e.data["sequence"], e.data["phase"], e.data["agent"], e.data["status"])
        for e in events
        if e.event == "chunk"
    ]


def _all_steps() -> list[tuple[int, str, str, str]]:
    steps = []
    agents = [("safety", a) for a in SAFETY_AGENTS] + [("business", a) for a in BUSINESS_AGENTS]
    for n, (phase, agent) in enumerate(agents):
        steps.append((2 * n + 1, phase, agent, "analyzing"))
        steps.append((2 * n + 2, phase, agent, "completed"))
    return steps


@pytest.fixture(scope="module")
def app(invoke_stack: Stack) -> App:
    return invoke_stack.app()


def test_a_stream_is_start_14_chunks_and_one_complete(app: App) -> None:
    response, text = _stream(app, {"prompt": PROMPT, "streaming": True})

    events = _sse(response, text)
    assert len(events) == 16
    assert _chunk_steps(events) == _all_steps()
    complete = events[-1]
    assert complete.event == "complete"
    assert_invoke_response(complete.data, request_id=response.headers["X-Request-ID"])
    assert complete.data["session_id"] == events[0].data["session_id"]
    # Each agent's completed chunk carries the assessment the complete event reports.
    reported = complete.data["safety_phase"]["agents"] + complete.data["business_phase"]["agents"]
    completed = [e.data["partial_result"] for e in events if e.data.get("status") == "completed"]
    assert completed == reported
    assert all(
        "partial_result" not in e.data for e in events if e.data.get("status") == "analyzing"
    )
    [interaction] = app.interactions(complete.data["session_id"])
    assert interaction["status"] == "success"
    assert interaction["request_id"] == complete.data["request_id"]
    stored = {k: v for k, v in complete.data.items() if k not in ("request_id", "session_id")}
    assert interaction["response"] == stored
    assert_no_connection_left(app.runtime.port)


def test_the_complete_event_is_what_the_buffered_call_answers(app: App) -> None:
    streamed = _sse(*_stream(app, {"prompt": PROMPT, "streaming": True}))[-1].data
    buffered = app.invoke({"prompt": PROMPT}).json()

    assert set(streamed) == set(buffered)
    for same in ("assessment", "safety_phase", "business_phase", "final_decision"):
        assert streamed[same] == buffered[same]
    assert streamed["recommendations"] == buffered["recommendations"]
    assert set(streamed["metadata"]) == set(buffered["metadata"])


def test_accept_text_event_stream_streams_too(app: App) -> None:
    response, text = _stream(app, {"prompt": PROMPT}, accept="text/event-stream")

    events = _sse(response, text)
    assert [e.event for e in events] == ["start"] + ["chunk"] * 14 + ["complete"]


def test_a_runtime_error_mid_stream_ends_it_with_one_error_event(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("error-message")
    session_id = new_session_id()

    response, text = _stream(app, {"prompt": PROMPT, "session_id": session_id, "streaming": True})

    events = _sse(response, text)
    assert _chunk_steps(events) == _all_steps()[:2]
    error = events[-1]
    assert error.event == "error"
    assert_error_body(error.data, "RUNTIME_ERROR", request_id=response.headers["X-Request-ID"])
    assert error.data["details"]["runtime_error_code"] == "AGENT_EXECUTION_FAILED"
    [interaction] = app.interactions(session_id)
    assert interaction["status"] == "error"
    assert interaction["request_id"] == error.data["request_id"]
    assert interaction["error_message"].startswith("RUNTIME_ERROR: ")
    assert_no_connection_left(app.runtime.port)


def test_a_stream_past_its_deadline_ends_with_a_timeout_event(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("hang-mid-stream", AGENTCORE_DEADLINE_SECONDS=str(DEADLINE))
    session_id = new_session_id()
    started = time.monotonic()

    response, text = _stream(app, {"prompt": PROMPT, "session_id": session_id, "streaming": True})

    assert time.monotonic() - started >= DEADLINE
    events = _sse(response, text)
    assert _chunk_steps(events) == _all_steps()[:2]
    assert events[-1].event == "error"
    assert_error_body(events[-1].data, "TIMEOUT", request_id=response.headers["X-Request-ID"])
    [interaction] = app.interactions(session_id)
    assert interaction["status"] == "timeout"
    # Ended at the deadline, measured by the server (this client's clock also counts its
    # first request to a new server, and a loaded machine's delays).
    assert DEADLINE * 1000 <= interaction["execution_time_ms"] < (DEADLINE + 2) * 1000
    assert_no_connection_left(app.runtime.port)


def test_an_unreachable_runtime_is_a_plain_502_not_a_stream(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("refuse")
    session_id = new_session_id()

    response, _ = _stream(app, {"prompt": PROMPT, "session_id": session_id, "streaming": True})

    error = assert_error(response, 502, "CONNECTION_FAILED")
    assert error["details"]["attempts"] == 3
    assert [i["status"] for i in app.interactions(session_id)] == ["error"]
    assert_no_connection_left(app.runtime.port)


def test_a_client_leaving_mid_stream_cancels_the_run(invoke_stack: Stack) -> None:
    app = invoke_stack.app("--agent-latency-ms", "400")  # a run of about 2.8 s
    session_id = new_session_id()
    body = json.dumps({"prompt": PROMPT, "session_id": session_id, "streaming": True}).encode()
    received: list[SseEvent] = []
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", app.invoke_url, content=body, headers=app.signed_headers(body)
        ) as response,
    ):
        assert response.status_code == 200
        for event in sse_events_incrementally(response):
            received.append(event)
            if len(received) == 2:
                break
    left_at = time.monotonic()
    assert [e.event for e in received] == ["start", "chunk"]

    deadline = left_at + 10
    while (status := app.interactions(session_id)[0]["status"]) == "in_progress":
        assert time.monotonic() < deadline, "the interaction is still in progress"
        time.sleep(0.1)
    assert status == "cancelled"
    [interaction] = app.interactions(session_id)
    assert interaction["response"] is None
    assert interaction["error_message"]
    assert_no_connection_left(app.runtime.port)


@pytest.mark.parametrize(("mode", "heartbeats"), [("streaming", True), ("buffered", False)])
def test_heartbeats_are_sent_only_where_responses_stream(
    invoke_stack: Stack, mode: str, heartbeats: bool
) -> None:
    # RESPONSE_MODE=buffered (behind API Gateway) holds the body until the end, where a
    # heartbeat would only pad it.
    app = invoke_stack.fault(
        "hang-before-first",
        AGENTCORE_DEADLINE_SECONDS="1",
        SSE_HEARTBEAT_SECONDS="0.2",
        RESPONSE_MODE=mode,
    )
    response, text = _stream(app, {"prompt": PROMPT, "streaming": True})
    assert response.status_code == 200
    assert (": heartbeat" in text.splitlines()) is heartbeats
    events = sse_parse(text)
    assert events[-1].event == "error"
    assert events[-1].data["error_code"] == "TIMEOUT"
