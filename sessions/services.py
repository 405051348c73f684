"""Writes to the sessions table: the table itself, interactions, rate-limit counters."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RATE_LIMIT_KEY_PREFIX,
    RUN_ITEM_TIMESTAMP,
    RUN_KEY_PREFIX,
    SESSION_ITEM_TIMESTAMP,
    USER_SESSIONS_INDEX,
    IdempotencyRecord,
    RateLimitCounter,
    RunDeadline,
    RunEvent,
    RunItem,
    SessionInteraction,
    SessionItem,
    event_data_storable,
    run_deadline_key,
)
from sessions.records import replay_record_messages
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import (
    ApplicationError,
    IdempotencyKeyReused,
    InternalError,
    SessionBusy,
    SessionExpired,
    SessionNotFound,
    StorageUnavailable,
)

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
            details={"aws_error_code": aws_error_code(exc)},
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
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise StorageUnavailable(
            f"Could not count the request: {exc.msg}",
            details={"aws_error_code": aws_error_code(exc)},
        ) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not count the request: {exc}") from exc
    return int(counter.hits)


# --- interactions ------------------------------------------------------------------------

# PynamoDB sends a transaction's puts before its updates; cancellation reasons follow
# that order.
InteractionStatus = Literal["in_progress", "success", "error", "timeout", "cancelled"]
FINAL_STATUSES: tuple[InteractionStatus, ...] = ("success", "error", "timeout", "cancelled")
RunStatus = Literal["queued", "running", "succeeded", "failed", "timed_out", "cancelled"]
RUN_ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running")
RUN_STATUS_OF: dict[InteractionStatus, RunStatus] = {
    "success": "succeeded",
    "error": "failed",
    "timeout": "timed_out",
    "cancelled": "cancelled",
}
RunKind = Literal["invoke", "invocation"]
OnConflict = Literal["reject", "enqueue"]
_replay_logger = logging.getLogger("sessions.replay")


@dataclass(frozen=True)
class IdempotencyClaim:
    """An Idempotency-Key, hashed with its principal, and a hash of the request it came
    with; ``supersedes``, the run whose retryable failure the key may be taken from."""

    key_hash: str
    request_hash: str
    supersedes: str | None = None


class IdempotentReplay(Exception):
    """The Idempotency-Key already started a run with the same request: its id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(request_id)


@dataclass(frozen=True)
class RunWebhook:
    """Where a run's webhook is sent, and for which of its events (run.started, …)."""

    url: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class InteractionStarted:
    """An interaction recorded as in progress with its run: what completing it needs."""

    session_id: str
    timestamp: int
    request_id: str
    prompt: str
    user_id: str
    new_session: bool
    kind: RunKind = "invoke"
    # The run this one is queued behind (on_conflict "enqueue"); None when it holds the
    # session already.
    queued_after: str | None = None
    webhook: RunWebhook | None = None


@dataclass(frozen=True)
class TurnBudget:
    """How long a run may wait for its turn on a busy session, and how long it lasts once
    it has its turn (its deadline plus RUN_GRACE_SECONDS), both in milliseconds: the
    executor's limits (a synchronous request behind API Gateway, a background worker). A
    run that would not get its turn in time, were every run ahead of it to take its whole
    deadline, is refused at once (SESSION_BUSY with Retry-After) rather than cut off
    midway."""

    wait_ms: int
    run_ms: int


def turn_budget(*, wait_seconds: float, run_seconds: float) -> TurnBudget:
    """A TurnBudget from seconds; the run's span includes RUN_GRACE_SECONDS."""
    return TurnBudget(
        wait_ms=max(0, int(wait_seconds * 1000)),
        run_ms=int((run_seconds + settings.RUN_GRACE_SECONDS) * 1000),
    )


def default_turn_budget(kind: RunKind) -> TurnBudget:
    """A background run waits up to RUN_QUEUE_TIMEOUT_SECONDS and lasts
    RUN_BACKGROUND_DEADLINE_SECONDS (the worker's deadline); a synchronous one, where no
    gateway bounds the request, waits as long and lasts AGENTCORE_DEADLINE_SECONDS."""
    seconds = (
        settings.RUN_BACKGROUND_DEADLINE_SECONDS
        if kind == "invocation"
        else settings.AGENTCORE_DEADLINE_SECONDS
    )
    return turn_budget(wait_seconds=settings.RUN_QUEUE_TIMEOUT_SECONDS, run_seconds=seconds)


