"""GET /api/v1/sessions/{session_id} and GET /api/v1/sessions against the running app
(gunicorn, DynamoDB Local), with SigV4-signed requests.

The sessions are seeded in this process with the service functions, bound to the module's
table for as long as the seeding takes. Four key pairs: the dev key (most sessions), a
second principal that owns one session (for "another caller's session"), a third whose
sessions only the listing tests read (so their listings are exact), and a fourth for the
test that rewrites an item in the format of earlier versions.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pynamodb.attributes import MapAttribute

from scripts.stack import Server
from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SessionInteraction, sessions_table_bind
from sessions.services import InteractionStarted
from skymarshal_api.web.cursors import cursor_encode
from tests.conftest import ApiFactory
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_send

pytestmark = pytest.mark.slow

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
HISTORY_KEYS = {
    "session_id",
    "created_at",
    "last_interaction_at",
    "interaction_count",
    "expired",
    "interactions",
    "next_cursor",
}
INTERACTION_KEYS = {
    "session_id",
    "request_id",
    "timestamp",
    "prompt",
    "response",
    "status",
    "execution_time_ms",
    "error_message",
}
SUMMARY_KEYS = {"session_id", "created_at", "last_interaction_at", "interaction_count", "expired"}


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


@pytest.fixture(scope="module")
def seeded(module_sessions_table: str, dynamodb_local: Server) -> Seeded:
    sessions_table_bind(table_name=module_sessions_table, endpoint_url=dynamodb_local.http_url)
    try:
        data = Seeded()
        _seed(data, int(time.time() * 1000))
    finally:
        sessions_table_bind()
    return data


@pytest.fixture(scope="module")
def api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table, SIGV4_LOCAL_KEYS=json.dumps(KEYS)
    )


# --- helpers ------------------------------------------------------------------------------


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


# --- GET /api/v1/sessions/{session_id} -----------------------------------------------------


def test_history_has_the_session_history_shape(api: Server, seeded: Seeded) -> None:
    response = _history(api, seeded.small)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    _assert_rate_limit_headers(response)
    body = response.json()
    assert set(body) == HISTORY_KEYS
    expected = seeded.small_interactions
    assert body["session_id"] == seeded.small
    assert body["created_at"] == expected[0]["timestamp"]
    assert body["last_interaction_at"] == expected[-1]["timestamp"]
    assert body["interaction_count"] == 3
    assert body["expired"] is False
    assert body["next_cursor"] is None
    assert all(set(interaction) == INTERACTION_KEYS for interaction in body["interactions"])
    assert body["interactions"] == [
        {key: interaction[key] for key in INTERACTION_KEYS} for interaction in expected
    ]


# A response with what a Map and a JSON text might hold differently: key order, whole
# floats, exponents, -0.0, big integers, nesting, empty containers, nulls, Unicode.
STORED_RESPONSE = {
    "zeta": 1,
    "assessment": {"severity": "high", "confidence": 1.0, "delay_minutes": 240},
    "agents": [
        {"name": "crew", "confidence": 0.95, "notes": [], "extra": {}},
        {"name": "maintenance ✈ 東京", "confidence": 1e-7, "limit": 1e20, "zero": -0.0},
    ],
    "big": 12345678901234567890123456789,
    "flags": [True, False, None, "", 2.5],
    "Alpha": None,
}


def test_an_item_written_as_a_map_reads_as_one_stored_compressed(
    api: Server, module_sessions_table: str, dynamodb_local: Server
) -> None:
    """Items written before responses were stored compressed hold them as a Map: the
    history renders them byte for byte as it renders the same response stored now."""
    sessions_table_bind(table_name=module_sessions_table, endpoint_url=dynamodb_local.http_url)
    try:
        started = _begin(None, READER_PRINCIPAL, int(time.time() * 1000) - 5000, "compare")
        assert interaction_complete(
            started, status="success", response=STORED_RESPONSE, execution_time_ms=7
        )
        client: Any = SessionInteraction._get_connection().connection.client
        key = {"session_id": {"S": started.session_id}, "timestamp": {"N": str(started.timestamp)}}
        item = client.get_item(TableName=module_sessions_table, Key=key)["Item"]
        assert set(item["response"]) == {"B"}
        new_format = _history(api, started.session_id, READER)
        assert new_format.status_code == 200, new_format.text

        item["response"] = {"M": MapAttribute[str, Any]().serialize(STORED_RESPONSE)}
        client.put_item(TableName=module_sessions_table, Item=item)
        old_format = _history(api, started.session_id, READER)
    finally:
        sessions_table_bind()
    assert old_format.status_code == 200, old_format.text
    assert old_format.content == new_format.content
    [interaction] = new_format.json()["interactions"]
    assert interaction["response"] == STORED_RESPONSE
    # Keys sorted at every level; numbers as they were written.
    assert b'"response":{"Alpha":null,"agents":[{"confidence":0.95,"extra":{},' in (
        new_format.content
    )
    assert '"limit":1e+20,"name":"maintenance ✈ 東京","zero":-0.0}'.encode() in (new_format.content)
    assert b'"assessment":{"confidence":1.0,"delay_minutes":240' in new_format.content


def test_history_of_an_expired_session_stays_readable(api: Server, seeded: Seeded) -> None:
    response = _history(api, seeded.expired)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expired"] is True
    assert body["interaction_count"] == 1
    assert [i["status"] for i in body["interactions"]] == ["success"]


def _not_uuid4_ids(small: str) -> list[str]:
    v4 = str(uuid.uuid4())
    return [
        small.upper(),  # an existing session's id, upper-case
        v4.upper(),
        v4.replace("-", ""),
        str(uuid.uuid1()),
        str(uuid.uuid5(uuid.NAMESPACE_URL, "skymarshal")),
        v4[:19] + "c" + v4[20:],  # not the RFC 4122 variant
        f"urn:uuid:{v4}",
        v4 + "0",
        v4[:-1],
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "12345",
        "abcdef01-2345-4678-9abc-def01234567g",
    ]


def test_history_rejects_ids_that_are_not_canonical_uuid4(api: Server, seeded: Seeded) -> None:
    for bad in _not_uuid4_ids(seeded.small):
        response = _history(api, bad)
        body = _error(response, 400, "INVALID_REQUEST")
        assert "session_id" in body["details"]["fields"], (bad, body)
        _assert_rate_limit_headers(response)


def test_unknown_and_foreign_sessions_are_the_same_404(api: Server, seeded: Seeded) -> None:
    # The foreign session exists: its owner reads it.
    assert _history(api, seeded.foreign, who=OTHER).status_code == 200

    unknown = _history(api, str(uuid.uuid4()))
    foreign = _history(api, seeded.foreign)
    bodies = []
    for response in (unknown, foreign):
        body = _error(response, 404, "SESSION_NOT_FOUND")
        _assert_rate_limit_headers(response)
        bodies.append({k: v for k, v in body.items() if k not in ("request_id", "timestamp")})
    assert bodies[0] == bodies[1]
    assert seeded.foreign not in foreign.text
    # Nothing else tells them apart either.
    assert unknown.headers["Content-Length"] == foreign.headers["Content-Length"]
    assert unknown.headers["Content-Type"] == foreign.headers["Content-Type"]
    # ... and the other principal cannot read the dev key's sessions.
    _error(_history(api, seeded.small, who=OTHER), 404, "SESSION_NOT_FOUND")


def test_requests_without_a_signature_get_401(api: Server, seeded: Seeded) -> None:
    for path in (
        f"/api/v1/sessions/{seeded.small}",
        f"/api/v1/sessions/{uuid.uuid4()}",
        "/api/v1/sessions/not-a-uuid",
        "/api/v1/sessions",
        "/api/v1/sessions?active=true",
    ):
        response = httpx.get(f"{api.http_url}{path}", timeout=15)
        body = _error(response, 401, "UNAUTHORIZED")
        assert seeded.small not in response.text
        assert body["details"] is None or "interactions" not in body["details"]


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5"])
def test_limit_out_of_range_is_a_400_naming_the_field(
    api: Server, seeded: Seeded, limit: str
) -> None:
    for response in (_history(api, seeded.small, limit=limit), _list(api, limit=limit)):
        body = _error(response, 400, "INVALID_REQUEST")
        assert set(body["details"]["fields"]) == {"limit"}, body


def test_limits_at_the_bounds_are_accepted(api: Server, seeded: Seeded) -> None:
    one = _history(api, seeded.small, limit=1).json()
    assert len(one["interactions"]) == 1
    assert one["next_cursor"] is not None
    hundred = _history(api, seeded.big, limit=100).json()
    assert len(hundred["interactions"]) == 100
    assert _list(api, limit=1).status_code == 200
    assert _list(api, limit=100).status_code == 200


def test_an_invalid_active_flag_is_a_400_naming_the_field(api: Server) -> None:
    body = _error(_list(api, active="maybe"), 400, "INVALID_REQUEST")
    assert set(body["details"]["fields"]) == {"active"}


def test_tampered_and_foreign_history_cursors_are_invalid(api: Server, seeded: Seeded) -> None:
    cursor = _history(api, seeded.small, limit=1).json()["next_cursor"]
    second_cursor = _history(api, seeded.second, limit=1).json()["next_cursor"]
    list_cursor = _list(api, who=LISTER, limit=1).json()["next_cursor"]
    assert cursor
    assert second_cursor
    assert list_cursor
    assert _history(api, seeded.small, limit=1, cursor=cursor).status_code == 200

    invalid = {
        "tampered signature": _tamper(cursor),
        "tampered payload": cursor[:3] + ("x" if cursor[3] != "x" else "y") + cursor[4:],
        "another session's": second_cursor,
        "the listing's": list_cursor,
        "junk": "not-a-cursor",
        "empty signature": cursor.rsplit(":", 1)[0] + ":",
        # Signed as the app signs, for another purpose or with a position it never issues.
        "another purpose": cursor_encode({"s": seeded.small, "t": 0}, purpose="sessions"),
        "position not a number": cursor_encode({"s": seeded.small, "t": "0"}, purpose="history"),
        "not a position": cursor_encode([seeded.small, 0], purpose="history"),  # type: ignore[arg-type]
    }
    for name, bad in invalid.items():
        response = _history(api, seeded.small, limit=1, cursor=bad)
        body = _error(response, 400, "INVALID_CURSOR")
        assert body["error_message"], name


@pytest.mark.parametrize("limit", [50, 37])
def test_paging_returns_every_interaction_once_in_order(
    api: Server, seeded: Seeded, limit: int
) -> None:
    interactions: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = _history(api, seeded.big, **params)
        assert response.status_code == 200, response.text
        _assert_rate_limit_headers(response)
        page = response.json()
        pages += 1
        assert page["session_id"] == seeded.big
        assert page["interaction_count"] == BIG_SESSION_SIZE
        assert page["expired"] is False
        assert all(i["session_id"] == seeded.big for i in page["interactions"])
        interactions.extend(page["interactions"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert page["interactions"], "the last page is empty"
            break
        assert len(page["interactions"]) == limit
        assert pages <= BIG_SESSION_SIZE // limit + 1
    assert pages == math.ceil(BIG_SESSION_SIZE / limit)
    assert [i["request_id"] for i in interactions] == seeded.big_request_ids
    timestamps = [i["timestamp"] for i in interactions]
    assert all(a < b for a, b in itertools.pairwise(timestamps))
    assert [i["prompt"] for i in interactions] == [
        f"prompt {index}" for index in range(BIG_SESSION_SIZE)
    ]
    assert [i["response"] for i in interactions] == [
        {"index": index} for index in range(BIG_SESSION_SIZE)
    ]


# --- GET /api/v1/sessions -------------------------------------------------------------------


def test_the_list_is_newest_first_with_each_session_once(api: Server, seeded: Seeded) -> None:
    response = _list(api, who=LISTER)
    assert response.status_code == 200, response.text
    _assert_rate_limit_headers(response)
    body = response.json()
    assert set(body) == {"sessions", "next_cursor"}
    assert body["next_cursor"] is None
    sessions = body["sessions"]
    assert all(set(s) == SUMMARY_KEYS for s in sessions)
    assert [s["session_id"] for s in sessions] == seeded.lister_sessions
    assert [s["expired"] for s in sessions] == seeded.lister_expired
    assert [s["interaction_count"] for s in sessions] == seeded.lister_counts
    last_used = [s["last_interaction_at"] for s in sessions]
    assert last_used == sorted(last_used, reverse=True)
    assert all(s["created_at"] <= s["last_interaction_at"] for s in sessions)


def test_the_active_filter(api: Server, seeded: Seeded) -> None:
    pairs = list(zip(seeded.lister_sessions, seeded.lister_expired, strict=True))
    active = _list(api, who=LISTER, active="true")
    inactive = _list(api, who=LISTER, active="false")
    for response in (active, inactive):
        assert response.status_code == 200, response.text
        _assert_rate_limit_headers(response)
    assert [s["session_id"] for s in active.json()["sessions"]] == [
        sid for sid, expired in pairs if not expired
    ]
    assert all(s["expired"] is False for s in active.json()["sessions"])
    assert [s["session_id"] for s in inactive.json()["sessions"]] == [
        sid for sid, expired in pairs if expired
    ]
    assert all(s["expired"] is True for s in inactive.json()["sessions"])


@pytest.mark.parametrize("active", [None, "true", "false"])
def test_the_list_pages_with_its_cursor(api: Server, seeded: Seeded, active: str | None) -> None:
    params: dict[str, Any] = {} if active is None else {"active": active}
    whole = _list(api, who=LISTER, **params).json()["sessions"]
    assert whole
    collected: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = _list(api, who=LISTER, **query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["sessions"]) <= 2
        collected.extend(page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["sessions"]) == 2
        assert pages <= len(whole)
    assert collected == whole


@pytest.mark.parametrize("active", [None, "true", "false"])
def test_the_list_ends_with_a_null_cursor_on_the_page_that_holds_the_last_session(
    api: Server, seeded: Seeded, active: str | None
) -> None:
    """No cursor leads to an empty page: the page that lists the caller's last session
    (in this listing) has next_cursor null, at every page size."""
    params: dict[str, Any] = {} if active is None else {"active": active}
    total = len(_list(api, who=LISTER, **params).json()["sessions"])
    wrong: dict[int, list[int]] = {}
    for limit in range(1, total + 2):
        cursor, sizes = None, []
        while True:
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            page = _list(api, who=LISTER, **query).json()
            sizes.append(len(page["sessions"]))
            cursor = page["next_cursor"]
            if cursor is None or len(sizes) > total + 1:
                break
        expected = [limit] * (total // limit) + ([total % limit] if total % limit else [])
        if sizes != expected:
            wrong[limit] = sizes
    assert not wrong, f"active={active}, {total} sessions: page sizes by limit {wrong}"


def test_the_list_holds_only_the_callers_sessions(api: Server, seeded: Seeded) -> None:
    dev = {s["session_id"] for s in _list(api).json()["sessions"]}
    assert dev == {seeded.small, seeded.second, seeded.expired, seeded.big}
    other = [s["session_id"] for s in _list(api, who=OTHER).json()["sessions"]]
    assert other == [seeded.foreign]
    lister = {s["session_id"] for s in _list(api, who=LISTER).json()["sessions"]}
    assert lister == set(seeded.lister_sessions)


def test_list_cursors_are_bound_to_caller_and_filter(api: Server, seeded: Seeded) -> None:
    cursor = _list(api, who=LISTER, limit=2).json()["next_cursor"]
    active_cursor = _list(api, who=LISTER, limit=2, active="true").json()["next_cursor"]
    history_cursor = _history(api, seeded.small, limit=1).json()["next_cursor"]
    assert cursor
    assert active_cursor
    assert history_cursor
    assert _list(api, who=LISTER, limit=2, cursor=cursor).status_code == 200

    refused = [
        _list(api, who=DEV, limit=2, cursor=cursor),  # another caller's cursor
        _list(api, who=LISTER, limit=2, cursor=active_cursor),  # active=true's, unfiltered
        _list(api, who=LISTER, limit=2, active="false", cursor=active_cursor),
        _list(api, who=LISTER, limit=2, active="true", cursor=cursor),
        _list(api, who=LISTER, limit=2, cursor=_tamper(cursor)),
        _list(api, who=LISTER, limit=2, cursor=history_cursor),
        _list(api, who=LISTER, limit=2, cursor="not-a-cursor"),
    ]
    for response in refused:
        _error(response, 400, "INVALID_CURSOR")
        _assert_rate_limit_headers(response)
