"""The outcome of a run: its events numbered and stored as they come (RunEventLog), the runtime
call observed (RuntimeCall), and the final write of a success or a failure, after which the
run's webhook is told."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from invocations.run_result import RunResult
from invocations.runtime_client import RunStats, RuntimeRun
from invocations.webhooks import webhook_notify_soon
from sessions.complete import interaction_complete
from sessions.run_selectors import RunRecord
from sessions.run_services import run_event_append
from sessions.services import InteractionStarted, InteractionStatus
from skymarshal_api.telemetry.observation import (
    runtime_invocation_record,
    runtime_subsegment_begin,
    runtime_trace_headers,
)
from skymarshal_api.telemetry.timing import timed
from skymarshal_api.web.errors import (
    ApplicationError,
    RuntimeTimeout,
    StorageUnavailable,
    as_application_error,
    error_body,
)

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
                "Run %s ends with %s events not stored", self._run.request_id, len(self._pending)
            )
        return (self._next, event, _json(data))


class RuntimeCall:
    """One call of the runtime, observed from connecting to the end of the run: its X-Ray
    subsegment, then (once) its log line and metrics."""

    def __init__(self) -> None:
        self._began = time.monotonic()
        self._subsegment = runtime_subsegment_begin()
        # The runtime's spans are children of this call's subsegment.
        self.trace_headers = runtime_trace_headers(self._subsegment)
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

    def discard(self) -> None:
        """The call was prepared (its connection opened) but the run never sent: its
        subsegment ends as ``not_run``; no log line or metric counts it."""
        if self._ended:
            return
        self._ended = True
        self._subsegment.end(outcome="not_run")

    def failed(self, error: ApplicationError, stats: RunStats | None) -> None:
        self.end("timeout" if isinstance(error, RuntimeTimeout) else "failure", stats, error)


def interaction_complete_timed(started: InteractionStarted, **outcome: Any) -> bool:
    """sessions' interaction_complete, counted as persistence in Server-Timing; then the
    run's webhook, if it has one, is told."""
    with timed("persistence"):
        saved = interaction_complete(started, **outcome)
    if started.webhook is not None:
        # After the run's final write, off its path (the sweeper covers a sender lost).
        webhook_notify_soon(started.request_id)
    return saved


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _response(
    started: InteractionStarted, data: RunResult, run: RuntimeRun, *, execution_time_ms: int
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


def stored_response(response: dict[str, Any]) -> dict[str, Any]:
    """What the session history keeps of a response (all of it but the per-request ids,
    which the interaction record holds itself)."""
    return {k: v for k, v in response.items() if k not in ("request_id", "session_id", "warnings")}


def record_failure(
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
    saved = interaction_complete_timed(
        started,
        status=status or ("timeout" if isinstance(error, RuntimeTimeout) else "error"),
        response=None,
        execution_time_ms=elapsed_ms(began),
        error_message=f"{error.error_code}: {error.message}",
        run_error=body,
        http_status=error.status_code,
        final_event=log.final("error", body) if log is not None else None,
    )
    if not saved:
        error.details = {**(error.details or {}), "warnings": [UNSAVED_WARNING]}
    return error


def record_success(
    started: InteractionStarted,
    data: RunResult,
    run: RuntimeRun,
    began: float,
    *,
    log: RunEventLog | None = None,
) -> dict[str, Any]:
    """The InvokeResponse, once its interaction is recorded (or logged for replay)."""
    response = _response(started, data, run, execution_time_ms=elapsed_ms(began))
    if not interaction_complete_timed(
        started,
        status="success",
        response=stored_response(response),
        execution_time_ms=response["execution_time_ms"],
        run_response=response,
        http_status=200,
        final_event=log.final("complete", response) if log is not None else None,
    ):
        response["warnings"] = [UNSAVED_WARNING]
    return response