@dataclass(frozen=True)
class SessionQueue:
    """What a run refused by a busy session would queue behind: the run holding the session
    (None when it has just let it go), the last run queued (None when nothing is), and
    when, at the latest, they will all have ended (epoch ms)."""

    active: str | None
    tail: str | None
    drained_by: int


def aws_error_code(exc: Exception) -> str | None:
    """The AWS error code behind a PynamoDB exception, if any. PynamoDB's own
    ``cause_response_code`` raises AttributeError when the cause is a timeout with no
    response (botocore's ReadTimeoutError), which turned a storage fault into a 500."""
    response = getattr(getattr(exc, "cause", None), "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    code = error.get("Code") if isinstance(error, dict) else None
    return str(code) if code is not None else None


def storage_unavailable(action: str, exc: Exception) -> StorageUnavailable:
    """The error a caller sees when DynamoDB fails: what failed and AWS's error code, never
    the exception's text (it can hold ARNs, account ids and endpoints), which is logged."""
    code = aws_error_code(exc)
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


def run_deadline_ms(start_ms: int) -> int:
    """When a run started at ``start_ms`` is lost if it has not ended: the runtime
    deadline plus RUN_GRACE_SECONDS."""
    return start_ms + int((settings.AGENTCORE_DEADLINE_SECONDS + settings.RUN_GRACE_SECONDS) * 1000)


def run_deadline_item(request_id: str, deadline_at: int) -> RunDeadline:
    """The sweeper's note of a run's deadline (sessions/models.py RunDeadline)."""
    bucket, sort = run_deadline_key(request_id, deadline_at)
    return RunDeadline(
        bucket,
        sort,
        request_id=request_id,
        deadline_at=deadline_at,
        ttl=datetime.fromtimestamp(deadline_at / 1000, UTC) + timedelta(days=7),
    )


def run_key(request_id: str) -> str:
    return f"{RUN_KEY_PREFIX}{request_id}"


def _session_update(
    write: TransactWrite,
    *,
    session_id: str,
    principal_arn: str,
    request_id: str,
    timestamp: int,
    hold_until: int,
    queue_behind: SessionQueue | None,
) -> None:
    """The session's part of beginning a run: ownership, expiry, use; and either taking
    the session (free: no run holds it, or its holder is past its deadline, and no run is
    queued: a new run never jumps the queue) or joining its queue behind the runs that
    were read."""
    owned = (SessionItem.owner == principal_arn) & (
        SessionItem.last_interaction_at >= idle_cutoff_ms(timestamp)
    )
    actions: list[Action] = [
        SessionItem.owner.set(SessionItem.owner | principal_arn),
        SessionItem.created_at.set(SessionItem.created_at | timestamp),
        SessionItem.last_interaction_at.set(timestamp),
        SessionItem.interaction_count.add(1),
        SessionItem.ttl.set(_ttl_for(timestamp)),
    ]
    if queue_behind is None:
        actions += [
            SessionItem.active_run.set(request_id),
            SessionItem.active_until.set(hold_until),
        ]
        free = (
            SessionItem.active_run.does_not_exist() | (SessionItem.active_until < timestamp)
        ) & SessionItem.queue_tail.does_not_exist()
        condition = SessionItem.session_id.does_not_exist() | (owned & free)
    else:
        actions.append(SessionItem.queue_tail.set(request_id))
        condition = (
            owned
            & (
                SessionItem.active_run.does_not_exist()
                if queue_behind.active is None
                else SessionItem.active_run == queue_behind.active
            )
            & (
                SessionItem.queue_tail.does_not_exist()
                if queue_behind.tail is None
                else SessionItem.queue_tail == queue_behind.tail
            )
        )
    write.update(
        SessionItem(session_id, SESSION_ITEM_TIMESTAMP), actions=actions, condition=condition
    )


def interaction_begin(
    *,
    session_id: str | None,
    request_id: str,
    prompt: str,
    principal_arn: str,
    now_ms: int | None = None,
    kind: RunKind = "invoke",
    on_conflict: OnConflict = "reject",
    idempotency: IdempotencyClaim | None = None,
    budget: TurnBudget | None = None,
    webhook: RunWebhook | None = None,
    trace: Mapping[str, str] | None = None,
) -> InteractionStarted:
    """Record an interaction as ``in_progress`` and its run before the runtime is called
    (write-ahead), with the session's use and, when given, the Idempotency-Key, in one
    transaction; ``trace`` (the accepting request's trace headers) is kept on the run for
    its worker. A session id that does not exist yet starts a session with that id;
    without one, a new session is created. One run holds a session at a time: a
    synchronous run holds it at once (``running``); a background run holds it while
    ``queued`` for its worker; with ``on_conflict="enqueue"`` a run on a busy session is
    queued behind the last run queued on it.

    Raises SessionNotFound when the session belongs to another principal, SessionExpired
    when it has been idle longer than SESSION_IDLE_MINUTES, SessionBusy when another run
    holds it, IdempotentReplay when the key already started this request,
    IdempotencyKeyReused when it started another, StorageUnavailable when DynamoDB fails.
    """
    new_session = session_id is None
    session_id = session_id or session_create()
    timestamp = now_ms if now_ms is not None else clock_ms()
    budget = budget or default_turn_budget(kind)
    queue_behind: SessionQueue | None = None
    for _ in range(8):
        queued = queue_behind is not None or kind == "invocation"
        # Queued, the run must start within its wait; running, it holds the session for
        # its span.
        hold_until = timestamp + budget.run_ms + (budget.wait_ms if queued else 0)
        ttl = _ttl_for(timestamp)
        interaction = SessionInteraction(
            session_id,
            timestamp,
            request_id=request_id,
            prompt=prompt,
            status="in_progress",
            user_id=principal_arn,
            ttl=ttl,
        )
        run = RunItem(
            run_key(request_id),
            RUN_ITEM_TIMESTAMP,
            request_id=request_id,
            run_session_id=session_id,
            interaction_timestamp=timestamp,
            owner=principal_arn,
            kind=kind,
            status="queued" if queued else "running",
            prompt=prompt,
            created_at=timestamp,
            started_at=None if queued else timestamp,
            deadline_at=hold_until,
            after=(queue_behind.tail or queue_behind.active) if queue_behind else None,
            run_ms=budget.run_ms,
            webhook={"url": webhook.url, "events": list(webhook.events)} if webhook else None,
            trace=dict(trace) if trace else None,
            ttl=ttl,
        )
        reasons_order = ["interaction", "run"]
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                write.save(interaction, condition=SessionInteraction.session_id.does_not_exist())
                write.save(run, condition=RunItem.session_id.does_not_exist())
                if idempotency is not None:
                    reasons_order.append("idempotency")
                    write.save(
                        IdempotencyRecord(
                            idempotency.key_hash,
                            0,
                            request_id=request_id,
                            kind=kind,
                            request_hash=idempotency.request_hash,
                            expires_at=timestamp + settings.IDEMPOTENCY_TTL_HOURS * 3_600_000,
                            ttl=datetime.fromtimestamp(timestamp / 1000, UTC)
                            + timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS),
                        ),
                        condition=_idempotency_condition(idempotency, timestamp),
                    )
                # The deadline is a put: PynamoDB sends puts before updates, and the
                # cancellation reasons come in the order sent.
                reasons_order.append("deadline")
                write.save(run_deadline_item(request_id, hold_until))
                reasons_order.append("session")
                _session_update(
                    write,
                    session_id=session_id,
                    principal_arn=principal_arn,
                    request_id=request_id,
                    timestamp=timestamp,
                    hold_until=hold_until,
                    queue_behind=queue_behind,
                )
        except TransactWriteError as exc:
            failed = {
                name
                for name, reason in zip(reasons_order, exc.cancellation_reasons or [], strict=False)
                if reason is not None and reason.code == "ConditionalCheckFailed"
            }
            codes = {reason.code for reason in exc.cancellation_reasons or [] if reason}
            if "idempotency" in failed and idempotency is not None:
                _idempotency_refusal(idempotency, kind)
                continue  # the record expired meanwhile
            if "session" in failed:
                refusal, seen = _session_refusal(session_id, principal_arn, timestamp)
                if refusal is None:  # freed, or its queue moved, meanwhile: try again
                    queue_behind = None
                    continue
                if seen is not None and on_conflict == "enqueue":
                    _queue_room_check(session_id, seen, timestamp, budget, kind)
                    queue_behind = seen
                    continue
                raise refusal from exc
            if "interaction" in failed:
                timestamp += 1  # another interaction took this millisecond
                continue
            if "run" in failed:
                raise StorageUnavailable("A run with this request id already exists.") from exc
            if "TransactionConflict" in codes:
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
            kind=kind,
            queued_after=run.after if queue_behind else None,
            webhook=webhook,
        )
    raise StorageUnavailable("Could not record the interaction; retry after Retry-After.")


