"""`manage.py sessions_cleanup` deletes what DynamoDB Local's missing TTL leaves behind."""

from __future__ import annotations

import io
import time
import uuid

from django.core.management import call_command

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SessionInteraction

BOB = "arn:aws:iam::222222222222:user/bob"


def _interaction(now_ms: int, session_id: str | None = None) -> str:
    started = interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt="Flight DL1 delayed 1 hour",
        principal_arn=BOB,
        now_ms=now_ms,
    )
    interaction_complete(started, status="success", response={"ok": True}, execution_time_ms=1)
    return started.session_id


def _count(session_id: str) -> int:
    return SessionInteraction.count(session_id)


def test_cleanup_deletes_only_items_past_their_ttl(sessions_table: str, settings) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time() * 1000)
    past_ttl = now - (settings.SESSION_TTL_DAYS + 1) * 86_400_000
    stale = _interaction(past_ttl)
    _interaction(past_ttl + 60_000, stale)
    fresh = _interaction(now)

    out = io.StringIO()
    call_command("sessions_cleanup", stdout=out)
    # Two interactions, their runs, the deadlines filed for the sweeper (kept a week past
    # each deadline) and their session's own item.
    assert out.getvalue().strip() == "Deleted 7 expired items"
    assert _count(stale) == 0
    assert _count(fresh) == 2  # the interaction and the session item

    out = io.StringIO()
    call_command("sessions_cleanup", stdout=out)
    assert out.getvalue().strip() == "Deleted 0 expired items"
