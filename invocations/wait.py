"""Waiting on a run: until it ends (GET …/wait, an Idempotency-Key replay), and a synchronous
run's wait for its turn on the session."""

from __future__ import annotations

import time

from django.conf import settings

from invocations.deadlines import turn_budget_of
from invocations.expire import run_expire
from invocations.outcome import record_failure
from sessions.run_selectors import RunRecord, run_find, run_get
from sessions.run_services import run_start
from sessions.services import InteractionStarted
from skymarshal_api.web.errors import InvocationNotFound, RuntimeTimeout


def run_wait_ended(request_id: str, *, timeout: float | None = None) -> RunRecord:
    """The run once it has ended (an overdue run is ended as lost), or as it is when
    ``timeout`` seconds pass first (None: the run's own deadline)."""
    give_up = None if timeout is None else time.monotonic() + timeout
    expired = False
    while True:
        run = run_find(request_id)
        if run is None:
            raise InvocationNotFound()
        if run.overdue and not expired:
            run_expire(run)
            expired = True
            continue
        if not run.active or (give_up is not None and time.monotonic() >= give_up):
            return run
        pause = settings.RUN_POLL_SECONDS
        if give_up is not None:
            pause = min(pause, max(0.0, give_up - time.monotonic()))
        time.sleep(pause)


def invocation_wait(*, request_id: str, principal_arn: str, timeout: float) -> RunRecord:
    """The caller's background run once it has ended, or as it is after ``timeout``
    seconds (0: at once; an overdue run is ended as lost first). Raises
    InvocationNotFound, StorageUnavailable."""
    run_get(request_id=request_id, principal_arn=principal_arn)
    return run_wait_ended(request_id, timeout=timeout)


def turn_wait(started: InteractionStarted, began: float) -> None:
    """Wait (a synchronous run queued with on_conflict "enqueue") until the runs ahead have
    ended, then hold the session. The run was accepted only if its turn comes within its
    wait budget, were every run ahead to take its whole deadline. Raises RuntimeTimeout,
    recorded, when the turn still does not come in time."""
    give_up = began + turn_budget_of("invoke").wait_ms / 1000 + settings.RUN_GRACE_SECONDS
    while True:
        run = run_find(started.request_id)
        outcome = run_start(run) if run is not None and not run.overdue else "gone"
        if outcome == "started":
            return
        if outcome == "gone" or time.monotonic() >= give_up:
            error = RuntimeTimeout(
                "The run's turn on the session did not come before its deadline.",
                details={"wait_seconds": round(time.monotonic() - began, 1)},
            )
            raise record_failure(started, error, began)
        time.sleep(settings.RUN_POLL_SECONDS)
