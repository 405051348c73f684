"""Correctness Properties 3, 7 and 13 of the design as Hypothesis properties, against
DynamoDB Local through the services and selectors (no HTTP).

Time is never waited for: every write and read takes an explicit ``now_ms``. The table is
the test function's own (``sessions_table``) and lives across a property's examples, so
each example works in sessions, and where listings are compared under a principal, of
its own.
"""

from __future__ import annotations

import itertools
import string
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SESSION_ITEM_TIMESTAMP, SessionInteraction, SessionItem
from sessions.selectors import session_history_get, sessions_list
from sessions.services import FINAL_STATUSES
from skymarshal_api.web.errors import SessionExpired
from skymarshal_api.web.validation import is_uuid4

# Hundreds of DynamoDB Local round trips a test: about 50 s on a quiet machine, three times
# that while the suite's other workers (and other jobs) load it; the 120 s default would
# cut a test that is not hung.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MINUTE_MS = 60_000
IDLE_MS = 30 * MINUTE_MS  # SESSION_IDLE_MINUTES in the test settings (checked below)

# Function-scoped fixtures (the table) stay the same for every example: that is intended.
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# --- strategies ---------------------------------------------------------------------------

principals = st.builds(
    "arn:aws:iam::{}:user/{}".format,
    st.text(string.digits, min_size=12, max_size=12),
    st.text(string.ascii_letters + string.digits + "+=,.@_-", min_size=1, max_size=32),
)
# Any Unicode a client may send (no surrogates: they are not valid in UTF-8 JSON).
prompts = st.text(min_size=1, max_size=300)
statuses = st.sampled_from(FINAL_STATUSES)
error_messages = st.none() | st.text(max_size=200)

# Floats DynamoDB can hold (38 significant digits, magnitudes 1e-130 .. 1e126); a binary
# float's repr needs at most 17 digits, so every one in this range is exact.
dynamo_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: f == 0 or 1e-120 < abs(f) < 1e120
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | dynamo_floats
    | st.text(max_size=40)
)
# Map keys are DynamoDB attribute names: they may not be empty.
json_keys = st.text(min_size=1, max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=12,
)
responses = st.dictionaries(json_keys, json_values, max_size=6)


def _same(given_value: Any, stored: Any) -> bool:
    """Equal as JSON: the same types (a bool is not a number) and values; numbers compare
    by value (DynamoDB keeps no int/float distinction)."""
    if isinstance(given_value, bool) or isinstance(stored, bool):
        return type(given_value) is type(stored) and given_value == stored
    if isinstance(given_value, int | float) and isinstance(stored, int | float):
        return given_value == stored
    if isinstance(given_value, dict) and isinstance(stored, dict):
        return given_value.keys() == stored.keys() and all(
            _same(given_value[key], stored[key]) for key in given_value
        )
    if isinstance(given_value, list) and isinstance(stored, list):
        return len(given_value) == len(stored) and all(
            _same(a, b) for a, b in zip(given_value, stored, strict=True)
        )
    return type(given_value) is type(stored) and given_value == stored


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fresh_principal() -> str:
    return f"arn:aws:iam::123456789012:user/prop-{uuid.uuid4().hex}"


def test_the_properties_assume_a_30_minute_idle_timeout() -> None:
    assert django_settings.SESSION_IDLE_MINUTES * MINUTE_MS == IDLE_MS


# --- Property 3: session id consistency ---------------------------------------------------


def _expected_timestamps(nows: list[int]) -> list[int] | None:
    """The timestamps interaction_begin gives invocations at ``nows`` (non-decreasing):
    the first free millisecond from each, trying at most 5; None when one would not
    find a free millisecond (such examples are not generated)."""
    taken: list[int] = []
    for now in nows:
        timestamp = max(now, taken[-1] + 1) if taken else now
        if timestamp - now > 4:
            return None
        taken.append(timestamp)
    return taken


