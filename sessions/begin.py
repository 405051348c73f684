"""Recording an accepted run before anything runs: the interaction, its run, its deadline, the
session's turn and the Idempotency-Key, in one transaction."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError
from django.conf import settings
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RUN_ITEM_TIMESTAMP,
    IdempotencyRecord,
    RunItem,
    SessionInteraction,
    SessionItem,
)
from sessions.queue import queue_room_check, session_refusal, session_update
from sessions.services import (
    IdempotencyClaim,
    IdempotentReplay,
    InteractionStarted,
    OnConflict,
    RunKind,
    RunWebhook,
    SessionQueue,
    TurnBudget,
    clock_ms,
    default_turn_budget,
    item_find,
    run_deadline_item,
    run_key,
    session_create,
    storage_unavailable,
    ttl_for,
)
from skymarshal_api.web.errors import IdempotencyKeyReused, StorageUnavailable

logger = logging.getLogger(__name__)


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
    new_session_id: str | None = None,
) -> InteractionStarted:
    """Record an interaction as ``in_progress`` and its run before the runtime is called
    (write-ahead), with the session's use and, when given, the Idempotency-Key, in one
    transaction; ``trace`` (the accepting request's trace headers) is kept on the run for
    its worker. A session id that does not exist yet starts a session with that id;
    without one, a new session is created (with ``new_session_id`` when given: a caller
    that needs the id before the write). One run holds a session at a time: a
    synchronous run holds it at once (``running``); a background run holds it while
    ``queued`` for its worker; with ``on_conflict="enqueue"`` a run on a busy session is
    queued behind the last run queued on it.

    Raises SessionNotFound when the session belongs to another principal, SessionExpired
    when it has been idle longer than SESSION_IDLE_MINUTES, SessionBusy when another run
    holds it, IdempotentReplay when the key already started this request,
    IdempotencyKeyReused when it started another, StorageUnavailable when DynamoDB fails.
    """
    new_session = session_id is None
    session_id = session_id or new_session_id or session_create()
    timestamp = now_ms if now_ms is not None else clock_ms()
    budget = budget or default_turn_budget(kind)
    queue_behind: SessionQueue | None = None
    for _ in range(8):
        queued = queue_behind is not None or kind == "invocation"
        # Queued, the run must start within its wait; running, it holds the session for
        # its span.
        hold_until = timestamp + budget.run_ms + (budget.wait_ms if queued else 0)
        ttl = ttl_for(timestamp)
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
                session_update(
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
                refusal, seen = session_refusal(session_id, principal_arn, timestamp)
                if refusal is None:  # freed, or its queue moved, meanwhile: try again
                    queue_behind = None
                    continue
                if seen is not None and on_conflict == "enqueue":
                    queue_room_check(session_id, seen, timestamp, budget, kind)
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
    record = item_find(IdempotencyRecord, claim.key_hash, 0, action="read the Idempotency-Key")
    if record is None:
        return
    if record.request_hash != claim.request_hash or record.kind != kind:
        raise IdempotencyKeyReused()
    raise IdempotentReplay(record.request_id)
