"""GET /api/v1/invocations/{request_id}/events: a run's events followed live, resumed
after Last-Event-ID, or read as stored (``follow=false``)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.invocations.live import (
    PROMPT,
    SseEvent,
    assert_error,
    assert_invoke_response,
    sse_events_incrementally,
)
from tests.invocations.runs import Runs, _accepted
from tests.signing import botocore_headers

pytestmark = pytest.mark.slow


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
