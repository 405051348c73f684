"""POST /api/v1/invoke with an Idempotency-Key (the answer replayed, an error too) and
on a busy session (409 SESSION_BUSY, or ``on_conflict: enqueue``: one run after another)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.invocations.live import PROMPT, Stack, assert_error, new_session_id
from tests.invocations.runs import RUN_ENV, Runs

pytestmark = pytest.mark.slow


# --- Idempotency-Key -------------------------------------------------------------------------


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
