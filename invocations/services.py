"""Invoking SkyMarshal: record the interaction, run it on the runtime, record the outcome.

Every accepted invocation leaves a record in the sessions table (written before the
runtime is called, completed on every outcome), or, if DynamoDB fails at the end, a
replay record in the log and a warning in the response.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from invocations.run_result import RunResult
from invocations.runtime_client import (
    RunStats,
    RuntimeRun,
    runtime_run_open,
    runtime_session_stop,
)
from invocations.webhooks import RUN_STARTED, webhook_notify_soon, webhook_secret_require
from invocations.wire import ChunkData
from sessions.models import IDEMPOTENCY_KEY_PREFIX
from sessions.run_selectors import (
    RunRecord,
    StoredEvent,
    run_cancel_requested,
    run_events_after,
    run_find,
    run_get,
    run_last_event_number,
)
from sessions.run_services import run_cancel_request, run_event_append, run_start
from sessions.services import (
    IdempotencyClaim,
    IdempotentReplay,
    InteractionStarted,
    InteractionStatus,
    OnConflict,
    RunKind,
    RunWebhook,
    TurnBudget,
    clock_ms,
    default_turn_budget,
    interaction_begin,
    turn_budget,
)
from sessions.services import interaction_complete as _interaction_complete
from skymarshal_api.errors import (
    RETRYABLE_ERROR_CODES,
    ApplicationError,
    InvalidRuntimeResponse,
    InvocationFinished,
    InvocationNotFound,
    RunCancelled,
    RunDispatchFailed,
    RuntimeTimeout,
    StorageUnavailable,
    WorkerFailed,
    WorkerLost,
    as_application_error,
    error_body,
)
from skymarshal_api.logs import prompt_fingerprint
from skymarshal_api.observability import (
    request_fields_add,
    request_session_bind,
    runtime_invocation_record,
    runtime_subsegment_begin,
)
from skymarshal_api.timing import timed

logger = logging.getLogger(__name__)

UNSAVED_WARNING = (
    "The session history could not be saved; the interaction was logged for replay "
    "(manage.py sessions_replay_log)."
)


@dataclass(frozen=True)
class StreamEvent:
    event: str  # start | chunk | complete | error | heartbeat (an SSE comment)
    data: dict[str, Any]


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


_EVENT_RETRY_PAUSES = (0.1, 0.4)
# While events wait to be stored, a new event tries to store them at most this often.
_EVENT_RETRY_INTERVAL_SECONDS = 1.0
_MAX_PENDING_EVENTS = 32
_MAX_PENDING_BYTES = 4 * 1024 * 1024


class RunEventLog:
    """Numbers a background run's events (1, 2, …: the SSE ids) and stores them as they
    arrive, in order; the last one is stored with the run's outcome, in the same
    transaction. An event that cannot be stored, even after retries, is kept and stored
    before a later one: the run goes on. While events wait, a new event tries once, with
    no pause, and at most every _EVENT_RETRY_INTERVAL_SECONDS: the run's stream is read
    against its deadline, and retrying every event with pauses held it up until a run
    that had succeeded at the runtime timed out. Only when too many are waiting does
    ``append`` raise StorageUnavailable (the run then ends as failed with it, never as
    cancelled)."""

    def __init__(self, run: RunRecord, *, first: int = 1) -> None:
        self._run = run
        self._next = first
        self._pending: list[tuple[int, str, str]] = []
        self._retry_at = 0.0  # while events wait: when a new event may try again

    def append(self, event: StreamEvent) -> None:
        waiting = bool(self._pending)
        self._pending.append((self._next, event.event, _json(event.data)))
        self._next += 1
        if not waiting:
            stored = self._flush(_EVENT_RETRY_PAUSES)
        else:
            stored = time.monotonic() >= self._retry_at and self._flush(())
        if stored:
            return
        self._retry_at = time.monotonic() + _EVENT_RETRY_INTERVAL_SECONDS
        size = sum(len(data) for _, _, data in self._pending)
        logger.warning(
            "Run %s: %s events wait to be stored", self._run.request_id, len(self._pending)
        )
        if len(self._pending) > _MAX_PENDING_EVENTS or size > _MAX_PENDING_BYTES:
            raise StorageUnavailable(
                "The run's events could not be stored; the run was stopped.",
                details={"events_not_stored": len(self._pending)},
            )

    def _flush(self, pauses: tuple[float, ...]) -> bool:
        """Store the waiting events in order, retrying after each of ``pauses``; True once
        none is left."""
        for pause in (*pauses, None):
            try:
                while self._pending:
                    number, name, data = self._pending[0]
                    run_event_append(self._run, number=number, event=name, data=data)
                    self._pending.pop(0)
                return True
            except StorageUnavailable:
                if pause is None:
                    return False
                time.sleep(pause)
        return False  # pragma: no cover - the loop returns

    def final(self, event: str, data: dict[str, Any]) -> tuple[int, str, str]:
        """The last event (stored with the outcome), once the waiting ones are stored."""
        if self._pending and not self._flush(_EVENT_RETRY_PAUSES):
            logger.error(
                "Run %s ends with %s events not stored",
                self._run.request_id,
                len(self._pending),
            )
        return (self._next, event, _json(data))


class RuntimeCall:
    """One call of the runtime, observed from connecting to the end of the run: its X-Ray
    subsegment, then (once) its log line and metrics."""

    def __init__(self) -> None:
        self._began = time.monotonic()
        self._subsegment = runtime_subsegment_begin()
        self._ended = False

    def end(self, outcome: str, stats: RunStats | None, error: ApplicationError | None) -> None:
        if self._ended:
            return
        self._ended = True
        error_code = error.error_code if error is not None else None
        self._subsegment.end(
            failed=outcome in ("failure", "timeout"),
            outcome=outcome,
            **({"error_code": error_code} if error_code else {}),
        )
        runtime_invocation_record(
            outcome=outcome,
            duration_ms=(time.monotonic() - self._began) * 1000,
            first_chunk_ms=stats.first_chunk_ms if stats else None,
            chunks=stats.chunks if stats else 0,
            connect_attempts=stats.connect_attempts if stats else None,
            error_code=error_code,
        )

    def failed(self, error: ApplicationError, stats: RunStats | None) -> None:
        self.end("timeout" if isinstance(error, RuntimeTimeout) else "failure", stats, error)


def interaction_complete(started: InteractionStarted, **outcome: Any) -> bool:
    with timed("persistence"):
        saved = _interaction_complete(started, **outcome)
    if started.webhook is not None:
        # After the run's final write, off its path (the sweeper covers a sender lost).
        webhook_notify_soon(started.request_id)
    return saved


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _response(
    started: InteractionStarted,
    data: RunResult,
    run: RuntimeRun,
    *,
    execution_time_ms: int,
) -> dict[str, Any]:
    return {
        "status": "success",
        "request_id": started.request_id,
        "session_id": started.session_id,
        "execution_time_ms": execution_time_ms,
        "assessment": data.assessment,
        "safety_phase": data.safety_phase,
        "business_phase": data.business_phase,
        "final_decision": data.final_decision,
        "recommendations": data.recommendations,
        "metadata": {
            **data.metadata,
            "api_version": settings.API_VERSION,
            "runtime_execution_time_ms": data.execution_time_ms,
            "time_to_first_chunk_ms": round(run.stats.first_chunk_ms, 1)
            if run.stats.first_chunk_ms is not None
            else None,
            "connect_attempts": run.stats.connect_attempts,
            "new_session": started.new_session,
        },
    }


def _record_failure(
    started: InteractionStarted,
    exc: Exception,
    began: float,
    *,
    log: RunEventLog | None = None,
    status: InteractionStatus | None = None,
    call: RuntimeCall | None = None,
    stats: RunStats | None = None,
) -> ApplicationError:
    """Complete the interaction and its run as failed, whatever failed (an unexpected
    exception is recorded as INTERNAL_ERROR and logged with its traceback); the error.
    ``call``, the runtime call that failed, is observed as failed (or cancelled)."""
    error = as_application_error(exc)
    if error is not exc:
        logger.exception("Invocation %s failed unexpectedly", started.request_id)
    if call is not None:
        if status == "cancelled":
            call.end("cancelled", stats, None)
        else:
            call.failed(error, stats)
    body = error_body(
        request_id=started.request_id,
        error_code=error.error_code,
        message=error.message,
        details=error.details,
    )
    error.timestamp = body["timestamp"]
    saved = interaction_complete(
        started,
        status=status or ("timeout" if isinstance(error, RuntimeTimeout) else "error"),
        response=None,
        execution_time_ms=_elapsed_ms(began),
        error_message=f"{error.error_code}: {error.message}",
        run_error=body,
        http_status=error.status_code,
        final_event=log.final("error", body) if log is not None else None,
    )
    if not saved:
        error.details = {**(error.details or {}), "warnings": [UNSAVED_WARNING]}
    return error


def _record_success(
    started: InteractionStarted,
    data: RunResult,
    run: RuntimeRun,
    began: float,
    *,
    log: RunEventLog | None = None,
) -> dict[str, Any]:
    """The InvokeResponse, once its interaction is recorded (or logged for replay)."""
    response = _response(started, data, run, execution_time_ms=_elapsed_ms(began))
    if not interaction_complete(
        started,
        status="success",
        response=_stored(response),
        execution_time_ms=response["execution_time_ms"],
        run_response=response,
        http_status=200,
        final_event=log.final("complete", response) if log is not None else None,
    ):
        response["warnings"] = [UNSAVED_WARNING]
    return response


def sync_run_seconds() -> float:
    """How long a synchronous run may last from its acceptance (its turn on the session
    included): the runtime's deadline, and behind API Gateway (RESPONSE_MODE=buffered) no
    longer than a request may hold the function (REQUEST_HOLD_SECONDS)."""
    if settings.RESPONSE_MODE == "buffered":
        return min(settings.AGENTCORE_DEADLINE_SECONDS, settings.REQUEST_HOLD_SECONDS)
    return float(settings.AGENTCORE_DEADLINE_SECONDS)


def turn_budget_of(kind: RunKind) -> TurnBudget:
    """How long a run may wait for its turn on a busy session and how long it then lasts.
    Behind API Gateway (RESPONSE_MODE=buffered) a synchronous run never waits: its request
    has REQUEST_HOLD_SECONDS in all, under the gateway's 29 s, and a wait there would cut
    its run short; on a busy session it is refused at once (a background run may queue).
    Elsewhere a run waits up to RUN_QUEUE_TIMEOUT_SECONDS and then has its whole
    deadline."""
    if kind == "invoke" and settings.RESPONSE_MODE == "buffered":
        return turn_budget(wait_seconds=0, run_seconds=sync_run_seconds())
    return default_turn_budget(kind)


def _open(
    started: InteractionStarted, began: float, log: RunEventLog | None = None
) -> tuple[RuntimeRun, RuntimeCall]:
    if started.webhook is not None and RUN_STARTED in started.webhook.events:
        webhook_notify_soon(started.request_id)
    call = RuntimeCall()
    seconds = sync_run_seconds() if started.kind == "invoke" else None
    try:
        with timed("runtime"):
            run = runtime_run_open(
                prompt=started.prompt, session_id=started.session_id, seconds=seconds, since=began
            )
    except Exception as exc:
        _record_failure(started, exc, began, log=log, call=call)
        raise
    return run, call


@dataclass(frozen=True)
class InvocationRequest:
    """A validated invocation: what /invoke and /invocations were asked to run."""

    prompt: str
    session_id: str | None
    principal_arn: str
    request_id: str
    on_conflict: OnConflict = "reject"
    idempotency_key: str | None = None
    streaming: bool = False
    webhook: RunWebhook | None = None


def _idempotency_claim(request: InvocationRequest, kind: RunKind) -> IdempotencyClaim | None:
    if request.idempotency_key is None:
        return None
    key_hash = hashlib.sha256(
        f"{request.principal_arn}\n{request.idempotency_key}".encode()
    ).hexdigest()
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "session_id": request.session_id,
        "on_conflict": request.on_conflict,
        "streaming": request.streaming,
    }
    if request.webhook is not None:
        body["webhook"] = {"url": request.webhook.url, "events": list(request.webhook.events)}
    request_hash = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    return IdempotencyClaim(
        key_hash=f"{IDEMPOTENCY_KEY_PREFIX}{key_hash}", request_hash=request_hash
    )


@dataclass(frozen=True)
class Replayed:
    """An Idempotency-Key that already ran this request: its run, ended (or, for a
    background run, in whatever state it is)."""

    run: RunRecord


def _retryable(run: RunRecord) -> bool:
    """Ended with a failure that an Idempotency-Key does not keep as its answer."""
    return (
        not run.active
        and run.error is not None
        and run.error.get("error_code") in RETRYABLE_ERROR_CODES
    )


_IDEMPOTENT_ATTEMPTS = 4


def _accept(request: InvocationRequest, kind: RunKind) -> InteractionStarted | Replayed:
    """Record the run (``interaction_begin``), or the original run of a repeated
    Idempotency-Key; a key whose run failed retryably (RETRYABLE_ERROR_CODES) is taken
    over by this request, which runs again."""
    fingerprint = prompt_fingerprint(request.prompt)
    request_fields_add(**fingerprint)
    claim = _idempotency_claim(request, kind)
    if request.webhook is not None:
        webhook_secret_require(request.principal_arn)
    for _ in range(_IDEMPOTENT_ATTEMPTS):
        try:
            with timed("persistence"):
                started = interaction_begin(
                    session_id=request.session_id,
                    request_id=request.request_id,
                    prompt=request.prompt,
                    principal_arn=request.principal_arn,
                    kind=kind,
                    on_conflict=request.on_conflict,
                    idempotency=claim,
                    budget=turn_budget_of(kind),
                    webhook=request.webhook,
                )
        except IdempotentReplay as replay:
            if kind == "invoke":
                run = run_wait_ended(replay.request_id)
            else:
                found = run_find(replay.request_id)
                if found is None:  # pragma: no cover - written in one transaction with the key
                    raise StorageUnavailable(
                        "The Idempotency-Key's invocation is missing."
                    ) from None
                run = found
            if claim is not None and _retryable(run):
                logger.info(
                    "Idempotency-Key retried after a retryable failure",
                    extra={"failed_request_id": run.request_id, "kind": kind},
                )
                claim = replace(claim, supersedes=run.request_id)
                continue
            logger.info(
                "invocation replayed",
                extra={"replayed_request_id": replay.request_id, "kind": kind},
            )
            return Replayed(run)
        break
    else:
        raise StorageUnavailable("The Idempotency-Key kept changing hands; retry.")
    request_session_bind(started.session_id)
    logger.info(
        "invocation accepted",
        extra={
            **fingerprint,
            "kind": kind,
            "streaming": request.streaming,
            "new_session": started.new_session,
            "queued_after": started.queued_after,
        },
    )
    return started


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


def run_expire(run: RunRecord, error: ApplicationError | None = None) -> None:
    """End an active run whose worker is gone as failed: WORKER_LOST (its deadline passed
    with no outcome), or ``error``."""
    if error is None:
        logger.error("Run %s passed its deadline without an outcome", run.request_id)
        if run.status == "queued":
            error = WorkerLost(
                "No worker started the run before its deadline (the workers were busy or "
                "failing); submit it again.",
            )
    began = time.monotonic() - max(0, clock_ms() - (run.started_at or run.created_at)) / 1000
    log = None  # a synchronous run has no stored events
    if run.kind == "invocation":
        log = RunEventLog(run, first=run_last_event_number(run.request_id) + 1)
    _record_failure(run.started(), error or WorkerLost(), began, log=log)


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
            f"The run's worker failed {failures} times; the last time: {reason}.",
            details=details,
        )
    else:
        error = WorkerLost(
            "The run's worker stopped before the run ended (it timed out or crashed).",
            details=details,
        )
    logger.error("Run %s ended by its worker: %s", request_id, error.message)
    run_expire(run, error)


def _turn_wait(started: InteractionStarted, began: float) -> None:
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
            raise _record_failure(started, error, began)
        time.sleep(settings.RUN_POLL_SECONDS)


def _accept_in_turn(request: InvocationRequest) -> tuple[InteractionStarted, float] | Replayed:
    """Accept a synchronous run and, when it was queued behind another, wait for its turn:
    the run holding its session, and when its deadline starts (its turn: only where no
    gateway bounds the request may it wait, see ``turn_budget_of``); or the original of a repeated
    Idempotency-Key. Raises what ``_accept`` raises, and RuntimeTimeout when the turn did
    not come in time (recorded so)."""
    accepted = _accept(request, "invoke")
    if isinstance(accepted, Replayed):
        return accepted
    began = time.monotonic()
    if accepted.queued_after is not None:
        _turn_wait(accepted, began)
        began = time.monotonic()  # its deadline runs from its turn
    return accepted, began


def invocation_run(request: InvocationRequest) -> dict[str, Any] | Replayed:
    """Run one invocation to the end: the InvokeResponse (or, for a repeated
    Idempotency-Key, the original run). Raises SessionNotFound, SessionExpired,
    SessionBusy, IdempotencyKeyReused, StorageUnavailable (nothing was run) and the
    runtime's errors (the failure is recorded in the session first)."""
    accepted = _accept_in_turn(request)
    if isinstance(accepted, Replayed):
        return accepted
    started, began = accepted
    run, call = _open(started, began)
    try:
        with timed("runtime"):
            data = run.complete()
    except Exception as exc:
        _record_failure(started, exc, began, call=call, stats=run.stats)
        raise
    finally:
        run.close()
    call.end("success", run.stats, None)
    return _record_success(started, data, run, began)