invocation = st.fixed_dictionaries(
    {
        # Milliseconds since the previous invocation: 0..3 make invocations share a
        # millisecond (interaction_begin moves to the next free one).
        "gap_ms": st.integers(0, 3) | st.integers(0, 5 * MINUTE_MS),
        "prompt": prompts,
        "status": statuses,
        "response": st.none() | responses,
        "error_message": error_messages,
        "execution_time_ms": st.integers(0, 300_000),
    }
)


@PROPERTY
@given(
    principal=principals,
    invocations=st.lists(invocation, min_size=1, max_size=8),
    page_size=st.integers(1, 4),
)
def test_property_3_session_id_is_kept_by_every_interaction_and_page(
    sessions_table: str, principal: str, invocations: list[dict[str, Any]], page_size: int
) -> None:
    gaps = [0] + [step["gap_ms"] for step in invocations[1:]]
    base = _now_ms() - sum(gaps) - 1_000
    nows = [base + sum(gaps[: i + 1]) for i in range(len(gaps))]
    expected_timestamps = _expected_timestamps(nows)
    assume(expected_timestamps is not None)

    session_id: str | None = None
    request_ids: list[str] = []
    for step, now in zip(invocations, nows, strict=True):
        request_id = str(uuid.uuid4())
        started = interaction_begin(
            session_id=session_id,
            request_id=request_id,
            prompt=step["prompt"],
            principal_arn=principal,
            now_ms=now,
        )
        if session_id is None:
            assert started.new_session
            assert is_uuid4(started.session_id)
            parsed = uuid.UUID(started.session_id)
            assert parsed.version == 4
            assert str(parsed) == started.session_id
            session_id = started.session_id
        else:
            assert not started.new_session
            assert started.session_id == session_id
        assert interaction_complete(
            started,
            status=step["status"],
            response=step["response"],
            execution_time_ms=step["execution_time_ms"],
            error_message=step["error_message"],
        )
        request_ids.append(request_id)
    assert session_id is not None

    # Every page of the history, at any page size, carries the session's id.
    read_at = nows[-1] + 1_000
    seen = []
    cursor = None
    pages = 0
    while True:
        page = session_history_get(
            session_id=session_id,
            principal_arn=principal,
            limit=page_size,
            cursor=cursor,
            now_ms=read_at,
        )
        pages += 1
        assert page.session_id == session_id
        assert page.interaction_count == len(invocations)
        assert all(interaction.session_id == session_id for interaction in page.interactions)
        seen.extend(page.interactions)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages <= len(invocations)
    timestamps = [interaction.timestamp for interaction in seen]
    assert timestamps == expected_timestamps
    assert all(a < b for a, b in itertools.pairwise(timestamps))
    assert [interaction.request_id for interaction in seen] == request_ids
    assert [interaction.prompt for interaction in seen] == [s["prompt"] for s in invocations]
    assert page.created_at == timestamps[0]
    assert page.last_interaction_at == timestamps[-1]

    # The stored items themselves: every interaction under that id, owned by the caller.
    stored = list(SessionInteraction.query(session_id, SessionInteraction.timestamp > 0))
    assert {item.session_id for item in stored} == {session_id}
    assert {item.user_id for item in stored} == {principal}
    assert [int(item.timestamp) for item in stored] == timestamps
    listed = [
        s
        for s in sessions_list(principal_arn=principal, now_ms=read_at).sessions
        if s.session_id == session_id
    ]
    assert len(listed) == 1
    assert listed[0].interaction_count == len(invocations)


# --- Property 7: session persistence ------------------------------------------------------


