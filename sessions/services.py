"""Writes to the sessions table: the table itself, interactions, rate-limit counters."""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RATE_LIMIT_KEY_PREFIX,
    SESSION_ITEM_TIMESTAMP,
    USER_SESSIONS_INDEX,
    RateLimitCounter,
    SessionInteraction,
    SessionItem,
)
from sessions.records import replay_record_encode
from skymarshal_api.errors import (
    ApplicationError,
    InternalError,
    SessionExpired,
    SessionNotFound,
    StorageUnavailable,
)
from skymarshal_api.metrics import metric_count

logger = logging.getLogger(__name__)

_EXPECTED_KEYS = {"session_id": "HASH", "timestamp": "RANGE"}
_EXPECTED_INDEX_KEYS = {"user_id": "HASH", "timestamp": "RANGE"}


@dataclass(frozen=True)
class TableEnsured:
    table_name: str
    created: bool
    ttl_enabled_now: bool


def sessions_table_ensure() -> TableEnsured:
    """Create the sessions table (keys, GSI, on-demand billing) and enable TTL on ``ttl``.

    Idempotent: an existing table is checked against the expected schema and left as it is.
    Raises StorageUnavailable when DynamoDB cannot be reached, and InternalError when an
    existing table has another schema (it is never altered or dropped).
    """
    table_name = SessionInteraction.Meta.table_name
    try:
        created = not SessionInteraction.exists()
        if created:
            # ignore_update_ttl_errors: TTL is enabled below, after checking its state.
            SessionInteraction.create_table(wait=True, ignore_update_ttl_errors=True)
        description = SessionInteraction.describe_table()
        _check_schema(table_name, description)
        client: Any = SessionInteraction._get_connection().connection.client
        ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        ttl_enabled_now = ttl.get("TimeToLiveStatus") in (None, "DISABLED")
        if ttl_enabled_now:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
    except PynamoDBException as exc:
        raise StorageUnavailable(
            f"Could not ensure table {table_name}: {exc.msg}",
            details={"aws_error_code": exc.cause_response_code},
        ) from exc
    except ClientError as exc:  # the TTL calls go to botocore directly
        raise StorageUnavailable(
            f"Could not ensure table {table_name}: {exc}",
            details={"aws_error_code": exc.response.get("Error", {}).get("Code")},
        ) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"Could not ensure table {table_name}: {exc}") from exc
    return TableEnsured(table_name=table_name, created=created, ttl_enabled_now=ttl_enabled_now)


def _key_schema(elements: list[dict[str, str]]) -> dict[str, str]:
    return {element["AttributeName"]: element["KeyType"] for element in elements}


def _check_schema(table_name: str, description: dict[str, Any]) -> None:
    keys = _key_schema(description.get("KeySchema", []))
    if keys != _EXPECTED_KEYS:
        raise InternalError(
            f"Table {table_name} exists with keys {keys}; expected {_EXPECTED_KEYS}. "
            "Point SESSION_TABLE_NAME at another table or migrate this one."
        )
    indexes = {
        index["IndexName"]: _key_schema(index["KeySchema"])
        for index in description.get("GlobalSecondaryIndexes", [])
    }
    if indexes.get(USER_SESSIONS_INDEX) != _EXPECTED_INDEX_KEYS:
        raise InternalError(
            f"Table {table_name} lacks GSI {USER_SESSIONS_INDEX} on user_id + timestamp; "
            "add it, or point SESSION_TABLE_NAME at another table."
        )


