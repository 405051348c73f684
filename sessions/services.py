"""What the rest of the app speaks about sessions and runs: statuses, the accepted run
(InteractionStarted), turn budgets, the session queue's shape, clocks and keys, and the
one translation of a DynamoDB error (``storage_errors``, ``storage_unavailable``,
``item_find``, ``conditional_write``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from botocore.exceptions import BotoCoreError
from django.conf import settings
from pynamodb.exceptions import PynamoDBException, TransactWriteError, UpdateError
from pynamodb.models import Model

from sessions.models import RUN_KEY_PREFIX, RunDeadline, RunEvent, run_deadline_key
from skymarshal_api.web.errors import StorageUnavailable

logger = logging.getLogger(__name__)

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


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """The table's boundary: a PynamoDB or botocore error inside becomes StorageUnavailable
    (``storage_unavailable``: what failed and AWS's error code). The exceptions of ours a
    caller handles first (a condition that failed, an item not there) are caught inside."""
    try:
        yield
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable(action, exc) from exc


@dataclass
class ConditionalWrite:
    """Whether the conditions of a write held (False: the write changed nothing)."""

    held: bool = True


@contextmanager
def conditional_write(action: str) -> Iterator[ConditionalWrite]:
    """The table's boundary for a conditional update or transaction: a condition that
    failed is noted (``held`` False) instead of raised; any other PynamoDB or botocore
    error becomes StorageUnavailable (``storage_unavailable``)."""
    written = ConditionalWrite()
    try:
        yield written
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise storage_unavailable(action, exc) from exc
        written.held = False
    except TransactWriteError as exc:
        codes = [reason.code if reason else None for reason in exc.cancellation_reasons or []]
        if "ConditionalCheckFailed" not in codes:
            raise storage_unavailable(action, exc) from exc
        written.held = False
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable(action, exc) from exc


def item_find[M: Model](
    model: type[M],
    hash_key: str,
    range_key: int,
    *,
    action: str,
    attributes: Sequence[str] | None = None,
) -> M | None:
    """The item, read consistently (only ``attributes``, when given); None when there is
    none. Raises StorageUnavailable (``storage_unavailable``: ``action`` says what failed)."""
    try:
        return model.get(hash_key, range_key, consistent_read=True, attributes_to_get=attributes)
    except model.DoesNotExist:
        return None
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable(action, exc) from exc


def session_create() -> str:
    """A new session id (UUID v4)."""
    return str(uuid.uuid4())


def ttl_for(timestamp_ms: int) -> datetime:
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


def run_event_item(
    request_id: str, number: int, *, event: str, data: str, interaction_timestamp: int
) -> RunEvent:
    """A run's event ``number`` as stored (sessions/models.py RunEvent), kept as long as the
    run's interaction (``interaction_timestamp``)."""
    return RunEvent(
        run_key(request_id), number, event=event, data=data, ttl=ttl_for(interaction_timestamp)
    )


def run_key(request_id: str) -> str:
    return f"{RUN_KEY_PREFIX}{request_id}"
