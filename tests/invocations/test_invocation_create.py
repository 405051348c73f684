"""POST /api/v1/invocations: a background run from its creation to its end (also when
its worker dies), the Idempotency-Key, one run per session and ``on_conflict: enqueue``."""

from __future__ import annotations

import itertools
import json
import os
import signal
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
    Stack,
    assert_error,
    assert_error_body,
    assert_invoke_response,
    new_session_id,
)
from tests.invocations.runs import RUN_ENV, SLOW, Runs, _accepted
from tests.signing import DEV_PRINCIPAL, botocore_headers

pytestmark = pytest.mark.slow


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


def test_a_background_run_is_not_streamed_in_its_response(runs: Runs) -> None:
    body = assert_error(runs.create({"prompt": PROMPT, "streaming": True}), 400, "INVALID_REQUEST")
    assert "streaming" in body["details"]["fields"]


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


# --- one run per session -----------------------------------------------------------------------


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
