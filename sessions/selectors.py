"""Reads from the sessions table: a session's history, a caller's sessions, table status.

No read scans the table: a history is one Query on the session's partition, a caller's
sessions one Query on the GSI user-sessions-index. Interactions past their ``ttl`` are
left out even while DynamoDB has not deleted them yet (its TTL deletion is lazy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException, TableDoesNotExist

from sessions.models import (
    SESSION_ITEM_TIMESTAMP,
    SessionInteraction,
    SessionItem,
    SessionsTableProbe,
)
from sessions.services import clock_ms, idle_cutoff_ms, storage_unavailable
from skymarshal_api.web.cursors import cursor_decode, cursor_encode
from skymarshal_api.web.errors import InvalidCursor, SessionNotFound, StorageUnavailable


@dataclass(frozen=True)
class Interaction:
    session_id: str
    request_id: str
    timestamp: int
    prompt: str
    response: dict[str, Any] | None
    status: str
    execution_time_ms: int | None
    error_message: str | None


@dataclass(frozen=True)
class SessionHistory:
    session_id: str
    created_at: int
    last_interaction_at: int
    interaction_count: int
    expired: bool
    interactions: list[Interaction]
    next_cursor: str | None


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    created_at: int
    last_interaction_at: int
    interaction_count: int
    expired: bool


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionSummary]
    next_cursor: str | None


def _is_expired(last_interaction_at: int, now_ms: int) -> bool:
    return last_interaction_at < idle_cutoff_ms(now_ms)


def _live(now_ms: int) -> Any:
    """Interactions whose ttl has not passed (or that have none)."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    return SessionInteraction.ttl.does_not_exist() | (SessionInteraction.ttl > now)


def _interaction(item: SessionInteraction) -> Interaction:
    response = item.response.as_dict() if item.response is not None else None
    return Interaction(
        session_id=item.session_id,
        request_id=item.request_id,
        timestamp=int(item.timestamp),
        prompt=item.prompt,
        response=response,
        status=item.status,
        execution_time_ms=int(item.execution_time_ms)
        if item.execution_time_ms is not None
        else None,
        error_message=item.error_message,
    )


def session_get(*, session_id: str, principal_arn: str) -> SessionItem:
    """The session, if ``principal_arn`` owns it. Raises SessionNotFound otherwise (also
    when another principal owns it: nobody learns that a session exists)."""
    try:
        session = SessionItem.get(session_id, SESSION_ITEM_TIMESTAMP)
    except SessionItem.DoesNotExist:
        raise SessionNotFound() from None
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable("read the session", exc) from exc
    if session.owner != principal_arn:
        raise SessionNotFound()
    return session


def session_history_get(
    *,
    session_id: str,
    principal_arn: str,
    limit: int = 50,
    cursor: str | None = None,
    now_ms: int | None = None,
) -> SessionHistory:
    """One page of the session's interactions, oldest first, and the session's summary.

    Raises SessionNotFound, InvalidCursor, StorageUnavailable."""
    now_ms = now_ms if now_ms is not None else clock_ms()
    session = session_get(session_id=session_id, principal_arn=principal_arn)
    after = SESSION_ITEM_TIMESTAMP
    if cursor is not None:
        position = cursor_decode(cursor, purpose="history")
        if position.get("s") != session_id or not isinstance(position.get("t"), int):
            raise InvalidCursor()
        after = position["t"]
    try:
        items = list(
            SessionInteraction.query(
                session_id,
                range_key_condition=SessionInteraction.timestamp > after,
                filter_condition=_live(now_ms),
                limit=limit + 1,
                page_size=limit + 1,
            )
        )
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable("read the session history", exc) from exc
    page, more = items[:limit], len(items) > limit
    next_cursor = (
        cursor_encode({"s": session_id, "t": int(page[-1].timestamp)}, purpose="history")
        if more and page
        else None
    )
    return SessionHistory(
        session_id=session_id,
        created_at=int(session.created_at),
        last_interaction_at=int(session.last_interaction_at),
        interaction_count=int(session.interaction_count),
        expired=_is_expired(int(session.last_interaction_at), now_ms),
        interactions=[_interaction(item) for item in page],
        next_cursor=next_cursor,
    )


def sessions_list(
    *,
    principal_arn: str,
    active: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
    now_ms: int | None = None,
) -> SessionPage:
    """The caller's sessions, most recently used first, through the GSI: each session is
    listed where its latest interaction stands in the caller's interactions, newest first.
    ``active`` keeps only sessions that are (True) or are not (False) expired.

    Raises InvalidCursor, StorageUnavailable."""
    now_ms = now_ms if now_ms is not None else clock_ms()
    cutoff = idle_cutoff_ms(now_ms)
    start_key = None
    if cursor is not None:
        position = cursor_decode(cursor, purpose="sessions")
        if position.get("u") != principal_arn or position.get("a") != active:
            raise InvalidCursor()
        start_key = position.get("k")
    # Active sessions are exactly those with an interaction at or after the cutoff.
    range_condition = None
    if active is True:
        range_condition = SessionInteraction.timestamp >= cutoff
    elif active is False:
        range_condition = SessionInteraction.timestamp < cutoff
    sessions: list[SessionSummary] = []
    summaries: dict[str, SessionItem | None] = {}
    next_key: dict[str, Any] | None = None
    try:
        results = SessionInteraction.user_sessions_index.query(
            principal_arn,
            range_key_condition=range_condition,
            filter_condition=_live(now_ms),
            scan_index_forward=False,
            last_evaluated_key=start_key,
            page_size=100,
        )
        page_end: dict[str, Any] | None = None
        for item in results:
            summary = _summary(item.session_id, summaries)
            if summary is None or int(summary.last_interaction_at) != int(item.timestamp):
                continue  # not the session's latest interaction: listed there
            if page_end is not None:
                next_key = page_end  # one more session exists: the page has a successor
                break
            sessions.append(
                SessionSummary(
                    session_id=item.session_id,
                    created_at=int(summary.created_at),
                    last_interaction_at=int(summary.last_interaction_at),
                    interaction_count=int(summary.interaction_count),
                    expired=int(summary.last_interaction_at) < cutoff,
                )
            )
            if len(sessions) == limit:
                page_end = results.last_evaluated_key
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable("list the sessions", exc) from exc
    next_cursor = (
        cursor_encode({"u": principal_arn, "a": active, "k": next_key}, purpose="sessions")
        if next_key
        else None
    )
    return SessionPage(sessions=sessions, next_cursor=next_cursor)


def _summary(session_id: str, cache: dict[str, SessionItem | None]) -> SessionItem | None:
    if session_id not in cache:
        try:
            cache[session_id] = SessionItem.get(session_id, SESSION_ITEM_TIMESTAMP)
        except SessionItem.DoesNotExist:
            cache[session_id] = None
    return cache[session_id]


def sessions_table_status() -> str:
    """The table's status from DescribeTable (``ACTIVE`` when usable), asked once with the
    health check's timeouts (HEALTH_CHECK_TIMEOUT_SECONDS to connect and to read).

    Raises StorageUnavailable when DynamoDB cannot be reached or the table does not exist.
    """
    table_name = SessionsTableProbe.Meta.table_name
    try:
        description = SessionsTableProbe.describe_table()
    except TableDoesNotExist as exc:
        raise StorageUnavailable(
            f"Table {table_name} does not exist; run `python manage.py ensure_sessions_table`."
        ) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"DynamoDB did not answer DescribeTable: {exc}") from exc
    return str(description.get("TableStatus", "UNKNOWN"))