def invocation_stream(request: InvocationRequest) -> InvocationEvents | Replayed:
    """Start an invocation (errors until the runtime is connected are raised, so they can
    be HTTP errors) and return its events: ``start``, the runtime's ``chunk``s, then one
    ``complete`` (the InvokeResponse) or one ``error`` (the error shape). A client that
    goes away mid-stream leaves the interaction recorded as ``cancelled``."""
    accepted = _accept_in_turn(request)
    if isinstance(accepted, Replayed):
        return accepted
    started, began = accepted
    run, call = _open(started, began)
    return InvocationEvents(started, run, began, call)


def invocation_submit(request: InvocationRequest) -> tuple[RunRecord, bool]:
    """Accept a background run and hand it to a worker: the run as accepted (queued), and
    whether it is an Idempotency-Key replay of an earlier one. Raises what
    ``invocation_run`` raises before running, and RuntimeUnavailable when the workers are
    saturated."""
    from invocations.background import run_capacity_check, run_dispatch

    run_capacity_check()
    accepted = _accept(request, "invocation")
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
        _record_failure(run.started(), exc, time.monotonic(), log=RunEventLog(run))
        raise
    return run, False


def invocation_execute(request_id: str) -> bool:
    """A worker's part of a background run: wait for its turn, run it on the runtime,
    store its events as they arrive, stop when cancelled, record its outcome. True when,
    on Lambda, the run is still waiting for its turn and must wait in a fresh invocation
    (one that has the run's whole deadline ahead of it)."""
    run = run_find(request_id)
    if run is None or not run.active:
        return False
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
            _lambda_wait_seconds()
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
        _record_failure(started, exc, began, log=log)
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


