"""Reads from the sessions table: a session's history, a caller's sessions, table status.

No read scans the table: a history is one Query on the session's partition, a caller's
sessions one Query on the GSI user-sessions-index. Interactions past their ``ttl`` are
left out even while DynamoDB has not deleted them yet (its TTL deletion is lazy).
"""

from __future__ import annotations

import json
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
from sessions.services import clock_ms, idle_cutoff_ms, storage_errors, storage_unavailable
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


# What a history page reads of its items (a ProjectionExpression): of an interaction, what
# the page shows (not its user_id, nor its ttl, which the filter reads on DynamoDB's side);
# of the session's item, its summary.
_PAGE_ATTRIBUTES = [
    "session_id",
    "timestamp",
    "request_id",
    "prompt",
    "response",
    "status",
    "execution_time_ms",
    "error_message",
    "owner",
    "created_at",
    "last_interaction_at",
    "interaction_count",
]


def _is_expired(last_interaction_at: int, now_ms: int) -> bool:
    return last_interaction_at < idle_cutoff_ms(now_ms)


def _live(now_ms: int) -> Any:
    """Interactions whose ttl has not passed (or that have none)."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    return SessionInteraction.ttl.does_not_exist() | (SessionInteraction.ttl > now)


def _number(value: dict[str, Any]) -> int:
    """A Number attribute as an int: its digits as DynamoDB returns them (what this table
    writes), or any other form of a number DynamoDB may return (``1.5E3``)."""
    text = value["N"]
    try:
        return int(text)
    except ValueError:
        return int(json.loads(text))


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _interaction(item: dict[str, Any]) -> Interaction:
    """An interaction from the item as DynamoDB returned it: its few plain attributes read
    directly, not through a model instance for each item of the page."""
    response = item.get("response")
    execution_time_ms = item.get("execution_time_ms")
    return Interaction(
        session_id=item["session_id"]["S"],
        request_id=item["request_id"]["S"],
        timestamp=_number(item["timestamp"]),
        prompt=item["prompt"]["S"],
        response=_RESPONSE.deserialize(_RESPONSE.get_value(response))
        if response is not None and "NULL" not in response
        else None,
        status=item["status"]["S"],
        execution_time_ms=_number(execution_time_ms)
        if execution_time_ms is not None and "NULL" not in execution_time_ms
        else None,
        error_message=_text(item, "error_message"),
    )


_RESPONSE = SessionInteraction.response


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


@dataclass(frozen=True)
class _Summary:
    owner: str
    created_at: int
    last_interaction_at: int
    interaction_count: int


def _summary_of(item: SessionItem) -> _Summary:
    return _Summary(
        owner=item.owner,
        created_at=int(item.created_at),
        last_interaction_at=int(item.last_interaction_at),
        interaction_count=int(item.interaction_count),
    )


def _items_query(
    session_id: str, range_condition: Any, filter_condition: Any, wanted: int
) -> list[dict[str, Any]]:
    """Up to ``wanted`` items of the session's partition, in order, as DynamoDB returns
    them (Query pages of ``wanted`` items each until there are enough)."""
    connection = SessionInteraction._get_connection()
    items: list[dict[str, Any]] = []
    start_key: dict[str, Any] | None = None
    while len(items) < wanted:
        page = connection.query(
            session_id,
            range_key_condition=range_condition,
            filter_condition=filter_condition,
            attributes_to_get=_PAGE_ATTRIBUTES,
            exclusive_start_key=start_key,
            limit=wanted,
        )
        items.extend(page.get("Items", []))
        start_key = page.get("LastEvaluatedKey")
        if start_key is None:
            break
    return items[:wanted]


def session_history_get(
    *,
    session_id: str,
    principal_arn: str,
    limit: int = 50,
    cursor: str | None = None,
    now_ms: int | None = None,
) -> SessionHistory:
    """One page of the session's interactions, oldest first, and the session's summary.
    The first page is one Query: the session's item sits at timestamp 0, just before its
    interactions; a later page reads the session item (GetItem), then its interactions.

    Raises SessionNotFound, InvalidCursor, StorageUnavailable."""
    now_ms = now_ms if now_ms is not None else clock_ms()
    live = _live(now_ms)
    with storage_errors("read the session history"):
        if cursor is None:
            # The session item has an owner and no interaction does: it passes the filter
            # whatever its ttl, as a GetItem would read it.
            items = _items_query(
                session_id,
                SessionInteraction.timestamp >= SESSION_ITEM_TIMESTAMP,
                live | SessionItem.owner.exists(),
                limit + 2,
            )
            if not items or _number(items[0]["timestamp"]) != SESSION_ITEM_TIMESTAMP:
                raise SessionNotFound()
            session = _summary_of(SessionItem.from_raw_data(items.pop(0)))
            if session.owner != principal_arn:
                raise SessionNotFound()
        else:
            session = _summary_of(session_get(session_id=session_id, principal_arn=principal_arn))
            position = cursor_decode(cursor, purpose="history")
            if position.get("s") != session_id or not isinstance(position.get("t"), int):
                raise InvalidCursor()
            items = _items_query(
                session_id, SessionInteraction.timestamp > position["t"], live, limit + 1
            )
    page = [_interaction(item) for item in items[:limit]]
    more = len(items) > limit
    next_cursor = (
        cursor_encode({"s": session_id, "t": page[-1].timestamp}, purpose="history")
        if more and page
        else None
    )
    return SessionHistory(
        session_id=session_id,
        created_at=session.created_at,
        last_interaction_at=session.last_interaction_at,
        interaction_count=session.interaction_count,
        expired=_is_expired(session.last_interaction_at, now_ms),
        interactions=page,
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
    with storage_errors("list the sessions"):
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
