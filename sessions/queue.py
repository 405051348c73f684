"""A session's queue of runs: the session item's hold and tail, the runs ahead of a new one,
and whether it may join."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError
from django.conf import settings
from pynamodb.exceptions import PynamoDBException, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from sessions.models import RUN_ITEM_TIMESTAMP, SESSION_ITEM_TIMESTAMP, RunItem, SessionItem
from sessions.services import (
    RUN_ACTIVE_STATUSES,
    RunKind,
    SessionQueue,
    TurnBudget,
    aws_error_code,
    default_turn_budget,
    idle_cutoff_ms,
    run_key,
    storage_unavailable,
    ttl_for,
)
from skymarshal_api.web.errors import (
    ApplicationError,
    SessionBusy,
    SessionExpired,
    SessionNotFound,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)


def session_update(
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
        SessionItem.ttl.set(ttl_for(timestamp)),
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


def session_refusal(
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
            queue_tail_replace(session_id, tail, waiting)
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


def queue_tail_replace(session_id: str, tail: str, new_tail: str | None) -> None:
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


def queue_room_check(
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
