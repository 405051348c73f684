"""GET /api/v1/sessions against the running app (gunicorn, DynamoDB Local), with
SigV4-signed requests: the caller's sessions, newest first, filtered and paged."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.stack import Server
from tests.sessions.session_apis import (
    DEV,
    LISTER,
    OTHER,
    Seeded,
    _assert_rate_limit_headers,
    _error,
    _history,
    _list,
    _tamper,
)

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"session_id", "created_at", "last_interaction_at", "interaction_count", "expired"}


def test_an_invalid_active_flag_is_a_400_naming_the_field(api: Server) -> None:
    body = _error(_list(api, active="maybe"), 400, "INVALID_REQUEST")
    assert set(body["details"]["fields"]) == {"active"}


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