def rate_limit_counter_increment(
    *, key: str, window_start: int, limit: int, expires_at: int
) -> int | None:
    """Count one request against ``key``'s window, atomically, unless the window already
    holds ``limit`` requests: the new count, or None when the limit was reached.

    Raises StorageUnavailable when DynamoDB fails (after botocore's retries).
    """
    counter = RateLimitCounter(f"{RATE_LIMIT_KEY_PREFIX}{key}", window_start)
    try:
        counter.update(
            actions=[
                RateLimitCounter.hits.add(1),
                RateLimitCounter.ttl.set(datetime.fromtimestamp(expires_at, UTC)),
            ],
            condition=RateLimitCounter.hits.does_not_exist() | (RateLimitCounter.hits < limit),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise StorageUnavailable(
            f"Could not count the request: {exc.msg}",
            details={"aws_error_code": exc.cause_response_code},
        ) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not count the request: {exc}") from exc
    return int(counter.hits)


# --- interactions ------------------------------------------------------------------------

# PynamoDB sends a transaction's puts before its updates; cancellation reasons follow.
_PUT_REASON, _UPDATE_REASON = 0, 1

InteractionStatus = Literal["in_progress", "success", "error", "timeout", "cancelled"]
FINAL_STATUSES: tuple[InteractionStatus, ...] = ("success", "error", "timeout", "cancelled")
_replay_logger = logging.getLogger("sessions.replay")


@dataclass(frozen=True)
class InteractionStarted:
    """An interaction recorded as in progress: what completing it needs."""

    session_id: str
    timestamp: int
    request_id: str
    prompt: str
    user_id: str
    new_session: bool


def storage_unavailable(action: str, exc: Exception) -> StorageUnavailable:
    """The error a caller sees when DynamoDB fails: what failed and AWS's error code, never
    the exception's text (it can hold ARNs, account ids and endpoints), which is logged."""
    code = getattr(exc, "cause_response_code", None)
    logger.warning("DynamoDB failed to %s: %s", action, exc)
    return StorageUnavailable(
        f"Session storage could not {action}; retry after Retry-After.",
        details={"aws_error_code": code} if code else None,
    )


def session_create() -> str:
    """A new session id (UUID v4)."""
    return str(uuid.uuid4())


def _ttl_for(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC) + timedelta(
        days=settings.SESSION_TTL_DAYS
    )


def clock_ms() -> int:
    """Now, in epoch milliseconds (the table's timestamps)."""
    return int(time.time() * 1000)


def idle_cutoff_ms(at_ms: int) -> int:
    """Sessions last used before this moment are expired (idle > SESSION_IDLE_MINUTES)."""
    return at_ms - settings.SESSION_IDLE_MINUTES * 60_000


def interaction_begin(
    *,
    session_id: str | None,
    request_id: str,
    prompt: str,
    principal_arn: str,
    now_ms: int | None = None,
) -> InteractionStarted:
    """Record an interaction as ``in_progress`` before the runtime is called (write-ahead),
    and the session's use, in one transaction. A session id that does not exist yet starts
    a session with that id; without one, a new session is created.

    Raises SessionNotFound when the session belongs to another principal, SessionExpired
    when it has been idle longer than SESSION_IDLE_MINUTES, StorageUnavailable when
    DynamoDB fails.
    """
    new_session = session_id is None
    session_id = session_id or session_create()
    timestamp = now_ms if now_ms is not None else clock_ms()
    cutoff = idle_cutoff_ms(timestamp)
    for _ in range(5):
        interaction = SessionInteraction(
            session_id,
            timestamp,
            request_id=request_id,
            prompt=prompt,
            status="in_progress",
            user_id=principal_arn,
            ttl=_ttl_for(timestamp),
        )
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                write.update(
                    SessionItem(session_id, SESSION_ITEM_TIMESTAMP),
                    actions=[
                        SessionItem.owner.set(SessionItem.owner | principal_arn),
                        SessionItem.created_at.set(SessionItem.created_at | timestamp),
                        SessionItem.last_interaction_at.set(timestamp),
                        SessionItem.interaction_count.add(1),
                        SessionItem.ttl.set(_ttl_for(timestamp)),
                    ],
                    condition=SessionItem.session_id.does_not_exist()
                    | (
                        (SessionItem.owner == principal_arn)
                        & (SessionItem.last_interaction_at >= cutoff)
                    ),
                )
                write.save(interaction, condition=SessionInteraction.session_id.does_not_exist())
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            if (
                len(reasons) > _UPDATE_REASON
                and reasons[_UPDATE_REASON] == "ConditionalCheckFailed"
            ):
                raise _session_refusal(session_id, principal_arn) from exc
            if reasons and reasons[_PUT_REASON] == "ConditionalCheckFailed":
                timestamp += 1  # another interaction took this millisecond
                continue
            if "TransactionConflict" in reasons:
                # Another transaction on the same session at the same moment (botocore does
                # not retry a cancelled transaction).
                time.sleep(random.uniform(0.02, 0.1))  # noqa: S311 - jitter, not secrecy
                continue
            raise storage_unavailable("record the interaction", exc) from exc
        except (PynamoDBException, BotoCoreError) as exc:
            raise storage_unavailable("record the interaction", exc) from exc
        return InteractionStarted(
            session_id=session_id,
            timestamp=timestamp,
            request_id=request_id,
            prompt=prompt,
            user_id=principal_arn,
            new_session=new_session,
        )
    raise StorageUnavailable("Could not find a free timestamp for the interaction.")


def _session_refusal(session_id: str, principal_arn: str) -> ApplicationError:
    try:
        session = SessionItem.get(session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    except SessionItem.DoesNotExist:
        return StorageUnavailable("The session changed while the interaction was recorded.")
    except (PynamoDBException, BotoCoreError) as exc:
        return storage_unavailable("read the session", exc)
    if session.owner != principal_arn:
        return SessionNotFound()
    return SessionExpired(
        f"The session has been idle for more than {settings.SESSION_IDLE_MINUTES} minutes; "
        "start a new session by omitting session_id.",
        details={"session_id": session_id, "last_interaction_at": int(session.last_interaction_at)},
    )


def interaction_complete(
    started: InteractionStarted,
    *,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None = None,
) -> bool:
    """Record the interaction's outcome. True when saved; False when DynamoDB failed even
    after retries, in which case the whole interaction was logged as a replay record and a
    metric counted (never a silent loss). A response DynamoDB cannot hold is left out, with
    a note in error_message. Completing an interaction twice changes nothing."""
    interaction = SessionInteraction(started.session_id, started.timestamp)
    try:
        interaction.update(
            actions=[
                SessionInteraction.status.set(status),
                SessionInteraction.response.set(response)
                if response is not None
                else SessionInteraction.response.remove(),
                SessionInteraction.execution_time_ms.set(execution_time_ms),
                SessionInteraction.error_message.set(error_message)
                if error_message is not None
                else SessionInteraction.error_message.remove(),
            ],
            condition=SessionInteraction.status == "in_progress",
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            logger.warning(
                "Interaction %s/%s was already complete", started.session_id, started.timestamp
            )
            return True
        if exc.cause_response_code == "ValidationException" and response is not None:
            # DynamoDB will never take this response (over 400 KB, an empty map key, a
            # number out of its range): keep the interaction without it rather than log a
            # record that could never be replayed either.
            logger.warning(
                "Response of %s not storable: %s", started.request_id, exc.cause_response_message
            )
            note = "The response could not be stored in the session history."
            return interaction_complete(
                started,
                status=status,
                response=None,
                execution_time_ms=execution_time_ms,
                error_message=f"{error_message} {note}" if error_message else note,
            )
        _record_unsaved(started, status, response, execution_time_ms, error_message, exc)
        return False
    except (PynamoDBException, BotoCoreError) as exc:
        _record_unsaved(started, status, response, execution_time_ms, error_message, exc)
        return False
    return True


def _record_unsaved(
    started: InteractionStarted,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None,
    cause: Exception,
) -> None:
    record = {
        "version": 1,
        "session_id": started.session_id,
        "timestamp": started.timestamp,
        "request_id": started.request_id,
        "prompt": started.prompt,
        "user_id": started.user_id,
        "status": status,
        "response": response,
        "execution_time_ms": execution_time_ms,
        "error_message": error_message,
    }
    _replay_logger.error(
        "%s session_id=%s request_id=%s cause=%s",
        replay_record_encode(record),
        started.session_id,
        started.request_id,
        type(cause).__name__,
    )
    metric_count("SessionWriteFailures")


ReplayOutcome = Literal["restored", "completed", "already_present"]


def interaction_replay(record: dict[str, Any]) -> ReplayOutcome:
    """Write a replay record back, idempotently: ``restored`` when the interaction was
    missing, ``completed`` when it was still in progress, ``already_present`` otherwise.
    Raises StorageUnavailable when DynamoDB fails."""
    session_id, timestamp = str(record["session_id"]), int(record["timestamp"])
    interaction = SessionInteraction(
        session_id,
        timestamp,
        request_id=record["request_id"],
        prompt=record["prompt"],
        status=record["status"],
        response=record.get("response"),
        execution_time_ms=record.get("execution_time_ms"),
        error_message=record.get("error_message"),
        user_id=record["user_id"],
        ttl=_ttl_for(timestamp),
    )
    try:
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                write.update(
                    SessionItem(session_id, SESSION_ITEM_TIMESTAMP),
                    actions=[
                        SessionItem.owner.set(SessionItem.owner | record["user_id"]),
                        SessionItem.created_at.set(SessionItem.created_at | timestamp),
                        SessionItem.last_interaction_at.set(
                            SessionItem.last_interaction_at | timestamp
                        ),
                        SessionItem.interaction_count.add(1),
                        SessionItem.ttl.set(SessionItem.ttl | _ttl_for(timestamp)),
                    ],
                )
                write.save(interaction, condition=SessionInteraction.session_id.does_not_exist())
            return "restored"
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            if not reasons or reasons[_PUT_REASON] != "ConditionalCheckFailed":
                raise
        try:
            interaction.save(condition=SessionInteraction.status == "in_progress")
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return "already_present"
            raise
        return "completed"
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the interaction: {exc}") from exc


def sessions_expired_delete(*, now: datetime | None = None) -> int:
    """Delete every item (interactions, session items, rate-limit counters) whose ttl has
    passed; the number deleted. A table scan: for DynamoDB Local and maintenance only (in
    AWS, TTL deletes them). Raises StorageUnavailable."""
    now = now or datetime.now(UTC)
    deleted = 0
    try:
        expired = SessionInteraction.scan(
            filter_condition=SessionInteraction.ttl.exists() & (SessionInteraction.ttl < now),
            attributes_to_get=["session_id", "timestamp"],
        )
        with SessionInteraction.batch_write() as batch:
            for item in expired:
                batch.delete(item)
                deleted += 1
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not delete expired items: {exc}") from exc
    return deleted
