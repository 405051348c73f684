"""Running a run on the runtime: synchronously (buffered or streamed), handed to the executor
(background), and a worker's part of a background run."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from invocations.accept import InvocationRequest, Replayed, run_accept, run_accept_in_turn
from invocations.background import run_capacity_check, run_dispatch
from invocations.deadlines import lambda_wait_seconds, sync_run_seconds
from invocations.expire import run_expire
from invocations.outcome import (
    RunEventLog,
    RuntimeCall,
    StreamEvent,
    record_failure,
    record_success,
)
from invocations.runtime_client import (
    RuntimeConnection,
    RuntimeRun,
    runtime_connect,
    runtime_run_open,
    runtime_session_stop,
)
from invocations.stream import InvocationEvents
from invocations.webhooks import RUN_STARTED, webhook_notify_soon
from sessions.run_selectors import RunRecord, run_cancel_requested, run_find
from sessions.run_services import run_start
from sessions.services import InteractionStarted, session_create
from skymarshal_api.telemetry.logs import log_keys_bind
from skymarshal_api.telemetry.timing import timed
from skymarshal_api.telemetry.trace_context import trace_context_resume, trace_context_use
from skymarshal_api.web.errors import RunDispatchFailed, StorageUnavailable

logger = logging.getLogger(__name__)


@dataclass
class _Connecting:
    """A runtime connection being opened for a run not yet accepted, and its call."""

    session_id: str
    call: RuntimeCall
    future: Future[RuntimeConnection]

    def discard(self) -> None:
        """The run will not use it (refused, replayed, or queued behind another run):
        closed once open, the runtime asked nothing."""
        self.call.discard()
        self.future.add_done_callback(_close_unused)


def _connect_beside(**connect: Any) -> Future[RuntimeConnection]:
    """``runtime_connect`` in a thread of its own (ended with the connect: none is left
    between requests, nor in a SnapStart snapshot), in a copy of this context."""
    future: Future[RuntimeConnection] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(runtime_connect, **connect))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="runtime-connect", daemon=True).start()
    return future


def _close_unused(future: Future[RuntimeConnection]) -> None:
    try:
        connection = future.result()
    except Exception:  # a connection that never opened needs no closing
        return
    connection.close()


def _accept_connected(
    request: InvocationRequest,
) -> tuple[InteractionStarted, float, RuntimeRun, RuntimeCall] | Replayed:
    """Accept a synchronous run with the runtime connected meanwhile: the connection is
    opened while the write-ahead record is written, and the invoke message is sent only
    once the record is committed. A run refused, replayed, or queued behind another
    closes that connection unused (a queued run connects again when its turn comes)."""
    session_id = request.session_id or session_create()
    if request.session_id is None:
        request = replace(request, new_session_id=session_id)
    call = RuntimeCall()
    since = time.monotonic()  # the run's deadline, and its execution time, start here
    connecting = _Connecting(
        session_id,
        call,
        _connect_beside(
            session_id=session_id,
            seconds=sync_run_seconds(),
            since=since,
            trace_headers=call.trace_headers,
        ),
    )
    try:
        accepted = run_accept_in_turn(request)
    except BaseException:
        connecting.discard()
        raise
    if isinstance(accepted, Replayed):
        connecting.discard()
        return accepted
    started, began = accepted
    if started.queued_after is not None or started.session_id != connecting.session_id:
        connecting.discard()  # it has idled through the wait for the turn
        run, call = _open(started, began)
        return started, began, run, call
    began = since
    _run_started_notify(started)
    try:
        with timed("runtime"):
            connection = connecting.future.result()
            run = connection.run(prompt=started.prompt, session_id=started.session_id)
    except Exception as exc:
        record_failure(started, exc, began, call=call)
        raise
    return started, began, run, call


def _run_started_notify(started: InteractionStarted) -> None:
    if started.webhook is not None and RUN_STARTED in started.webhook.events:
        webhook_notify_soon(started.request_id)


def _open(
    started: InteractionStarted, began: float, log: RunEventLog | None = None
) -> tuple[RuntimeRun, RuntimeCall]:
    _run_started_notify(started)
    call = RuntimeCall()
    seconds = sync_run_seconds() if started.kind == "invoke" else None
    try:
        with timed("runtime"):
            run = runtime_run_open(
                prompt=started.prompt,
                session_id=started.session_id,
                seconds=seconds,
                since=began,
                trace_headers=call.trace_headers,
            )
    except Exception as exc:
        record_failure(started, exc, began, log=log, call=call)
        raise
    return run, call


def invocation_run(request: InvocationRequest) -> dict[str, Any] | Replayed:
    """Run one invocation to the end: the InvokeResponse (or, for a repeated
    Idempotency-Key, the original run). Raises SessionNotFound, SessionExpired,
    SessionBusy, IdempotencyKeyReused, StorageUnavailable (nothing was run) and the
    runtime's errors (the failure is recorded in the session first)."""
    accepted = _accept_connected(request)
    if isinstance(accepted, Replayed):
        return accepted
    started, began, run, call = accepted
    try:
        with timed("runtime"):
            data = run.complete()
    except Exception as exc:
        record_failure(started, exc, began, call=call, stats=run.stats)
        raise
    finally:
        run.close()
    call.end("success", run.stats, None)
    return record_success(started, data, run, began)


