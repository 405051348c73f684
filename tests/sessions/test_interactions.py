"""Write-ahead interaction records and the history they make, against DynamoDB Local."""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
import uuid
from typing import Any

import pytest
from django.conf import LazySettings
from rest_framework.renderers import JSONRenderer

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.run_selectors import run_find
from sessions.selectors import session_history_get, sessions_list
from sessions.serializers import SessionHistorySerializer, session_history_representation
from sessions.services import session_create
from skymarshal_api.web.errors import SessionExpired, SessionNotFound
from skymarshal_api.web.validation import is_uuid4

ALICE = "arn:aws:iam::111111111111:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
PROMPT = "Flight AA123 delayed 3 hours due to weather at ORD"
RESPONSE = {"final_decision": "conditional", "recommendations": ["Rebook", "Vouchers"], "n": 1.5}


def _run(session_id: str | None, principal: str = ALICE, now_ms: int | None = None) -> Any:
    started = interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=principal,
        now_ms=now_ms,
    )
    assert interaction_complete(started, status="success", response=RESPONSE, execution_time_ms=321)
    return started


def test_session_create_gives_uuid4() -> None:
    ids = {session_create() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_uuid4(i) for i in ids)


def test_interaction_is_in_progress_before_it_completes(sessions_table: str) -> None:
    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    assert started.new_session
    assert is_uuid4(started.session_id)
    history = session_history_get(session_id=started.session_id, principal_arn=ALICE)
    assert [i.status for i in history.interactions] == ["in_progress"]
    assert history.interactions[0].response is None

    interaction_complete(
        started, status="error", response=None, execution_time_ms=12, error_message="boom"
    )
    [done] = session_history_get(session_id=started.session_id, principal_arn=ALICE).interactions
    assert (done.status, done.error_message, done.execution_time_ms) == ("error", "boom", 12)


def test_completing_twice_keeps_the_first_outcome(sessions_table: str) -> None:
    started = _run(None)
    assert interaction_complete(started, status="timeout", response=None, execution_time_ms=1)
    [done] = session_history_get(session_id=started.session_id, principal_arn=ALICE).interactions
    assert done.status == "success"
    assert done.response == RESPONSE


def test_history_is_ordered_and_counts_interactions(sessions_table: str) -> None:
    first = _run(None)
    for _ in range(4):
        _run(first.session_id)
    history = session_history_get(session_id=first.session_id, principal_arn=ALICE)
    timestamps = [i.timestamp for i in history.interactions]
    assert timestamps == sorted(timestamps)
    assert len(set(timestamps)) == 5
    assert history.interaction_count == 5
    assert history.created_at == first.timestamp
    assert history.last_interaction_at == timestamps[-1]
    assert not history.expired


def test_a_client_chosen_new_session_id_starts_that_session(sessions_table: str) -> None:
    chosen = str(uuid.uuid4())
    started = _run(chosen)
    assert started.session_id == chosen
    assert not started.new_session
    assert session_history_get(session_id=chosen, principal_arn=ALICE).interaction_count == 1


def test_another_principal_cannot_read_or_use_a_session(sessions_table: str) -> None:
    started = _run(None)
    with pytest.raises(SessionNotFound):
        session_history_get(session_id=started.session_id, principal_arn=BOB)
    with pytest.raises(SessionNotFound):
        _run(started.session_id, principal=BOB)
    assert (
        session_history_get(session_id=started.session_id, principal_arn=ALICE).interaction_count
        == 1
    )


def test_an_idle_session_expires_but_stays_readable(
    sessions_table: str, settings: LazySettings
) -> None:
    two_hours_ago = int(time.time() * 1000) - 2 * 3600_000
    started = _run(None, now_ms=two_hours_ago)
    history = session_history_get(session_id=started.session_id, principal_arn=ALICE)
    assert history.expired
    assert [i.status for i in history.interactions] == ["success"]
    with pytest.raises(SessionExpired) as refused:
        _run(started.session_id)
    assert refused.value.status_code == 409
    # Within the idle limit the session goes on.
    just_now = _run(None, now_ms=None)
    later = just_now.timestamp + (settings.SESSION_IDLE_MINUTES - 1) * 60_000
    _run(just_now.session_id, now_ms=later)


