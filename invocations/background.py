"""Where background runs execute: a bounded pool of threads in this process (local, and
any WSGI server), or, on Lambda, the worker function (RUN_WORKER_FUNCTION): one
asynchronous invocation of it per run, sent as a Zappa task that carries only the run's id
(its state is in the sessions table, not in Zappa's response table).

On Lambda the worker is a function of its own, deployed from the same package with its own
reserved concurrency and timeout, so background runs never take the API function's
capacity. Lambda's asynchronous invocation is the queue: an event that finds the worker at
its reserved concurrency is throttled and kept, and retried with backoff for up to its
maximum event age (RUN_QUEUE_TIMEOUT_SECONDS), so the run stays ``queued`` and starts
when capacity frees; an invocation that fails is retried at most twice, then the run ends
as WORKER_FAILED with the last reason (AWS Lambda Developer Guide, "How Lambda handles
errors and retries with asynchronous invocation").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from django.conf import settings

from skymarshal_api.telemetry.logs import log_keys_bind, log_keys_clear
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import ApplicationError, RunDispatchFailed, RuntimeUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunWork:
    """What the executor is handed to run (the invocations app registers it when it is
    ready, so that this module imports none of the run lifecycle): ``execute`` runs one
    background run in this process, in its turn, and answers whether it still waits for
    its turn (a handover); ``end_by_worker`` ends a run the worker cannot run."""

    execute: Callable[[str], bool]
    end_by_worker: Callable[..., None]


_work: RunWork | None = None


def run_work_register(work: RunWork) -> None:
    global _work
    _work = work


def _work_get() -> RunWork:
    if _work is None:
        raise RuntimeError("No run work registered: the invocations app is not ready.")
    return _work


# Runs waiting for a thread, beyond the threads themselves, before new ones are refused.
_PENDING_PER_WORKER = 4
_pending_lock = threading.Lock()
_pending_count = 0
# The runs this process's threads hold (a run handed over twice is run once here).
_in_hand: set[str] = set()


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.RUN_WORKERS, thread_name_prefix="skymarshal-run")


def _capacity() -> int:
    return int(settings.RUN_WORKERS) * (1 + _PENDING_PER_WORKER)


def run_capacity_check() -> None:
    """Raise RuntimeUnavailable (503, Retry-After) when this process already holds as many
    background runs as it can take."""
    if settings.RUN_EXECUTOR == "threads" and _pending_count >= _capacity():
        raise RuntimeUnavailable(
            "Too many background runs are in progress; retry later.",
            headers={"Retry-After": "5"},
        )


def _run_in_thread(request_id: str) -> None:
    global _pending_count
    # The run's lines carry its request id, as its request's did (a pooled thread keeps
    # its context from one run to the next: cleared after each).
    log_keys_bind(request_id=request_id)
    try:
        _work_get().execute(request_id)
    except Exception:
        logger.exception("Background run %s failed in its worker", request_id)
    finally:
        log_keys_clear()
        with _pending_lock:
            _pending_count -= 1
            _in_hand.discard(request_id)


def run_dispatch(request_id: str) -> None:
    """Hand the run to a worker. Raises RunDispatchFailed (503) when the worker function
    could not be invoked (counted as RunDispatchFailures)."""
    global _pending_count
    if settings.RUN_EXECUTOR == "lambda":
        from zappa.asynchronous import run as zappa_task_run

        try:
            zappa_task_run(
                run_task,
                args=[request_id],
                remote_aws_lambda_function_name=settings.RUN_WORKER_FUNCTION,
                remote_aws_region=settings.AWS_REGION,
            )
        except Exception as exc:
            metric_count("RunDispatchFailures")
            logger.error(
                "Run %s could not be sent to %s: %s: %s",
                request_id,
                settings.RUN_WORKER_FUNCTION,
                type(exc).__name__,
                exc,
            )
            raise RunDispatchFailed(details={"reason": type(exc).__name__}) from exc
        return
    with _pending_lock:
        if request_id in _in_hand:
            return
        _in_hand.add(request_id)
        _pending_count += 1
    try:
        _pool().submit(_run_in_thread, request_id)
    except Exception:
        with _pending_lock:
            _pending_count -= 1
            _in_hand.discard(request_id)
        raise


def run_task(request_id: str) -> None:
    """The Zappa task on the worker function: run one background run in this Lambda
    invocation. A delivery that finds the run ended, or held by a live invocation (Lambda
    may deliver an event twice), does nothing. A run that an earlier invocation started
    and did not finish (it timed out or crashed) is ended as lost: a half-done run cannot
    be resumed. An unexpected failure is recorded on the run and raised, so that Lambda
    retries it, until the run has failed RUN_MAX_ATTEMPTS times: then it is ended as
    WORKER_FAILED with the last reason."""
    from sessions.run_services import run_worker_claim, run_worker_release
    from sessions.services import clock_ms

    work = _work_get()
    until = clock_ms() + int(settings.RUN_TASK_TIMEOUT_SECONDS * 1000)
    claim = run_worker_claim(request_id, until_ms=until)
    if claim is None:
        logger.info("Run %s has ended or another worker holds it", request_id)
        return
    if claim.failures >= settings.RUN_MAX_ATTEMPTS or claim.status == "running":
        work.end_by_worker(request_id, failures=claim.failures, reason=claim.last_failure)
        return
    try:
        handover = work.execute(request_id)
    except Exception as exc:
        reason = _failure_reason(exc)
        logger.exception("Run %s failed in its worker", request_id)
        failures = run_worker_release(request_id, until_ms=until, failure=reason)
        if failures >= settings.RUN_MAX_ATTEMPTS:
            work.end_by_worker(request_id, failures=failures, reason=reason)
            return
        raise  # Lambda retries the event
    run_worker_release(request_id, until_ms=until)
    if handover:
        # Still waiting for its turn: wait in a fresh invocation, which has the run's
        # whole deadline ahead of it.
        run_dispatch(request_id)


def _failure_reason(exc: Exception) -> str:
    """What the run's owner may read of a worker's failure: our own errors' messages, and
    only the type of anything else (its text may hold internals; the log has it)."""
    if isinstance(exc, ApplicationError):
        return f"{exc.error_code}: {exc.message}"
    return type(exc).__name__
