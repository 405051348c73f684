"""The sweeper's part of run webhooks: send every delivery whose attempt is due, whoever
recorded it, so that a delivery outlives the process or Lambda container that first tried
it. Each delivery's next attempt is filed under the minute it is due in (``webhookdue#``
items); a sweep reads the minutes that have passed since the last one (one Query each),
like the runs' deadlines (invocations/sweeper.py, the same walk: invocations/sweep_walk.py),
and goes on from where it stopped."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from invocations.sweep_walk import minutes_walk
from invocations.webhooks import webhook_attempt
from sessions.services import clock_ms
from sessions.webhook_selectors import (
    WebhookDueEntry,
    webhook_delivery_find,
    webhook_due_cursor_get,
    webhook_due_in,
)
from sessions.webhook_services import webhook_due_cursor_set, webhook_due_forget

logger = logging.getLogger(__name__)

_FIRST_SWEEP_MINUTES = 60
_MAX_MINUTES_PER_SWEEP = 3 * 24 * 60


@dataclass
class DeliverySweepReport:
    attempted: list[str] = field(default_factory=list)  # delivery ids
    failed: list[str] = field(default_factory=list)  # could not be dealt with this time
    minutes: int = 0
    out_of_time: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "deliveries_attempted": len(self.attempted),
            "deliveries_failed": len(self.failed),
            "delivery_minutes": self.minutes,
        }


def webhooks_sweep(
    *, now_ms: int | None = None, budget_seconds: float = 20.0
) -> DeliverySweepReport:
    """Send every delivery whose attempt is due (read from the due notes of the minutes
    passed since the last sweep), within ``budget_seconds``; what is left waits for the
    next sweep. Raises StorageUnavailable when the notes cannot be read."""
    now = clock_ms() if now_ms is None else now_ms
    report = DeliverySweepReport()

    def settle(entry: WebhookDueEntry) -> bool:
        claimed = webhook_attempt(entry.request_id, entry.slot)
        if claimed is not None:
            report.attempted.append(claimed.delivery_id)
        else:
            state = webhook_delivery_find(entry.request_id, entry.slot)
            if (
                state is not None
                and state.status == "pending"
                and state.claimed_until is not None
                and state.claimed_until >= now
                and (state.next_attempt_at or 0) <= now
            ):
                return False  # a sender holds it now: look again next time
        webhook_due_forget(entry)
        return True

    walk = minutes_walk(
        now_ms=now,
        cursor_get=webhook_due_cursor_get,
        cursor_set=webhook_due_cursor_set,
        first_minutes=_FIRST_SWEEP_MINUTES,
        max_minutes=_MAX_MINUTES_PER_SWEEP,
        notes_in=webhook_due_in,
        due=lambda entry: entry.due_at <= now,
        settle=settle,
        log=logger,
        failure="Could not send delivery of run %s: %s",
        stop_at=time.monotonic() + budget_seconds,
    )
    report.minutes, report.out_of_time, report.failed = (
        walk.minutes,
        walk.out_of_time,
        walk.failed,
    )
    logger.info("webhook deliveries swept", extra=report.as_dict())
    return report
