"""Behind API Gateway (RESPONSE_MODE=buffered) no request holds its server past
REQUEST_HOLD_SECONDS (25 s, under the gateway's 29 s integration timeout): following a
long run's events ends with what was stored so far and where to resume; a synchronous run
that cannot end in time is a recorded 504 that says how to run longer."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.invocations.live import PROMPT, Stack, assert_error, new_session_id, sse_frame_parse
from tests.invocations.runs import RUN_ENV, Runs, _accepted
from tests.signing import botocore_headers

BUFFERED = {**RUN_ENV, "RESPONSE_MODE": "buffered"}
# The follow test holds requests for 5 s, not the default 25 s: the same pauses and resumes,
# a quarter of the wait (the default's bound, under the gateway's 29 s, is checked by
# tests/skymarshal_api/test_settings.py and tests/deployment/test_infrastructure.py).
HOLD_SECONDS = 5.0


def _follow(runs: Runs, request_id: str, last_event_id: int) -> tuple[list[int], str, float]:
    """One follow=true request, read whole as API Gateway would: the ids of its events,
    the comment that ends it (empty when it ended with the run) and how long it took."""
    url = f"{runs.base}/invocations/{request_id}/events"
    headers = {**botocore_headers("GET", url), "Last-Event-ID": str(last_event_id)}
    began = time.monotonic()
    response = httpx.get(url, headers=headers, timeout=60)
    elapsed = time.monotonic() - began
    assert response.status_code == 200, response.text
    frames = response.text.split("\n\n")
    assert frames[-1] == ""
    ids, note = [], ""
    for frame in frames[:-1]:
        event = sse_frame_parse(frame)
        if event is None:
            assert frame != ": heartbeat", "a buffered stream carries no heartbeat"
            note = frame
        else:
            assert not note, "nothing follows the pause note"
            ids.append(event.id)
    return ids, note, elapsed


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_following_a_long_run_behind_the_gateway_pauses_within_the_hold_and_resumes_exactly(
    invoke_stack: Stack,
) -> None:
    # Seven agents of 2 s: a run of about 14 s, held for at most 5 s a request.
    runs = Runs(
        invoke_stack.app(
            "--agent-latency-ms", "2000", **BUFFERED, REQUEST_HOLD_SECONDS=str(HOLD_SECONDS)
        )
    )
    request_id = _accepted(runs.create({"prompt": PROMPT}))["request_id"]

    seen: list[int] = []
    requests = 0
    while True:
        ids, note, elapsed = _follow(runs, request_id, seen[-1] if seen else 0)
        requests += 1
        assert elapsed < HOLD_SECONDS + 2.0, elapsed
        seen += ids
        if not note:
            break  # the run ended: its last event was sent
        assert note == (
            f": paused; the run goes on: resume with Last-Event-ID: {seen[-1] if seen else 0}"
        )
        assert requests < 6

    assert requests >= 3  # 14 s of run cannot fit in two requests of 5 s
    assert seen == list(range(1, len(seen) + 1)), "no event lost or repeated"
    whole = runs.events(request_id, follow=False)
    assert [e.id for e in whole] == seen
    assert whole[-1].event == "complete"


def test_a_synchronous_run_behind_the_gateway_ends_by_the_hold_limit_with_a_recorded_504(
    invoke_stack: Stack,
) -> None:
    # A run of about 7 s against a hold limit of 2 s.
    app = invoke_stack.app("--agent-latency-ms", "1000", **BUFFERED, REQUEST_HOLD_SECONDS="2")
    session_id = new_session_id()

    began = time.monotonic()
    response = app.invoke({"prompt": PROMPT, "session_id": session_id})
    elapsed = time.monotonic() - began

    error = assert_error(response, 504, "TIMEOUT")
    assert error["details"]["deadline_seconds"] == 2
    assert "POST /api/v1/invocations" in error["error_message"]
    assert elapsed < 6.0
    [interaction] = app.interactions(session_id)
    assert interaction["status"] == "timeout"
    assert interaction["execution_time_ms"] < 4000
