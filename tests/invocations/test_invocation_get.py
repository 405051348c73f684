"""GET /api/v1/invocations/{request_id}: one background run, only its caller's (another
caller's is 404 on every endpoint of a run), never a synchronous invoke."""

from __future__ import annotations

import uuid

import pytest

from tests.invocations.live import PROMPT, STRANGER, assert_error
from tests.invocations.runs import Runs, _accepted

pytestmark = pytest.mark.slow


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
