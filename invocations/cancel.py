"""Cancelling a background run (DELETE)."""

from __future__ import annotations

import time

from invocations.expire import run_expire
from invocations.outcome import RunEventLog, record_failure
from invocations.wait import run_wait_ended
from sessions.run_selectors import RunRecord, run_find, run_get, run_last_event_number
from sessions.run_services import run_cancel_request
from skymarshal_api.web.errors import InvocationFinished, RunCancelled

_CANCEL_WAIT_SECONDS = 3.0


def invocation_cancel(*, request_id: str, principal_arn: str) -> RunRecord:
    """Cancel the caller's background run: a queued run is ended at once; a running one is
    asked to stop, and its worker closes the runtime connection (in AWS mode also stops the
    runtime session) within RUN_CANCEL_CHECK_SECONDS. The run as it is after up to 3 s.
    Raises InvocationNotFound, InvocationFinished, StorageUnavailable."""
    run = run_get(request_id=request_id, principal_arn=principal_arn)
    if run.overdue:
        run_expire(run)
        run = run_get(request_id=request_id, principal_arn=principal_arn)
    if not run.active or not run_cancel_request(request_id):
        current = run_find(request_id) or run
        raise InvocationFinished(
            f"The invocation has already ended ({current.status}); there is nothing to cancel.",
            details={"status": current.status},
        )
    run = run_get(request_id=request_id, principal_arn=principal_arn)
    if run.status == "queued":
        log = RunEventLog(run, first=run_last_event_number(request_id) + 1)
        record_failure(
            run.started(),
            RunCancelled("The run was cancelled before it started."),
            time.monotonic(),
            log=log,
            status="cancelled",
        )
    return run_wait_ended(request_id, timeout=_CANCEL_WAIT_SECONDS)
