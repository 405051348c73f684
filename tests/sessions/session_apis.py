"""What the tests of GET /api/v1/sessions/{session_id} and GET /api/v1/sessions share:
the sessions they read, seeded in this process with the service functions (tests/sessions/
conftest.py binds them to the app's table for as long as the seeding takes), and signed
requests to both endpoints with the checks of their answers.

Four key pairs: the dev key (most sessions), a second principal that owns one session
(for "another caller's session"), a third whose sessions only the listing tests read (so
their listings are exact), and a fourth for the test that rewrites an item in the format
of earlier versions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from scripts.stack import Server
from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.services import InteractionStarted
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_send

OTHER_KEY = "AKIAOTHERPRINCIPAL01"
OTHER_SECRET = "other-principal-secret-key"
OTHER_PRINCIPAL = "arn:aws:iam::222233334444:user/other-controller"
LISTER_KEY = "AKIALISTERPRINCIPAL1"
LISTER_SECRET = "lister-principal-secret-key"
LISTER_PRINCIPAL = "arn:aws:iam::555566667777:user/lister"
READER_KEY = "AKIAREADERPRINCIPAL1"
READER_SECRET = "reader-principal-secret-key"
READER_PRINCIPAL = "arn:aws:iam::888899990000:user/reader"
KEYS = {
    DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL},
    OTHER_KEY: {"secret": OTHER_SECRET, "principal": OTHER_PRINCIPAL},
    LISTER_KEY: {"secret": LISTER_SECRET, "principal": LISTER_PRINCIPAL},
    READER_KEY: {"secret": READER_SECRET, "principal": READER_PRINCIPAL},
}
DEV = {"key": DEV_KEY, "secret": DEV_SECRET}
OTHER = {"key": OTHER_KEY, "secret": OTHER_SECRET}
LISTER = {"key": LISTER_KEY, "secret": LISTER_SECRET}
READER = {"key": READER_KEY, "secret": READER_SECRET}

MINUTE_MS = 60_000
BIG_SESSION_SIZE = 500
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


# --- seeding ------------------------------------------------------------------------------


@dataclass
class Seeded:
    small: str = ""  # dev: 3 interactions (success, error, still in progress)
    small_interactions: list[dict[str, Any]] = field(default_factory=list)
    second: str = ""  # dev: 3 interactions, for cursors that belong to another session
    expired: str = ""  # dev: last used 2 hours ago
    big: str = ""  # dev: BIG_SESSION_SIZE interactions, one second apart
    big_request_ids: list[str] = field(default_factory=list)
    foreign: str = ""  # owned by OTHER_PRINCIPAL
    lister_sessions: list[str] = field(default_factory=list)  # most recently used first
    lister_expired: list[bool] = field(default_factory=list)
    lister_counts: list[int] = field(default_factory=list)


def _begin(session_id: str | None, principal: str, at: int, prompt: str) -> InteractionStarted:
    started = interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt=prompt,
        principal_arn=principal,
        now_ms=at,
    )
    assert started.timestamp == at
    return started


def _run(session_id: str | None, principal: str, at: int, prompt: str = "p") -> str:
    started = _begin(session_id, principal, at, prompt)
    assert interaction_complete(
        started, status="success", response={"ok": True}, execution_time_ms=10
    )
    return started.session_id


def _seed(seeded: Seeded, now: int) -> None:
    # The small session: one of each kind of outcome.
    outcomes: list[dict[str, Any]] = [
        {
            "prompt": "Flight AA123 delayed 3 hours due to weather at ORD ✈ 東京",
            "status": "success",
            "response": {"assessment": {"final_decision": "rebook", "options": [1, "two", None]}},
            "execution_time_ms": 1234,
            "error_message": None,
        },
        {
            "prompt": "Crew duty limit at JFK",
            "status": "error",
            "response": None,
            "execution_time_ms": 55,
            "error_message": "The runtime reported an error.",
        },
        {
            "prompt": "Still thinking",
            "status": "in_progress",
            "response": None,
            "execution_time_ms": None,
            "error_message": None,
        },
    ]
    session_id = None
    for offset, outcome in enumerate(outcomes):
        started = _begin(session_id, DEV_PRINCIPAL, now - 60_000 + offset * 1000, outcome["prompt"])
        session_id = started.session_id
        if outcome["status"] != "in_progress":
            assert interaction_complete(
                started,
                status=outcome["status"],
                response=outcome["response"],
                execution_time_ms=outcome["execution_time_ms"],
                error_message=outcome["error_message"],
            )
        seeded.small_interactions.append(
            {
                **outcome,
                "session_id": started.session_id,
                "request_id": started.request_id,
                "timestamp": started.timestamp,
            }
        )
    assert session_id is not None
    seeded.small = session_id

    second = None
    for offset in range(3):
        second = _run(second, DEV_PRINCIPAL, now - 50_000 + offset * 1000)
    assert second is not None
    seeded.second = second
    seeded.expired = _run(None, DEV_PRINCIPAL, now - 120 * MINUTE_MS)
    seeded.foreign = _run(None, OTHER_PRINCIPAL, now - 30_000)

    # The big session: one interaction a second, the last one a second ago.
    big = None
    for index in range(BIG_SESSION_SIZE):
        started = _begin(
            big, DEV_PRINCIPAL, now - (BIG_SESSION_SIZE - index) * 1000, f"prompt {index}"
        )
        big = started.session_id
        assert interaction_complete(
            started, status="success", response={"index": index}, execution_time_ms=index
        )
        seeded.big_request_ids.append(started.request_id)
    assert big is not None
    seeded.big = big

    # The lister's sessions: (minutes ago of each interaction), newest session first.
    # The fourth started 50 min ago (before the idle cutoff) but was used 25 min ago: it
    # is active, and listed once, where its latest interaction stands. The oldest has an
    # interaction older than every session's latest one.
    plans = [[1], [4, 2], [5], [50, 25], [45], [100, 90], [24 * 60 + 10, 24 * 60]]
    for minutes_ago in plans:
        lister = None
        for minutes in minutes_ago:
            lister = _run(lister, LISTER_PRINCIPAL, now - minutes * MINUTE_MS)
        assert lister is not None
        seeded.lister_sessions.append(lister)
        seeded.lister_expired.append(minutes_ago[-1] > 30)
        seeded.lister_counts.append(len(minutes_ago))


# --- requests -----------------------------------------------------------------------------


def _get(
    api: Server, path: str, params: dict[str, Any] | None = None, who: dict[str, str] = DEV
) -> httpx.Response:
    url = f"{api.http_url}{path}"
    if params:
        url = f"{url}?{urlencode(params)}"
    return botocore_send("GET", url, **who)


def _history(api: Server, session_id: str, who: dict[str, str] = DEV, **params: Any) -> Any:
    return _get(api, f"/api/v1/sessions/{session_id}", params, who)


def _list(api: Server, who: dict[str, str] = DEV, **params: Any) -> httpx.Response:
    return _get(api, "/api/v1/sessions", params, who)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["status"] == "error"
    assert body["error_code"] == code, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def _assert_rate_limit_headers(response: httpx.Response) -> None:
    for name in RATE_LIMIT_HEADERS:
        assert name in response.headers, (name, dict(response.headers))
    limit = int(response.headers["X-RateLimit-Limit"])
    assert limit > 0
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < limit
    assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 3600


def _tamper(cursor: str) -> str:
    """The cursor with one character of its signature changed."""
    index = len(cursor) - 10
    replacement = "A" if cursor[index] != "A" else "B"
    return cursor[:index] + replacement + cursor[index + 1 :]