class InvocationEvents:
    """A started run's events. ``close()`` ends the run whether or not the events were
    read (a generator that never started would never run its clean-up), so the server
    closing the response is enough to close the runtime socket and record the outcome."""

    def __init__(
        self,
        started: InteractionStarted,
        run: RuntimeRun,
        began: float,
        call: RuntimeCall,
        *,
        idle_seconds: float | None = None,
        log: RunEventLog | None = None,
    ) -> None:
        self._started, self._run, self._began, self._call = started, run, began, call
        # A silent runtime yields every idle_seconds: a background worker checks for
        # cancellation then; a stream sends a heartbeat, unless API Gateway buffers it
        # (RESPONSE_MODE "buffered"), where a heartbeat would only lengthen the body.
        if idle_seconds is None and settings.RESPONSE_MODE != "buffered":
            idle_seconds = settings.SSE_HEARTBEAT_SECONDS
        self._idle_seconds = idle_seconds
        self._log = log
        self._recorded = False
        # Why the run ends if it is closed before its outcome: the client went away,
        # unless ``cancel`` or ``fail`` says otherwise.
        self._ended_by: ApplicationError = RunCancelled(
            "The client closed the stream before the run ended."
        )
        self._ended_status: InteractionStatus | None = "cancelled"
        self._events = self._generate()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self._events

    def close(self) -> None:
        self._events.close()
        self._finish()

    def cancel(self) -> None:
        """Stop the run now (DELETE): close the runtime connection, record ``cancelled``."""
        self._ended_by, self._ended_status = RunCancelled(), "cancelled"
        self._run.abort()
        self.close()

    def fail(self, error: ApplicationError) -> None:
        """Stop the run now and record it failed with ``error`` (e.g. its events could not
        be stored)."""
        self._ended_by, self._ended_status = error, None
        self._run.abort()
        self.close()

    def _finish(self) -> None:
        self._run.close()
        if not self._recorded:
            self._recorded = True
            logger.info(
                "Run %s ended before its outcome: %s",
                self._started.request_id,
                (self._ended_by.message),
            )
            _record_failure(
                self._started,
                self._ended_by,
                self._began,
                log=self._log,
                status=self._ended_status,
                call=self._call,
                stats=self._run.stats,
            )

    def _generate(self) -> Generator[StreamEvent]:
        started, run, began = self._started, self._run, self._began
        try:
            yield StreamEvent(
                "start", {"request_id": started.request_id, "session_id": started.session_id}
            )
            try:
                for event in run.chunks_then_complete(idle_seconds=self._idle_seconds):
                    if event is None:
                        yield StreamEvent("heartbeat", {})
                        continue
                    if isinstance(event, ChunkData):
                        yield StreamEvent("chunk", event.model_dump(exclude_none=True))
                        continue
                    self._recorded = True
                    self._call.end("success", run.stats, None)
                    yield StreamEvent(
                        "complete", _record_success(started, event, run, began, log=self._log)
                    )
                    return
                raise InvalidRuntimeResponse(
                    "The runtime ended the run without a complete message."
                )
            except Exception as exc:  # the stream must end with its one error event
                self._recorded = True
                error = _record_failure(
                    started, exc, began, log=self._log, call=self._call, stats=run.stats
                )
                yield StreamEvent(
                    "error",
                    error_body(
                        request_id=started.request_id,
                        error_code=error.error_code,
                        message=error.message,
                        details=error.details,
                    ),
                )
        finally:
            self._finish()