@PROPERTY
@given(
    principal=principals,
    prompt=prompts,
    status=statuses,
    response=responses,
    error_message=error_messages,
    execution_time_ms=st.integers(0, 10**9),
    age_ms=st.integers(0, IDLE_MS),
)
@example(
    principal="arn:aws:iam::000000000000:user/a",
    prompt="Flight AA123 delayed 3 hours due to weather at ORD ✈️ 東京",
    status="success",
    response={
        "assessment": {"final_decision": "conditional", "confidence": 0.85, "score": 7},
        "recommendations": ["Rebook", "Vouchers", {"nested": [None, True, False, ""]}],
        "empty": {},
        "none": None,
    },
    error_message=None,
    execution_time_ms=1234,
    age_ms=0,
)
def test_property_7_a_completed_invocation_is_stored_exactly(
    sessions_table: str,
    principal: str,
    prompt: str,
    status: str,
    response: dict[str, Any],
    error_message: str | None,
    execution_time_ms: int,
    age_ms: int,
) -> None:
    now = _now_ms() - age_ms
    request_id = str(uuid.uuid4())
    started = interaction_begin(
        session_id=None, request_id=request_id, prompt=prompt, principal_arn=principal, now_ms=now
    )
    assert started.timestamp == now

    # Write-ahead: the interaction is there, in progress, before it completes.
    pending = SessionInteraction.get(started.session_id, started.timestamp, consistent_read=True)
    assert pending.status == "in_progress"
    assert pending.response is None
    assert pending.execution_time_ms is None

    assert interaction_complete(
        started,
        status=status,  # type: ignore[arg-type]
        response=response,
        execution_time_ms=execution_time_ms,
        error_message=error_message,
    )

    item = SessionInteraction.get(started.session_id, started.timestamp, consistent_read=True)
    assert item.session_id == started.session_id
    assert int(item.timestamp) == now
    assert item.request_id == request_id
    assert item.prompt == prompt
    assert item.status == status
    assert item.execution_time_ms == execution_time_ms
    assert item.error_message == error_message
    assert item.user_id == principal
    assert item.response is not None
    assert _same(response, item.response)
    expected_ttl = datetime.fromtimestamp(now / 1000, UTC) + timedelta(
        days=django_settings.SESSION_TTL_DAYS
    )
    assert int(item.ttl.timestamp()) == int(expected_ttl.timestamp())

    # ... and the history reads it back the same.
    [read] = session_history_get(
        session_id=started.session_id, principal_arn=principal, now_ms=now
    ).interactions
    assert (read.session_id, read.timestamp, read.request_id) == (
        started.session_id,
        now,
        request_id,
    )
    assert (read.prompt, read.status, read.execution_time_ms, read.error_message) == (
        prompt,
        status,
        execution_time_ms,
        error_message,
    )
    assert _same(response, read.response)

    session = SessionItem.get(started.session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    assert session.owner == principal
    assert (int(session.created_at), int(session.last_interaction_at)) == (now, now)
    assert int(session.interaction_count) == 1


# --- Property 13: session expiration ------------------------------------------------------

# How long each session has been idle: anywhere in 0..120 min, whole minutes, and the
# milliseconds around the 30-minute limit.
idle_ages = (
    st.integers(0, 4 * IDLE_MS)
    | st.integers(0, 120).map(lambda minutes: minutes * MINUTE_MS)
    | st.integers(IDLE_MS - 2, IDLE_MS + 2)
)
session_ages = st.lists(
    st.tuples(idle_ages, st.integers(0, IDLE_MS)),  # (idle age, earlier interaction before it)
    min_size=1,
    max_size=5,
)


def _seed_sessions(principal: str, now: int, ages: list[tuple[int, int]]) -> list[str]:
    """One session per (age, earlier): an interaction ``earlier`` ms before the last one
    (when earlier > 0) and the last one ``age`` ms before ``now``."""
    session_ids = []
    for age, earlier in ages:
        last = now - age
        session_id = None
        for at in [last - earlier, last] if earlier else [last]:
            started = interaction_begin(
                session_id=session_id,
                request_id=str(uuid.uuid4()),
                prompt="p",
                principal_arn=principal,
                now_ms=at,
            )
            assert started.timestamp == at
            session_id = started.session_id
            interaction_complete(started, status="success", response={}, execution_time_ms=1)
        assert session_id is not None
        session_ids.append(session_id)
    return session_ids


@PROPERTY
@given(ages=session_ages)
@example(ages=[(IDLE_MS, 0)])
@example(ages=[(IDLE_MS - 1, 0), (IDLE_MS + 1, 0)])
def test_property_13_expired_iff_idle_longer_than_30_minutes(
    sessions_table: str, ages: list[tuple[int, int]]
) -> None:
    """The history's ``expired``, the listing's ``expired``, and whether the session still
    takes an invocation, all agree with idle > 30 min."""
    principal = _fresh_principal()
    now = _now_ms()
    session_ids = _seed_sessions(principal, now, ages)
    expected = {sid: age > IDLE_MS for sid, (age, _) in zip(session_ids, ages, strict=True)}

    for session_id, expired in expected.items():
        history = session_history_get(session_id=session_id, principal_arn=principal, now_ms=now)
        assert history.expired is expired, (session_id, now - history.last_interaction_at)

    listed = sessions_list(principal_arn=principal, now_ms=now).sessions
    assert {s.session_id: s.expired for s in listed} == expected
    last_used = [s.last_interaction_at for s in listed]
    assert last_used == sorted(last_used, reverse=True)

    for session_id, expired in expected.items():
        count = session_history_get(
            session_id=session_id, principal_arn=principal, now_ms=now
        ).interaction_count
        if expired:
            with pytest.raises(SessionExpired) as refused:
                interaction_begin(
                    session_id=session_id,
                    request_id=str(uuid.uuid4()),
                    prompt="again",
                    principal_arn=principal,
                    now_ms=now,
                )
            assert refused.value.status_code == 409
            assert refused.value.error_code == "SESSION_EXPIRED"
            assert refused.value.details is not None
            assert refused.value.details["session_id"] == session_id
            after = session_history_get(session_id=session_id, principal_arn=principal, now_ms=now)
            assert after.interaction_count == count  # a refused invocation leaves no trace
            assert "again" not in [i.prompt for i in after.interactions]
        else:
            started = interaction_begin(
                session_id=session_id,
                request_id=str(uuid.uuid4()),
                prompt="again",
                principal_arn=principal,
                now_ms=now,
            )
            assert started.session_id == session_id
            assert (
                session_history_get(
                    session_id=session_id, principal_arn=principal, now_ms=now
                ).interaction_count
                == count + 1
            )


@PROPERTY
@given(ages=session_ages)
@example(ages=[(IDLE_MS, 0)])  # idle exactly 30 min: not expired
def test_property_13_active_queries_exclude_exactly_the_expired_sessions(
    sessions_table: str, ages: list[tuple[int, int]]
) -> None:
    """``sessions_list(active=True)`` lists exactly the sessions idle for at most 30 min,
    ``active=False`` exactly the others, and each says so in ``expired``."""
    principal = _fresh_principal()
    now = _now_ms()
    session_ids = _seed_sessions(principal, now, ages)
    expected = {sid: age > IDLE_MS for sid, (age, _) in zip(session_ids, ages, strict=True)}

    active = sessions_list(principal_arn=principal, active=True, now_ms=now).sessions
    inactive = sessions_list(principal_arn=principal, active=False, now_ms=now).sessions
    assert {s.session_id: s.expired for s in active} == {
        sid: False for sid, expired in expected.items() if not expired
    }
    assert {s.session_id: s.expired for s in inactive} == {
        sid: True for sid, expired in expected.items() if expired
    }
    for page in (active, inactive):
        last_used = [s.last_interaction_at for s in page]
        assert last_used == sorted(last_used, reverse=True)
        assert len({s.session_id for s in page}) == len(page)  # each session listed once
