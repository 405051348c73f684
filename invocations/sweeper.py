"""The sweeper: every run and its interaction reach a final state by the run's deadline
plus grace, whether anyone reads them or not.

A run whose worker died (a killed process, a Lambda that timed out, a storage failure
after it was queued) stays ``queued`` or ``running``; reading it ends it as lost, but
nothing reads most ``/invoke`` runs. Each run's deadline is filed under its minute when the
run is recorded (sessions/models.py ``RunDeadline``); ``runs_sweep`` reads the minutes that
have passed since its last sweep (one Query each: the Lambda role has no Scan) and ends
every run still active past its deadline (``AGENTCORE_DEADLINE_SECONDS`` +
``RUN_GRACE_SECONDS``, plus the queue timeout while queued), with its interaction and its
hold on the session, as failed with WORKER_LOST. A run whose deadline moved (it started
after waiting in the queue) is filed again under its new minute.

The same sweep sends the run webhooks that are due (invocations/webhook_sweep.py), and
records the webhook deliveries of every run it settles from the run's state, so that no
event of a run whose process died is lost.

It runs as ``manage.py runs_sweep`` (``--every N`` under ``make run``) and, on Lambda, as a
scheduled event of the function (zappa_settings.json ``events``:
``invocations.sweeper.runs_sweep_event``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from invocations.expire import run_expire
from invocations.sweep_walk import minutes_walk
from invocations.webhook_sweep import DeliverySweepReport, webhooks_sweep
from invocations.webhooks import webhook_deliveries_ensure
from sessions.models import run_deadline_key
from sessions.run_selectors import (
    RunDeadlineEntry,
    run_deadlines_in,
    run_find,
    sweep_cursor_get,
)
from sessions.run_services import run_deadline_file, run_deadline_forget, sweep_cursor_set
from sessions.services import clock_ms
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import ApplicationError

logger = logging.getLogger(__name__)

# Where the first sweep of a table starts (no run recorded before the sweeper existed has a
# filed deadline), and the most minutes one sweep reads (the next
# sweep goes on from where it stopped).
_FIRST_SWEEP_MINUTES = 60
_MAX_MINUTES_PER_SWEEP = 24 * 60


@dataclass
class SweepReport:
    ended: list[str] = field(default_factory=list)  # request ids ended as lost
    failed: list[str] = field(default_factory=list)  # could not be dealt with this time
    minutes: int = 0
    deliveries: DeliverySweepReport = field(default_factory=DeliverySweepReport)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ended": len(self.ended),
            "failed": len(self.failed),
            "minutes": self.minutes,
            **self.deliveries.as_dict(),
        }


def _deadline_settle(entry: RunDeadlineEntry, report: SweepReport) -> None:
    """End the entry's run if it is lost, or file its deadline again if it moved; then
    forget the entry, unless filing again rewrote this very entry (a deadline that moved
    within the same minute keeps the entry's key)."""
    run = run_find(entry.request_id)
    refiled_here = False
    if run is not None and run.active:
        if run.overdue:
            run_expire(run)
            report.ended.append(run.request_id)
        else:
            run_deadline_file(run.request_id, run.deadline_at)
            refiled_here = run_deadline_key(run.request_id, run.deadline_at) == (
                entry.bucket,
                entry.sort,
            )
    if run is not None and run.webhook is not None:
        # Whatever happened to the run, its webhook deliveries exist from here on.
        webhook_deliveries_ensure(run_find(run.request_id) or run)
    if not refiled_here:
        run_deadline_forget(entry)


def runs_sweep(*, now_ms: int | None = None) -> SweepReport:
    """End every run past its deadline (and its interaction; its session is released) as
    failed with WORKER_LOST. A run that ends meanwhile is left as it ended. Raises
    StorageUnavailable when the deadlines cannot be read."""
    now = clock_ms() if now_ms is None else now_ms
    report = SweepReport()

    def settle(entry: RunDeadlineEntry) -> bool:
        _deadline_settle(entry, report)
        return True

    walk = minutes_walk(
        now_ms=now,
        cursor_get=sweep_cursor_get,
        cursor_set=sweep_cursor_set,
        first_minutes=_FIRST_SWEEP_MINUTES,
        max_minutes=_MAX_MINUTES_PER_SWEEP,
        notes_in=run_deadlines_in,
        due=lambda entry: entry.deadline_at < now,
        settle=settle,
        log=logger,
        failure="Could not settle run %s: %s",
    )
    report.minutes, report.failed = walk.minutes, walk.failed
    try:
        report.deliveries = webhooks_sweep()
    except ApplicationError as exc:
        logger.warning("Could not sweep the webhook deliveries: %s", exc.message)
    if report.ended:
        metric_count("RunsSwept", len(report.ended))
    logger.info("runs swept", extra=report.as_dict())
    return report


def runs_sweep_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry of the scheduled sweep (a Zappa ``events`` function)."""
    return runs_sweep().as_dict()
