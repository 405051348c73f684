"""Runs in the sessions table: one per interaction, one active per session, their
Idempotency-Keys and their ending, against DynamoDB Local."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SessionInteraction
from sessions.run_selectors import run_find
from sessions.run_services import run_cancel_request, run_start
from sessions.services import IdempotencyClaim, IdempotentReplay, InteractionStarted
from skymarshal_api.web.errors import IdempotencyKeyReused, SessionBusy

ALICE = "arn:aws:iam::111111111111:user/alice"
PROMPT = "Flight AA123 delayed 3 hours due to weather at ORD"


def _begin(session_id: str | None = None, **options: Any) -> InteractionStarted:
    return interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=ALICE,
        **options,
    )


def test_a_synchronous_run_holds_its_session_until_it_ends(sessions_table: str) -> None:
    first = _begin()
    run = run_find(first.request_id)
    assert run is not None
    assert (run.status, run.kind, run.owner) == ("running", "invoke", ALICE)
    with pytest.raises(SessionBusy) as busy:
        _begin(first.session_id)
    assert busy.value.details == {
        "session_id": first.session_id,
        "active_request_id": first.request_id,
    }
    assert busy.value.headers["Retry-After"] == "2"

    assert interaction_complete(
        first,
        status="success",
        response={"ok": True},
        execution_time_ms=5,
        run_response={"ok": True},
        http_status=200,
    )
    ended = run_find(first.request_id)
    assert ended is not None
    assert (ended.status, ended.response, ended.http_status) == ("succeeded", {"ok": True}, 200)
    _begin(first.session_id)  # free again


def test_an_enqueued_run_waits_for_the_one_ahead(sessions_table: str) -> None:
    first = _begin()
    second = _begin(first.session_id, on_conflict="enqueue")
    third = _begin(first.session_id, on_conflict="enqueue")
    assert second.queued_after == first.request_id
    assert third.queued_after == second.request_id
    second_run, third_run = run_find(second.request_id), run_find(third.request_id)
    assert second_run is not None
    assert third_run is not None
    assert run_start(third_run) == "wait"
    assert run_start(second_run) == "wait"
    interaction_complete(first, status="success", response=None, execution_time_ms=1)
    assert run_start(third_run) == "wait"  # the second is still ahead of it
    assert run_start(second_run) == "started"
    assert run_start(second_run) == "gone"  # started once only


def test_a_cancelled_queued_run_never_starts(sessions_table: str) -> None:
    first = _begin(kind="invocation")
    run = run_find(first.request_id)
    assert run is not None
    assert run.status == "queued"
    assert run_cancel_request(first.request_id)
    assert run_start(run) == "gone"


def test_an_idempotency_key_replays_the_same_request_and_refuses_another(
    sessions_table: str,
) -> None:
    claim = IdempotencyClaim(key_hash=f"idempotency#{uuid.uuid4().hex}", request_hash="a")
    first = _begin(idempotency=claim)
    with pytest.raises(IdempotentReplay) as replay:
        _begin(idempotency=claim)
    assert replay.value.request_id == first.request_id
    with pytest.raises(IdempotencyKeyReused):
        _begin(idempotency=IdempotencyClaim(key_hash=claim.key_hash, request_hash="b"))
    with pytest.raises(IdempotencyKeyReused):
        _begin(idempotency=claim, kind="invocation")


def test_a_run_whose_interaction_was_completed_elsewhere_still_ends(sessions_table: str) -> None:
    """A replayed log record completes the interaction but not its run: completing the run
    afterwards must end it, not report it done while it stays running."""
    started = _begin()
    SessionInteraction(started.session_id, started.timestamp).update(
        actions=[SessionInteraction.status.set("success")]
    )
    assert interaction_complete(
        started,
        status="error",
        response=None,
        execution_time_ms=1,
        run_error={"error_code": "WORKER_LOST"},
        http_status=500,
    )
    run = run_find(started.request_id)
    assert run is not None
    assert (run.status, run.error) == ("failed", {"error_code": "WORKER_LOST"})
    history = SessionInteraction.get(started.session_id, started.timestamp)
    assert history.status == "success"  # left as it was