def _idempotency_condition(claim: IdempotencyClaim, timestamp: int) -> Any:
    """The key is free: never used, expired, or held by the failed run it supersedes."""
    condition = IdempotencyRecord.session_id.does_not_exist() | (
        IdempotencyRecord.expires_at < timestamp
    )
    if claim.supersedes is not None:
        condition |= IdempotencyRecord.request_id == claim.supersedes
    return condition


def _idempotency_refusal(claim: IdempotencyClaim, kind: RunKind) -> None:
    """Raise what an Idempotency-Key already in use means (returns when the record has
    gone, so the caller tries again)."""
    try:
        record = IdempotencyRecord.get(claim.key_hash, 0, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable("read the Idempotency-Key", exc) from exc
    if record.request_hash != claim.request_hash or record.kind != kind:
        raise IdempotencyKeyReused()
    raise IdempotentReplay(record.request_id)


def _session_refusal(
    session_id: str, principal_arn: str, at_ms: int
) -> tuple[ApplicationError | None, SessionQueue | None]:
    """Why the session refused a run (None: it no longer would), and, when only because it
    is busy (a run holds it, or runs are queued on it), the queue a run would wait in."""
    try:
        session = SessionItem.get(session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    except SessionItem.DoesNotExist:
        return StorageUnavailable("The session changed while the interaction was recorded."), None
    except (PynamoDBException, BotoCoreError) as exc:
        return storage_unavailable("read the session", exc), None
    if session.owner != principal_arn:
        return SessionNotFound(), None
    if session.last_interaction_at < idle_cutoff_ms(at_ms):
        return SessionExpired(
            f"The session has been idle for more than {settings.SESSION_IDLE_MINUTES} minutes; "
            "start a new session by omitting session_id.",
            details={
                "session_id": session_id,
                "last_interaction_at": int(session.last_interaction_at),
            },
        ), None
    held = session.active_run is not None and (session.active_until or 0) >= at_ms
    tail: str | None = session.queue_tail
    last = tail or (session.active_run if held else None)
    ahead = queue_ahead(last, at_ms)
    if tail is not None:
        waiting = ahead.waiting if ahead.waiting != session.active_run else None
        if waiting != tail:
            # The tail has ended (cancelled, or expired, before its turn): the queue now
            # ends with the last run still waiting for its turn, or is empty.
            _queue_tail_replace(session_id, tail, waiting)
            tail = waiting
    if not held and tail is None:
        return None, None
    drained_by = ahead.drained_by
    if held and session.active_run not in ahead.runs:
        drained_by = max(drained_by, int(session.active_until or 0))
    return SessionBusy(
        details={"session_id": session_id, "active_request_id": session.active_run or tail}
    ), SessionQueue(active=session.active_run, tail=tail, drained_by=drained_by)


# A queue longer than this is not walked (its runs were refused room long before).
_QUEUE_WALK_LIMIT = 24


@dataclass(frozen=True)
class QueueAhead:
    """The runs ahead of a queued run, from the one it was queued behind back to the first
    that ever started (whose own predecessors have all ended): each must have ended before
    the run may start. ``waiting``: the last of them still queued or running, if any;
    ``drained_by``: when they will all have ended at the latest (epoch ms), were each one
    still to start to take its whole deadline from its turn."""

    runs: tuple[str, ...]
    waiting: str | None
    drained_by: int


def queue_ahead(first: str | None, at_ms: int) -> QueueAhead:
    """Walk a session's queue back from ``first`` (see QueueAhead). A storage failure, or
    a queue longer than the walk, reads as "still waiting", so that nothing jumps it."""
    runs: list[str] = []
    # (started, deadline_at, run_ms) of each run still queued or running, latest first.
    live: list[tuple[bool, int, int]] = []
    waiting: str | None = None
    request_id = first
    while request_id is not None:
        if len(runs) >= _QUEUE_WALK_LIMIT:
            waiting = waiting or request_id
            break
        try:
            run = RunItem.get(run_key(request_id), RUN_ITEM_TIMESTAMP, consistent_read=True)
        except RunItem.DoesNotExist:
            break
        except (PynamoDBException, BotoCoreError) as exc:
            logger.warning("Could not read queued run %s: %s", request_id, exc)
            waiting = waiting or request_id
            break
        runs.append(request_id)
        if run.status in RUN_ACTIVE_STATUSES and int(run.deadline_at or 0) >= at_ms:
            waiting = waiting or request_id
            run_ms = run.run_ms or default_turn_budget(run.kind).run_ms  # type: ignore[arg-type]
            live.append((run.started_at is not None, int(run.deadline_at), int(run_ms)))
        if run.started_at is not None:
            break  # it had its turn: every run before it had ended
        request_id = run.after
    drained_by = at_ms
    for started, deadline_at, run_ms in reversed(live):
        drained_by = max(drained_by, deadline_at) if started else drained_by + run_ms
    return QueueAhead(tuple(runs), waiting, drained_by)


def _queue_tail_replace(session_id: str, tail: str, new_tail: str | None) -> None:
    """Move a session's queue tail back past runs that ended before their turn (or clear
    it when none waits), unless another run has joined the queue meanwhile."""
    actions: list[Action] = (
        [SessionItem.queue_tail.set(new_tail)]
        if new_tail is not None
        else [SessionItem.queue_tail.remove()]
    )
    try:
        SessionItem(session_id, SESSION_ITEM_TIMESTAMP).update(
            actions=actions, condition=SessionItem.queue_tail == tail
        )
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            logger.warning("Could not update the queue of session %s: %s", session_id, exc)
    except (PynamoDBException, BotoCoreError) as exc:
        logger.warning("Could not update the queue of session %s: %s", session_id, exc)


def _queue_room_check(
    session_id: str, queue: SessionQueue, at_ms: int, budget: TurnBudget, kind: RunKind
) -> None:
    """Refuse (SessionBusy with Retry-After: when the runs ahead will have ended, at the
    latest) a run that might not get its turn within what its executor allows, were every
    run ahead of it to take its whole deadline; a run that may not wait at all is refused
    whenever the session is busy."""
    start_by = at_ms + budget.wait_ms
    if budget.wait_ms > 0 and queue.drained_by <= start_by:
        return
    retry_after = max(1, -(-(queue.drained_by - start_by) // 1000))
    hint = (
        ', or submit it as a background run (POST /api/v1/invocations with "on_conflict": '
        '"enqueue"), which may wait longer'
        if kind == "invoke"
        else ""
    )
    reason = (
        "This run may not wait for its turn here (a synchronous request behind API "
        "Gateway would be cut off)"
        if budget.wait_ms == 0
        else "The runs ahead on this session may last until after this run would have to "
        f"start (it may wait {budget.wait_ms // 1000} s for its turn)"
    )
    raise SessionBusy(
        f"{reason}; retry after Retry-After{hint}.",
        details={
            "session_id": session_id,
            "active_request_id": queue.active or queue.tail,
            "queue_drained_by": queue.drained_by,
            "wait_limit_seconds": budget.wait_ms // 1000,
        },
        headers={"Retry-After": str(retry_after)},
    )


def interaction_complete(
    started: InteractionStarted,
    *,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None = None,
    run_response: dict[str, Any] | None = None,
    run_error: dict[str, Any] | None = None,
    http_status: int | None = None,
    final_event: tuple[int, str, str] | None = None,
) -> bool:
    """Record the interaction's outcome, its run's (``run_response`` or ``run_error`` with
    ``http_status``), the run's last event when given (number, name, JSON data), and free
    the session, in one transaction. True when saved; False when DynamoDB failed even
    after retries, in which case the whole interaction was logged as a replay record and a
    metric counted (never a silent loss). A response DynamoDB cannot hold is left out, with
    a note in error_message. Completing an interaction twice changes nothing."""
    # The parts still to write: each part whose condition fails is already done (or never
    # was this run's to do) and is left out of the next attempt.
    parts = {"interaction", "run", "session"} | ({"event"} if final_event else set())
    run_outcome = {
        "status": RUN_STATUS_OF[status],
        "response": run_response,
        "error": run_error,
        "http_status": http_status,
    }
    for _ in range(8):
        if not parts & {"interaction", "run"}:
            return True
        now = clock_ms()
        order: list[str] = []
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                if final_event is not None and "event" in parts:
                    number, event, data = final_event
                    order.append("event")
                    write.save(
                        RunEvent(
                            run_key(started.request_id),
                            number,
                            event=event,
                            data=data,
                            ttl=_ttl_for(started.timestamp),
                        ),
                        condition=RunEvent.session_id.does_not_exist(),
                    )
                if "interaction" in parts:
                    order.append("interaction")
                    write.update(
                        SessionInteraction(started.session_id, started.timestamp),
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
                if "run" in parts:
                    order.append("run")
                    write.update(
                        RunItem(run_key(started.request_id), RUN_ITEM_TIMESTAMP),
                        actions=[
                            RunItem.status.set(RUN_STATUS_OF[status]),
                            RunItem.finished_at.set(now),
                            RunItem.response.set(run_response)
                            if run_response is not None
                            else RunItem.response.remove(),
                            RunItem.error.set(run_error)
                            if run_error is not None
                            else RunItem.error.remove(),
                            RunItem.http_status.set(http_status)
                            if http_status is not None
                            else RunItem.http_status.remove(),
                        ],
                        condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES),
                    )
                if "session" in parts:
                    order.append("session")
                    write.update(
                        SessionItem(started.session_id, SESSION_ITEM_TIMESTAMP),
                        actions=[
                            SessionItem.active_run.remove(),
                            SessionItem.active_until.remove(),
                        ],
                        condition=SessionItem.active_run == started.request_id,
                    )
        except TransactWriteError as exc:
            reasons = {
                name: reason.code
                for name, reason in zip(order, exc.cancellation_reasons or [], strict=False)
                if reason is not None and reason.code != "None"
            }
            done = {name for name, code in reasons.items() if code == "ConditionalCheckFailed"}
            if done:
                if "interaction" in done:
                    logger.warning(
                        "Interaction %s/%s was already complete",
                        started.session_id,
                        started.timestamp,
                    )
                if "run" in done:
                    # A run already ended has its last event and has let its session go.
                    done |= {"event", "session"}
                parts -= done
                continue
            if "ValidationException" in (*reasons.values(), aws_error_code(exc)) and (
                response is not None or run_response is not None
            ):
                # DynamoDB will never take this response (an item over 400 KB even
                # compressed): keep the interaction without it rather than log a record
                # that could never be replayed either.
                logger.warning("Response of %s not storable", started.request_id)
                response = run_response = None
                error_message, final_event = _response_left_out(error_message, final_event)
                continue
            if "TransactionConflict" in reasons.values():
                time.sleep(random.uniform(0.02, 0.1))  # noqa: S311 - jitter, not secrecy
                continue
            _record_unsaved(
                started, status, response, execution_time_ms, error_message, exc, run_outcome
            )
            return False
        except ValueError:
            # Not JSON (NaN, an infinity: json_document_encode refuses them, as DynamoDB
            # refused them in a Map): kept without the response, as above.
            if response is None and run_response is None:
                raise
            logger.warning("Response of %s not storable", started.request_id)
            response = run_response = None
            error_message, final_event = _response_left_out(error_message, final_event)
            continue
        except (PynamoDBException, BotoCoreError) as exc:
            _record_unsaved(
                started, status, response, execution_time_ms, error_message, exc, run_outcome
            )
            return False
        return True
    _record_unsaved(
        started,
        status,
        response,
        execution_time_ms,
        error_message,
        StorageUnavailable("retries exhausted"),
        run_outcome,
    )
    return False


def _response_left_out(
    error_message: str | None, final_event: tuple[int, str, str] | None
) -> tuple[str, tuple[int, str, str] | None]:
    """The error message and last event of an interaction kept without its response."""
    note = "The response could not be stored in the session history."
    if final_event is not None:
        final_event = (final_event[0], final_event[1], json.dumps({"note": note}))
    return (f"{error_message} {note}" if error_message else note), final_event


def _record_unsaved(
    started: InteractionStarted,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None,
    cause: Exception,
    run_outcome: dict[str, Any],
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
        # The run's outcome too: replayed, it ends the run as it truly ended, even over a
        # WORKER_LOST expiry written meanwhile.
        "run": run_outcome,
    }
    for message in replay_record_messages(record):  # more than one for a long record
        _replay_logger.error(
            "%s session_id=%s request_id=%s cause=%s",
            message,
            started.session_id,
            started.request_id,
            type(cause).__name__,
        )
    metric_count("SessionWriteFailures")


ReplayOutcome = Literal["restored", "completed", "superseded", "already_present"]
LOST_PREFIX = "WORKER_LOST: "


def interaction_replay(record: dict[str, Any]) -> ReplayOutcome:
    """Write a replay record back, idempotently: ``restored`` when the interaction was
    missing, ``completed`` when it was still in progress, ``superseded`` when it had been
    ended as lost (WORKER_LOST) meanwhile, ``already_present`` otherwise. A record that
    carries its run's outcome ends the run so too (over a WORKER_LOST expiry as well) and
    releases its session. Raises StorageUnavailable when DynamoDB fails."""
    outcome = _interaction_replay(record)
    if isinstance(record.get("run"), dict):
        _run_replay(record)
    return outcome


def _run_replay(record: dict[str, Any]) -> None:
    run: dict[str, Any] = record["run"]
    request_id = str(record["request_id"])
    actions: list[Action] = [
        RunItem.status.set(run["status"]),
        RunItem.finished_at.set(clock_ms()),
        RunItem.response.set(run["response"])
        if run.get("response") is not None
        else RunItem.response.remove(),
        RunItem.error.set(run["error"]) if run.get("error") is not None else RunItem.error.remove(),
        RunItem.http_status.set(run["http_status"])
        if run.get("http_status") is not None
        else RunItem.http_status.remove(),
    ]
    item = RunItem(run_key(request_id), RUN_ITEM_TIMESTAMP)
    try:
        item.update(
            actions=actions,
            condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES)
            | (RunItem.error["error_code"] == "WORKER_LOST"),
        )
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise StorageUnavailable(f"Could not replay the run: {exc}") from exc
        return  # the run ended otherwise (or never was recorded)
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the run: {exc}") from exc
    if item.kind == "invocation":
        _run_final_event_replay(record)
    try:
        SessionItem(str(record["session_id"]), SESSION_ITEM_TIMESTAMP).update(
            actions=[SessionItem.active_run.remove(), SessionItem.active_until.remove()],
            condition=SessionItem.active_run == request_id,
        )
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise StorageUnavailable(f"Could not release the session: {exc}") from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not release the session: {exc}") from exc


def _run_final_event_replay(record: dict[str, Any]) -> None:
    """Store a replayed background run's last event as its completion would have (the
    InvokeResponse as ``complete``, or the error as ``error``), so that its events end
    with its true outcome: after the events stored, or in place of the WORKER_LOST
    ``error`` an expiry stored meanwhile. Raises StorageUnavailable."""
    run: dict[str, Any] = record["run"]
    request_id = str(record["request_id"])
    event, data = (
        ("complete", run.get("response"))
        if run["status"] == "succeeded"
        else ("error", run.get("error"))
    )
    if data is None:
        return
    try:
        last = next(
            iter(
                RunEvent.query(
                    run_key(request_id),
                    RunEvent.timestamp > RUN_ITEM_TIMESTAMP,
                    consistent_read=True,
                    scan_index_forward=False,
                    limit=1,
                )
            ),
            None,
        )
        number = 1 if last is None else int(last.timestamp)
        if last is not None and last.event != "error":  # not the expiry's last event
            number += 1
        RunEvent(
            run_key(request_id),
            number,
            event=event,
            data=event_data_storable(json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
            ttl=_ttl_for(int(record["timestamp"])),
        ).save()
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the run's last event: {exc}") from exc


def _interaction_replay(record: dict[str, Any]) -> ReplayOutcome:
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
            if not reasons or reasons[0] != "ConditionalCheckFailed":  # the put
                raise
        try:
            interaction.save(condition=SessionInteraction.status == "in_progress")
        except PutError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise
        else:
            return "completed"
        if str(record.get("error_message") or "").startswith(LOST_PREFIX):
            return "already_present"
        try:
            interaction.save(condition=SessionInteraction.error_message.startswith(LOST_PREFIX))
        except PutError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return "already_present"
            raise
        return "superseded"
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
