"""DELETE /api/v1/invocations/{request_id}: cancelling a running run (and a finished one),
and a queued run before it starts."""

from __future__ import annotations

import time

import pytest

from tests.invocations.live import PROMPT, Stack, assert_error, assert_error_body, new_session_id
from tests.invocations.runs import RUN_ENV, Runs, _accepted

pytestmark = pytest.mark.slow


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
