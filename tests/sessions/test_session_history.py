"""GET /api/v1/sessions/{session_id} against the running app (gunicorn, DynamoDB Local),
with SigV4-signed requests; and what it shares with GET /api/v1/sessions: 401 without a
signature, the limit's bounds."""

from __future__ import annotations

import itertools
import math
import time
import uuid
from typing import Any

import httpx
import pytest
from pynamodb.attributes import MapAttribute

from scripts.stack import Server
from sessions.complete import interaction_complete
from sessions.models import SessionInteraction, sessions_table_bind
from skymarshal_api.web.cursors import cursor_encode
from tests.sessions.session_apis import (
    BIG_SESSION_SIZE,
    LISTER,
    OTHER,
    READER,
    READER_PRINCIPAL,
    Seeded,
    _assert_rate_limit_headers,
    _begin,
    _error,
    _history,
    _list,
    _tamper,
)

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def module_sessions_table(session_apis_table: str) -> str:
    """The table that ``api`` serves (tests/sessions/conftest.py), for the test that
    rewrites one of its items."""
    return session_apis_table


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
