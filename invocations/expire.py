"""Ending a run whose worker is gone: past its deadline with no outcome (WORKER_LOST), or given
up by its worker invocations (WORKER_FAILED)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

from invocations.outcome import RunEventLog, record_failure
from sessions.run_selectors import RunRecord, run_find, run_last_event_number
from sessions.services import clock_ms
from skymarshal_api.web.errors import ApplicationError, WorkerFailed, WorkerLost

logger = logging.getLogger(__name__)


def run_expire(run: RunRecord, error: ApplicationError | None = None) -> None:
    """End an active run whose worker is gone as failed: WORKER_LOST (its deadline passed
    with no outcome), or ``error``."""
    if error is None:
        logger.error("Run %s passed its deadline without an outcome", run.request_id)
        if run.status == "queued":
            error = WorkerLost(
                "No worker started the run before its deadline (the workers were busy or "
                "failing); submit it again."
            )
    began = time.monotonic() - max(0, clock_ms() - (run.started_at or run.created_at)) / 1000
    log = None  # a synchronous run has no stored events
    if run.kind == "invocation":
        log = RunEventLog(run, first=run_last_event_number(run.request_id) + 1)
    record_failure(run.started(), error or WorkerLost(), began, log=log)


def run_end_by_worker(request_id: str, *, failures: int, reason: str | None) -> None:
    """End a background run that its worker invocations could not finish: WORKER_FAILED
    once they failed RUN_MAX_ATTEMPTS times, otherwise WORKER_LOST (an invocation started
    it and stopped midway: it timed out or crashed). Raises StorageUnavailable."""
    run = run_find(request_id)
    if run is None or not run.active:
        return
    details: dict[str, Any] = {"worker_failures": failures}
    if reason:
        details["last_failure"] = reason
    error: ApplicationError
    if failures >= settings.RUN_MAX_ATTEMPTS:
        error = WorkerFailed(
            f"The run's worker failed {failures} times; the last time: {reason}.", details=details
        )
    else:
        error = WorkerLost(
            "The run's worker stopped before the run ended (it timed out or crashed).",
            details=details,
        )
    logger.error("Run %s ended by its worker: %s", request_id, error.message)
    run_expire(run, error)
