"""Reads of runs (one per invocation) and their events from the sessions table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions.models import (
    RUN_ITEM_TIMESTAMP,
    SWEEP_CURSOR_KEY,
    SWEEP_KEY_PREFIX,
    RunDeadline,
    RunEvent,
    RunItem,
    SweepCursor,
)
from sessions.services import (
    RUN_ACTIVE_STATUSES,
    InteractionStarted,
    RunKind,
    RunStatus,
    RunWebhook,
    clock_ms,
    item_find,
    run_key,
    storage_errors,
)
from skymarshal_api.web.errors import InvocationNotFound


@dataclass(frozen=True)
class RunRecord:
    request_id: str
    session_id: str
    interaction_timestamp: int
    owner: str
    kind: RunKind
    status: RunStatus
    prompt: str
    created_at: int
    started_at: int | None
    finished_at: int | None
    deadline_at: int
    after: str | None
    cancel_requested: bool
    response: dict[str, Any] | None
    error: dict[str, Any] | None
    http_status: int | None
    webhook: RunWebhook | None = None
    # The accepting request's trace headers (background runs); None on older items.
    trace: dict[str, str] | None = None

    @property
    def active(self) -> bool:
        return self.status in RUN_ACTIVE_STATUSES

    @property
    def overdue(self) -> bool:
        """Still active after its deadline: its worker is gone."""
        return self.active and self.deadline_at < clock_ms()

    def started(self) -> InteractionStarted:
        """What completing this run's interaction needs."""
        return InteractionStarted(
            session_id=self.session_id,
            timestamp=self.interaction_timestamp,
            request_id=self.request_id,
            prompt=self.prompt,
            user_id=self.owner,
            new_session=False,
            kind=self.kind,
            queued_after=self.after,
            webhook=self.webhook,
        )


@dataclass(frozen=True)
class StoredEvent:
    number: int
    event: str
    data: str  # compact JSON


def _record(item: RunItem) -> RunRecord:
    return RunRecord(
        request_id=item.request_id,
        session_id=item.run_session_id,
        interaction_timestamp=int(item.interaction_timestamp),
        owner=item.owner,
        kind=item.kind,  # type: ignore[arg-type]
        status=item.status,  # type: ignore[arg-type]
        prompt=item.prompt,
        created_at=int(item.created_at),
        started_at=int(item.started_at) if item.started_at is not None else None,
        finished_at=int(item.finished_at) if item.finished_at is not None else None,
        deadline_at=int(item.deadline_at),
        after=item.after,
        cancel_requested=bool(item.cancel_requested),
        response=item.response,
        error=item.error.as_dict() if item.error is not None else None,
        http_status=int(item.http_status) if item.http_status is not None else None,
        webhook=_webhook(item),
        trace=_trace(item),
    )


def _trace(item: RunItem) -> dict[str, str] | None:
    if item.trace is None:
        return None
    return {str(k): str(v) for k, v in item.trace.as_dict().items() if isinstance(v, str)}


def _webhook(item: RunItem) -> RunWebhook | None:
    if item.webhook is None:
        return None
    webhook = item.webhook.as_dict()
    return RunWebhook(url=str(webhook["url"]), events=tuple(webhook["events"]))


def run_find(request_id: str) -> RunRecord | None:
    """The run, whoever owns it (for its worker); None when there is none. Raises
    StorageUnavailable."""
    item = item_find(RunItem, run_key(request_id), RUN_ITEM_TIMESTAMP, action="read the invocation")
    return None if item is None else _record(item)


def run_get(*, request_id: str, principal_arn: str) -> RunRecord:
    """The caller's run. Raises InvocationNotFound (also for another caller's run: the two
    are indistinguishable), StorageUnavailable."""
    run = run_find(request_id)
    if run is None or run.owner != principal_arn or run.kind != "invocation":
        raise InvocationNotFound()
    return run


def run_cancel_requested(request_id: str) -> bool:
    """Whether DELETE asked this run to stop (or it has ended already)."""
    item = item_find(
        RunItem,
        run_key(request_id),
        RUN_ITEM_TIMESTAMP,
        action="read the invocation",
        attributes=["cancel_requested", "status"],
    )
    if item is None:
        return True
    return bool(item.cancel_requested) or item.status not in RUN_ACTIVE_STATUSES


def run_events_after(request_id: str, after: int, *, limit: int = 100) -> list[StoredEvent]:
    """The run's stored events numbered above ``after``, in order (at most ``limit``).
    Raises StorageUnavailable."""
    with storage_errors("read the invocation's events"):
        items = RunEvent.query(
            run_key(request_id),
            RunEvent.timestamp > max(after, RUN_ITEM_TIMESTAMP),
            consistent_read=True,
            limit=limit,
        )
        return [StoredEvent(int(item.timestamp), item.event, item.data) for item in items]


def run_last_event_number(request_id: str) -> int:
    """The number of the run's last stored event (0 when none)."""
    with storage_errors("read the invocation's events"):
        for item in RunEvent.query(
            run_key(request_id),
            RunEvent.timestamp > RUN_ITEM_TIMESTAMP,
            consistent_read=True,
            scan_index_forward=False,
            limit=1,
            attributes_to_get=["session_id", "timestamp"],
        ):
            return int(item.timestamp)
    return 0


@dataclass(frozen=True)
class RunDeadlineEntry:
    bucket: str
    sort: int
    request_id: str
    deadline_at: int


def run_deadlines_in(minute: int) -> list[RunDeadlineEntry]:
    """The deadlines filed under ``minute`` (epoch minutes). Raises StorageUnavailable."""
    with storage_errors("read the run deadlines"):
        return [
            RunDeadlineEntry(
                bucket=item.session_id,
                sort=int(item.timestamp),
                request_id=item.request_id,
                deadline_at=int(item.deadline_at),
            )
            for item in RunDeadline.query(f"{SWEEP_KEY_PREFIX}{minute}", consistent_read=True)
        ]


def sweep_cursor_get() -> int | None:
    """The first minute of deadlines not yet swept; None before the first sweep. Raises
    StorageUnavailable."""
    cursor = item_find(SweepCursor, SWEEP_CURSOR_KEY, 0, action="read the sweep")
    return None if cursor is None else int(cursor.minute)
