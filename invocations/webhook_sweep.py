"""The sweeper's part of run webhooks: send every delivery whose attempt is due, whoever
recorded it, so that a delivery outlives the process or Lambda container that first tried
it. Each delivery's next attempt is filed under the minute it is due in (``webhookdue#``
items); a sweep reads the minutes that have passed since the last one (one Query each),
like the runs' deadlines (invocations/sweeper.py), and goes on from where it stopped."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from invocations.webhooks import webhook_attempt
from sessions.models import SWEEP_BUCKET_MS
from sessions.services import clock_ms
from sessions.webhook_selectors import (
    webhook_delivery_find,
    webhook_due_cursor_get,
    webhook_due_in,
)
from sessions.webhook_services import webhook_due_cursor_set, webhook_due_forget
from skymarshal_api.errors import ApplicationError

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
    stop_at = time.monotonic() + budget_seconds
    current = now // SWEEP_BUCKET_MS
    cursor = webhook_due_cursor_get()
    start = current - _FIRST_SWEEP_MINUTES if cursor is None else cursor
    end = min(current, start + _MAX_MINUTES_PER_SWEEP)
    report = DeliverySweepReport()
    advance_to = start
    for minute in range(start, end + 1):
        report.minutes += 1
        settled = True
        for entry in webhook_due_in(minute):
            if entry.due_at > now:
                settled = False  # not due yet (the current minute)
                continue
            if time.monotonic() >= stop_at:
                report.out_of_time = True
                settled = False
                break
            try:
                claimed = webhook_attempt(entry.request_id, entry.slot)
                if claimed is not None:
                    report.attempted.append(claimed.delivery_id)
                else:
                    current_state = webhook_delivery_find(entry.request_id, entry.slot)
                    if (
                        current_state is not None
                        and current_state.status == "pending"
                        and current_state.claimed_until is not None
                        and current_state.claimed_until >= now
                        and (current_state.next_attempt_at or 0) <= now
                    ):
                        settled = False  # a sender holds it now: look again next time
                        continue
                webhook_due_forget(entry)
            except ApplicationError as exc:
                logger.warning(
                    "Could not send delivery of run %s: %s", entry.request_id, exc.message
                )
                report.failed.append(entry.request_id)
                settled = False
        if settled and advance_to == minute and minute < current:
            advance_to = minute + 1
        if report.out_of_time:
            break
    if advance_to != cursor:
        webhook_due_cursor_set(advance_to)
    logger.info("webhook deliveries swept", extra=report.as_dict())
    return report
