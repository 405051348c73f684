"""Where background runs execute: a bounded pool of threads in this process (local, and
any WSGI server), or, on Lambda, a Zappa asynchronous task: one asynchronous Lambda
invocation per run, which carries only the run's id (its state is in the sessions table,
not in Zappa's response table)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from django.conf import settings

from skymarshal_api.errors import RuntimeUnavailable

logger = logging.getLogger(__name__)

# Runs waiting for a thread, beyond the threads themselves, before new ones are refused.
_PENDING_PER_WORKER = 4
_pending_lock = threading.Lock()
_pending_count = 0


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
    from invocations.services import invocation_execute

    try:
        invocation_execute(request_id)
    except Exception:
        logger.exception("Background run %s failed in its worker", request_id)
    finally:
        with _pending_lock:
            _pending_count -= 1


def run_dispatch(request_id: str) -> None:
    """Hand the run to a worker."""
    global _pending_count
    if settings.RUN_EXECUTOR == "lambda":
        from zappa.asynchronous import run as zappa_task_run

        zappa_task_run(run_task, args=[request_id])
        return
    with _pending_lock:
        _pending_count += 1
    try:
        _pool().submit(_run_in_thread, request_id)
    except Exception:
        with _pending_lock:
            _pending_count -= 1
        raise


def run_task(request_id: str) -> None:
    """The Zappa asynchronous task: run one background run in this Lambda invocation."""
    from invocations.services import invocation_execute

    invocation_execute(request_id)
