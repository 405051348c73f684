"""Writes of runs beyond beginning and completing them (sessions.services): starting a
queued run when its turn comes, asking a run to stop, storing a run's events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RUN_ITEM_TIMESTAMP,
    SESSION_ITEM_TIMESTAMP,
    SWEEP_CURSOR_KEY,
    RunDeadline,
    RunEvent,
    RunItem,
    SessionItem,
    SweepCursor,
    event_data_storable,
)
from sessions.queue import queue_ahead
from sessions.run_selectors import RunDeadlineEntry, RunRecord
from sessions.services import (
    RUN_ACTIVE_STATUSES,
    aws_error_code,
    clock_ms,
    conditional_write,
    run_deadline_item,
    run_deadline_ms,
    run_event_item,
    run_key,
    storage_errors,
    storage_unavailable,
)

logger = logging.getLogger(__name__)

StartOutcome = Literal["started", "wait", "gone"]


@dataclass(frozen=True)
class WorkerClaim:
    """A worker invocation's hold on a run (Lambda): the run's status when it was claimed,
    and the failures of the invocations that held it before."""

    status: str
    failures: int
    last_failure: str | None


def run_start(run: RunRecord) -> StartOutcome:
    """Move a queued run to ``running`` and let it hold its session, in one transaction:
    ``started``; ``wait`` while the run it is queued behind is active or another run holds
    the session; ``gone`` when the run is no longer queued (cancelled, or started by
    another worker). Raises StorageUnavailable."""
    now = clock_ms()
    deadline = run_deadline_ms(now)
    # Every run ahead must have ended: the one it was queued behind, and those behind
    # which that one waited, back to the first that had its turn (a run cancelled before
    # its turn does not let the runs after it overtake the runs before it).
    ahead = queue_ahead(run.after, now)
    if ahead.waiting is not None:
        return "wait"
    order: list[str] = []
    try:
        with TransactWrite(connection=SessionItem._get_connection().connection) as write:
            for request_id in ahead.runs:
                order.append("after")
                write.condition_check(
                    RunItem,
                    run_key(request_id),
                    RUN_ITEM_TIMESTAMP,
                    condition=RunItem.session_id.does_not_exist()
                    | ~RunItem.status.is_in(*RUN_ACTIVE_STATUSES)
                    | (RunItem.deadline_at < now),
                )
            order.append("run")
            write.update(
                RunItem(run_key(run.request_id), RUN_ITEM_TIMESTAMP),
                actions=[
                    RunItem.status.set("running"),
                    RunItem.started_at.set(now),
                    RunItem.deadline_at.set(deadline),
                ],
                condition=(RunItem.status == "queued")
                & (RunItem.cancel_requested.does_not_exist() | (RunItem.cancel_requested == False))  # noqa: E712
                & (RunItem.deadline_at >= now),
            )
            order.append("session")
            write.update(
                SessionItem(run.session_id, SESSION_ITEM_TIMESTAMP),
                actions=[
                    SessionItem.active_run.set(run.request_id),
                    SessionItem.active_until.set(deadline),
                ],
                condition=SessionItem.active_run.does_not_exist()
                | (SessionItem.active_run == run.request_id)
                | (SessionItem.active_until < now),
            )
    except TransactWriteError as exc:
        failed = {
            name
            for name, reason in zip(order, exc.cancellation_reasons or [], strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "run" in failed:
            return "gone"
        if failed & {"after", "session"}:
            return "wait"
        codes = {reason.code for reason in exc.cancellation_reasons or [] if reason}
        if "TransactionConflict" in codes:
            return "wait"
        raise storage_unavailable("start the invocation", exc) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise storage_unavailable("start the invocation", exc) from exc
    return "started"


def run_cancel_request(request_id: str) -> bool:
    """Ask an active run to stop: True when asked, False when it had ended already.
    Raises StorageUnavailable."""
    with conditional_write("cancel the invocation") as checked:
        RunItem(run_key(request_id), RUN_ITEM_TIMESTAMP).update(
            actions=[RunItem.cancel_requested.set(True)],
            condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES),
        )
    return checked.held


def run_event_append(run: RunRecord, *, number: int, event: str, data: str) -> None:
    """Store one event of a running run under its number (truncated, with a note, when it
    is too large for an item). Storing the same number twice keeps the first. Raises
    StorageUnavailable."""
    stored = event_data_storable(data)
    for keep_prefix in (True, False):
        try:
            run_event_item(
                run.request_id,
                number,
                event=event,
                data=stored,
                interaction_timestamp=run.interaction_timestamp,
            ).save(condition=RunEvent.session_id.does_not_exist())
            return
        except PutError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                logger.warning("Event %s of run %s was already stored", number, run.request_id)
                return
            if aws_error_code(exc) == "ValidationException" and keep_prefix:
                # Still too large (escaping): keep only the note.
                stored = event_data_storable(data, keep_prefix=False)
                continue
            raise storage_unavailable("store the invocation's event", exc) from exc
        except (PynamoDBException, BotoCoreError) as exc:
            raise storage_unavailable("store the invocation's event", exc) from exc


def run_deadline_file(request_id: str, deadline_at: int) -> None:
    """File (again) a run's deadline for the sweeper. Raises StorageUnavailable."""
    with storage_errors("file the run's deadline"):
        run_deadline_item(request_id, deadline_at).save()


def run_deadline_forget(deadline: RunDeadlineEntry) -> None:
    """Drop a deadline the sweeper has dealt with. Raises StorageUnavailable."""
    with storage_errors("forget the run's deadline"):
        RunDeadline(deadline.bucket, deadline.sort).delete()


def sweep_cursor_set(minute: int) -> None:
    """Record that every deadline before ``minute`` has been dealt with. Raises
    StorageUnavailable."""
    with storage_errors("record the sweep"):
        SweepCursor(SWEEP_CURSOR_KEY, 0, minute=minute).save()


def run_worker_claim(request_id: str, *, until_ms: int) -> WorkerClaim | None:
    """Hold an active run for one worker invocation until ``until_ms`` (its timeout):
    the claim, or None when the run has ended or another live invocation holds it (Lambda
    may deliver one asynchronous event twice). Raises StorageUnavailable."""
    now = clock_ms()
    with conditional_write("claim the invocation") as checked:
        item = RunItem(run_key(request_id), RUN_ITEM_TIMESTAMP)
        item.update(
            actions=[RunItem.worker_until.set(until_ms)],
            condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES)
            & (RunItem.worker_until.does_not_exist() | (RunItem.worker_until < now)),
        )
    if not checked.held:
        return None
    return WorkerClaim(
        status=item.status,
        failures=int(item.worker_failures or 0),
        last_failure=item.worker_failure,
    )


def run_worker_release(request_id: str, *, until_ms: int, failure: str | None = None) -> int:
    """Give up a worker invocation's hold on a run (only its own), recording why it failed
    when it did: the run's worker failures so far. Raises StorageUnavailable."""
    actions: list[Action] = [RunItem.worker_until.remove()]
    if failure is not None:
        actions += [
            RunItem.worker_failures.add(1),
            RunItem.worker_failure.set(failure[:_FAILURE_CHARACTERS]),
        ]
    item = RunItem(run_key(request_id), RUN_ITEM_TIMESTAMP)
    with conditional_write("release the invocation") as checked:
        item.update(actions=actions, condition=RunItem.worker_until == until_ms)
    if not checked.held:
        return 0  # no longer ours (it lapsed and another invocation holds it)
    return int(item.worker_failures or 0)


_FAILURE_CHARACTERS = 500