def _stored(response: dict[str, Any]) -> dict[str, Any]:
    """What the session history keeps of a response (all of it but the per-request ids,
    which the interaction record holds itself)."""
    return {k: v for k, v in response.items() if k not in ("request_id", "session_id", "warnings")}


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
        _record_failure(
            run.started(),
            RunCancelled("The run was cancelled before it started."),
            time.monotonic(),
            log=log,
            status="cancelled",
        )
    return run_wait_ended(request_id, timeout=_CANCEL_WAIT_SECONDS)


_CANCEL_WAIT_SECONDS = 3.0
_LAMBDA_MARGIN_SECONDS = 10.0


def _lambda_wait_seconds() -> float:
    """How long a Lambda task may wait for its turn and still finish its run in time."""
    return max(
        1.0,
        settings.RUN_TASK_TIMEOUT_SECONDS
        - settings.AGENTCORE_DEADLINE_SECONDS
        - _LAMBDA_MARGIN_SECONDS,
    )


TERMINAL_EVENTS = frozenset({"complete", "error"})


@dataclass(frozen=True)
class FollowPaused:
    """Following ended before the run did, after REQUEST_HOLD_SECONDS (behind API Gateway,
    which gives up on a request after 29 s): resume after event ``after``."""

    after: int


def invocation_events(
    *, request_id: str, principal_arn: str, after: int, follow: bool
) -> Iterator[StoredEvent | FollowPaused | None]:
    """The caller's background run's stored events numbered above ``after``, in order;
    with ``follow``, then its live events as they are stored, until its last one (a
    ``None`` after each SSE_HEARTBEAT_SECONDS of silence). Behind API Gateway
    (RESPONSE_MODE=buffered) following stops after REQUEST_HOLD_SECONDS with a
    FollowPaused. Ownership is checked before the first event. Raises
    InvocationNotFound, StorageUnavailable."""
    run_get(request_id=request_id, principal_arn=principal_arn)
    hold_until = (
        time.monotonic() + settings.REQUEST_HOLD_SECONDS
        if settings.RESPONSE_MODE == "buffered"
        else None
    )
    return _events_follow(request_id, after, follow, hold_until)


def _events_follow(
    request_id: str, after: int, follow: bool, hold_until: float | None
) -> Iterator[StoredEvent | FollowPaused | None]:
    quiet_since = time.monotonic()
    while True:
        events = run_events_after(request_id, after)
        for event in events:
            yield event
            after = event.number
            if event.event in TERMINAL_EVENTS:
                return
        if events:
            quiet_since = time.monotonic()
            continue  # there may be more than one page
        if not follow:
            return
        run = run_find(request_id)
        if run is None:
            return
        if run.overdue:
            run_expire(run)
            continue
        if not run.active:
            # The last event is stored with the outcome: read once more, then stop.
            for event in run_events_after(request_id, after):
                yield event
            return
        if hold_until is not None and time.monotonic() + settings.RUN_POLL_SECONDS >= hold_until:
            yield FollowPaused(after)
            return
        if hold_until is None and time.monotonic() - quiet_since >= settings.SSE_HEARTBEAT_SECONDS:
            # (A buffered response gets no heartbeat: it would only lengthen the body.)
            quiet_since = time.monotonic()
            yield None
        time.sleep(settings.RUN_POLL_SECONDS)
