"""Invoking SkyMarshal: record the interaction, run it on the runtime, record the outcome.

Every accepted invocation leaves a record in the sessions table (written before the
runtime is called, completed on every outcome), or, if DynamoDB fails at the end, a
replay record in the log and a warning in the response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from invocations.runtime_client import RunStats, RuntimeRun, runtime_run_open
from invocations.wire import ChunkData, CompleteData
from sessions.services import InteractionStarted, interaction_begin
from sessions.services import interaction_complete as _interaction_complete
from skymarshal_api.errors import (
    ApplicationError,
    InvalidRuntimeResponse,
    RuntimeTimeout,
    as_application_error,
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
        return _interaction_complete(started, **outcome)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _response(
    started: InteractionStarted,
    data: CompleteData,
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
    call: RuntimeCall,
    stats: RunStats | None,
) -> None:
    """Complete the interaction as failed, whatever failed (an unexpected exception is
    recorded as INTERNAL_ERROR and logged with its traceback)."""
    error = as_application_error(exc)
    if error is not exc:
        logger.exception("Invocation %s failed unexpectedly", started.request_id)
    call.failed(error, stats)
    saved = interaction_complete(
        started,
        status="timeout" if isinstance(error, RuntimeTimeout) else "error",
        response=None,
        execution_time_ms=_elapsed_ms(began),
        error_message=f"{error.error_code}: {error.message}",
    )
    if not saved:
        error.details = {**(error.details or {}), "warnings": [UNSAVED_WARNING]}


def _begin(
    *, prompt: str, session_id: str | None, principal_arn: str, request_id: str, streaming: bool
) -> tuple[InteractionStarted, RuntimeRun, float, RuntimeCall]:
    began = time.monotonic()
    fingerprint = prompt_fingerprint(prompt)
    request_fields_add(**fingerprint)
    with timed("persistence"):
        started = interaction_begin(
            session_id=session_id,
            request_id=request_id,
            prompt=prompt,
            principal_arn=principal_arn,
        )
    request_session_bind(started.session_id)
    logger.info(
        "invocation started",
        extra={**fingerprint, "streaming": streaming, "new_session": started.new_session},
    )
    call = RuntimeCall()
    try:
        with timed("runtime"):
            run = runtime_run_open(prompt=prompt, session_id=started.session_id)
    except Exception as exc:
        _record_failure(started, exc, began, call, None)
        raise
    return started, run, began, call


def invocation_run(
    *, prompt: str, session_id: str | None, principal_arn: str, request_id: str
) -> dict[str, Any]:
    """Run one invocation to the end: the InvokeResponse. Raises SessionNotFound,
    SessionExpired, StorageUnavailable (nothing was run) and the runtime's errors (the
    failure is recorded in the session first)."""
    started, run, began, call = _begin(
        prompt=prompt,
        session_id=session_id,
        principal_arn=principal_arn,
        request_id=request_id,
        streaming=False,
    )
    try:
        with timed("runtime"):
            data = run.complete()
    except Exception as exc:
        _record_failure(started, exc, began, call, run.stats)
        raise
    finally:
        run.close()
    call.end("success", run.stats, None)
    return _record_success(started, data, run, began)


def _record_success(
    started: InteractionStarted, data: CompleteData, run: RuntimeRun, began: float
) -> dict[str, Any]:
    """The InvokeResponse, once its interaction is recorded (or logged for replay)."""
    response = _response(started, data, run, execution_time_ms=_elapsed_ms(began))
    if not interaction_complete(
        started,
        status="success",
        response=_stored(response),
        execution_time_ms=response["execution_time_ms"],
    ):
        response["warnings"] = [UNSAVED_WARNING]
    return response


def invocation_stream(
    *, prompt: str, session_id: str | None, principal_arn: str, request_id: str
) -> InvocationEvents:
    """Start an invocation (errors until the runtime is connected are raised, so they can
    be HTTP errors) and return its events: ``start``, the runtime's ``chunk``s, then one
    ``complete`` (the InvokeResponse) or one ``error`` (the error shape). A client that
    goes away mid-stream leaves the interaction recorded as ``cancelled``."""
    started, run, began, call = _begin(
        prompt=prompt,
        session_id=session_id,
        principal_arn=principal_arn,
        request_id=request_id,
        streaming=True,
    )
    return InvocationEvents(started, run, began, call)


class InvocationEvents:
    """A started run's events. ``close()`` ends the run whether or not the events were
    read (a generator that never started would never run its clean-up), so the server
    closing the response is enough to close the runtime socket and record the outcome."""

    def __init__(
        self, started: InteractionStarted, run: RuntimeRun, began: float, call: RuntimeCall
    ) -> None:
        self._started, self._run, self._began, self._call = started, run, began, call
        self._recorded = False
        self._events = self._generate()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self._events

    def close(self) -> None:
        self._events.close()
        self._finish()

    def _finish(self) -> None:
        self._run.close()
        if not self._recorded:
            self._recorded = True
            logger.info("Client left before the run ended: %s", self._started.request_id)
            self._call.end("cancelled", self._run.stats, None)
            interaction_complete(
                self._started,
                status="cancelled",
                response=None,
                execution_time_ms=_elapsed_ms(self._began),
                error_message="The client closed the stream before the run ended.",
            )

    def _generate(self) -> Generator[StreamEvent, None, None]:
        from skymarshal_api.errors import error_body

        started, run, began = self._started, self._run, self._began
        try:
            yield StreamEvent(
                "start", {"request_id": started.request_id, "session_id": started.session_id}
            )
            try:
                for event in run.chunks_then_complete(idle_seconds=settings.SSE_HEARTBEAT_SECONDS):
                    if event is None:
                        yield StreamEvent("heartbeat", {})
                        continue
                    if isinstance(event, ChunkData):
                        yield StreamEvent("chunk", event.model_dump(exclude_none=True))
                        continue
                    self._recorded = True
                    self._call.end("success", run.stats, None)
                    yield StreamEvent("complete", _record_success(started, event, run, began))
                    return
                raise InvalidRuntimeResponse(
                    "The runtime ended the run without a complete message."
                )
            except Exception as exc:  # the stream must end with its one error event
                self._recorded = True
                _record_failure(started, exc, began, self._call, run.stats)
                error = as_application_error(exc)
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