def invocation_stream(request: InvocationRequest) -> InvocationEvents | Replayed:
    """Start an invocation (errors until the runtime is connected are raised, so they can
    be HTTP errors) and return its events: ``start``, the runtime's ``chunk``s, then one
    ``complete`` (the InvokeResponse) or one ``error`` (the error shape). A client that
    goes away mid-stream leaves the interaction recorded as ``cancelled``."""
    accepted = _accept_connected(request)
    if isinstance(accepted, Replayed):
        return accepted
    started, began, run, call = accepted
    return InvocationEvents(started, run, began, call)


def invocation_submit(request: InvocationRequest) -> tuple[RunRecord, bool]:
    """Accept a background run and hand it to a worker: the run as accepted (queued), and
    whether it is an Idempotency-Key replay of an earlier one. Raises what
    ``invocation_run`` raises before running, and RuntimeUnavailable when the workers are
    saturated."""
    run_capacity_check()
    accepted = run_accept(request, "invocation")
    if isinstance(accepted, Replayed):
        if accepted.run.status == "queued":
            # The first request may have failed after its run was recorded (a write that
            # timed out but was applied, a dispatch that never left): hand the run over
            # again. A worker that already holds it makes this a no-op.
            try:
                run_dispatch(accepted.run.request_id)
            except RunDispatchFailed:
                logger.warning("Run %s: dispatch on replay failed", accepted.run.request_id)
        return accepted.run, True
    run = run_find(accepted.request_id)
    if run is None:  # pragma: no cover - just written
        raise StorageUnavailable("The invocation was not recorded.")
    try:
        run_dispatch(run.request_id)
    except Exception as exc:
        # Nothing will run it: end it now rather than leave it queued to its deadline.
        record_failure(run.started(), exc, time.monotonic(), log=RunEventLog(run))
        raise
    return run, False


def invocation_execute(request_id: str) -> bool:
    """A worker's part of a background run: wait for its turn, run it on the runtime,
    store its events as they arrive, stop when cancelled, record its outcome. True when,
    on Lambda, the run is still waiting for its turn and must wait in a fresh invocation
    (one that has the run's whole deadline ahead of it). The run continues the trace of
    the request that accepted it: its log lines and metrics carry that trace_id, and the
    runtime is called in it."""
    run = run_find(request_id)
    if run is None or not run.active:
        return False
    # In a context of its own: a pool thread's next run must not inherit this one's keys.
    return contextvars.copy_context().run(_execute_in_trace, run)


def _execute_in_trace(run: RunRecord) -> bool:
    context = trace_context_resume(run.trace)
    if context is not None:
        trace_context_use(context)
        log_keys_bind(request_id=run.request_id, trace_id=context.trace_id)
    return _execute(run)


def _execute(run: RunRecord) -> bool:
    request_id = run.request_id
    started = run.started()
    began = time.monotonic()
    log = RunEventLog(run)
    if run.status != "queued":
        return False  # running already: another worker has it
    waiting_since = time.monotonic()
    while True:
        if run.overdue:
            run_expire(run)
            return False
        outcome = run_start(run)
        if outcome == "started":
            break
        if outcome == "gone":
            current = run_find(request_id)
            if current is not None and current.overdue:
                run_expire(current)
            return False  # cancelled (DELETE recorded it), or started by another worker
        if settings.RUN_EXECUTOR == "lambda" and time.monotonic() - waiting_since > (
            lambda_wait_seconds()
        ):
            return True
        time.sleep(settings.RUN_POLL_SECONDS)
        current = run_find(request_id)
        if current is None or not current.active:
            return False
        run = current
    began = time.monotonic()
    try:
        log.append(StreamEvent("start", {"request_id": request_id, "session_id": run.session_id}))
    except StorageUnavailable as exc:
        record_failure(started, exc, began, log=log)
        return False
    try:
        runtime, call = _open(started, began, log)
    except Exception:
        return False  # recorded as failed by _open
    events = InvocationEvents(
        started, runtime, began, call, idle_seconds=settings.RUN_CANCEL_CHECK_SECONDS, log=log
    )
    checked = time.monotonic()
    try:
        for event in events:
            if event.event == "chunk":
                log.append(event)
            if time.monotonic() - checked >= settings.RUN_CANCEL_CHECK_SECONDS:
                checked = time.monotonic()
                if _cancel_requested(request_id):
                    # The runtime session stops before the API session is let go: a run
                    # accepted next on the session must not meet this one's work.
                    runtime_session_stop(started.session_id)
                    events.cancel()
                    return False
    except StorageUnavailable as exc:
        events.fail(exc)  # a storage fault, never a cancel
    finally:
        events.close()
    return False


def _cancel_requested(request_id: str) -> bool:
    """Whether DELETE asked the run to stop; a storage fault reads as "not yet" (the next
    check asks again), so it never stops a run as if cancelled."""
    try:
        return run_cancel_requested(request_id)
    except StorageUnavailable as exc:
        logger.warning("Run %s: cancel check failed: %s", request_id, exc.message)
        return False