def test_unsaved_completion_is_logged_as_a_replay_record(
    sessions_table: str, settings: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    started = _run(None)
    second = interaction_begin(
        session_id=started.session_id,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=ALICE,
    )
    settings.SESSION_TABLE_NAME = "table-that-does-not-exist"
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        saved = interaction_complete(
            second, status="success", response=RESPONSE, execution_time_ms=5
        )
    assert saved is False
    [record] = [r for r in caplog.records if r.name == "sessions.replay"]
    assert "SKYMARSHAL_REPLAY " in record.getMessage()
    assert PROMPT not in record.getMessage()


def test_sessions_list_newest_first_and_active_filter(sessions_table: str) -> None:
    old = _run(None, principal=BOB, now_ms=int(time.time() * 1000) - 2 * 3600_000)
    recent = [_run(None, principal=BOB) for _ in range(3)]
    _run(recent[0].session_id, principal=BOB)  # recent[0] is now the most recent

    page = sessions_list(principal_arn=BOB)
    assert [s.session_id for s in page.sessions] == [
        recent[0].session_id,
        recent[2].session_id,
        recent[1].session_id,
        old.session_id,
    ]
    assert page.sessions[0].interaction_count == 2
    assert [s.expired for s in page.sessions] == [False, False, False, True]
    active = sessions_list(principal_arn=BOB, active=True)
    assert old.session_id not in [s.session_id for s in active.sessions]
    assert [s.session_id for s in sessions_list(principal_arn=BOB, active=False).sessions] == [
        old.session_id
    ]
    assert sessions_list(principal_arn=ALICE).sessions == []


def test_interactions_past_their_ttl_never_appear(
    sessions_table: str, settings: LazySettings
) -> None:
    now = int(time.time() * 1000)
    ttl_ms = settings.SESSION_TTL_DAYS * 86_400_000
    stale = _run(None, principal=BOB, now_ms=now - ttl_ms - 60_000)
    _run(stale.session_id, principal=BOB, now_ms=now - ttl_ms + 120_000)
    history = session_history_get(session_id=stale.session_id, principal_arn=BOB)
    assert len(history.interactions) == 1
    assert history.interactions[0].timestamp == now - ttl_ms + 120_000
    gone = _run(None, principal=BOB, now_ms=now - ttl_ms - 120_000)
    listed = [s.session_id for s in sessions_list(principal_arn=BOB).sessions]
    assert stale.session_id in listed
    assert gone.session_id not in listed


def test_a_response_dynamodb_cannot_hold_is_left_out_with_a_note(
    sessions_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    # DynamoDB items stop at 400 KB; the response is stored compressed, so it must not
    # compress: 600 000 random base64 characters are 450 000 random bytes.
    too_big = {"assessment": secrets.token_urlsafe(450_000)}
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        assert interaction_complete(
            started, status="success", response=too_big, execution_time_ms=9
        )
    assert not [r for r in caplog.records if r.name == "sessions.replay"]
    [done] = session_history_get(session_id=started.session_id, principal_arn=ALICE).interactions
    assert done.status == "success"
    assert done.response is None
    assert done.error_message == "The response could not be stored in the session history."


def test_a_response_json_cannot_hold_is_left_out_with_a_note(
    sessions_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        assert interaction_complete(
            started,
            status="success",
            response={"confidence": math.nan},
            execution_time_ms=9,
            run_response={"confidence": math.inf},
        )
    assert not [r for r in caplog.records if r.name == "sessions.replay"]
    [done] = session_history_get(session_id=started.session_id, principal_arn=ALICE).interactions
    assert (done.status, done.response) == ("success", None)
    assert done.error_message == "The response could not be stored in the session history."
    run = run_find(started.request_id)
    assert run is not None
    assert (run.status, run.response) == ("succeeded", None)


def test_the_page_is_what_the_schema_serializer_makes_of_it(sessions_table: str) -> None:
    session_id = None
    for index, status in enumerate(["success", "error", "timeout", "cancelled", "success"]):
        started = interaction_begin(
            session_id=session_id,
            request_id=str(uuid.uuid4()),
            prompt=f"{PROMPT} ✈ {index}",
            principal_arn=ALICE,
        )
        session_id = started.session_id
        assert interaction_complete(
            started,
            status=status,  # type: ignore[arg-type]
            response={**RESPONSE, "index": index} if status == "success" else None,
            execution_time_ms=index,
            error_message=None if status == "success" else f"E{index}: failed",
        )
    interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt="still running",
        principal_arn=ALICE,
    )
    assert session_id is not None
    for limit in (2, 100):
        history = session_history_get(session_id=session_id, principal_arn=ALICE, limit=limit)
        assert history.interactions
        schema_made = SessionHistorySerializer(dataclasses.asdict(history)).data
        assert JSONRenderer().render(session_history_representation(history)) == (
            JSONRenderer().render(schema_made)
        )
