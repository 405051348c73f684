"""A started run's events as they come from the runtime, ending with its one outcome event;
closing them ends the run, read or not."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator

from django.conf import settings

from invocations.outcome import (
    RunEventLog,
    RuntimeCall,
    StreamEvent,
    record_failure,
    record_success,
)
from invocations.runtime_client import RuntimeRun
from invocations.wire import ChunkData
from sessions.services import InteractionStarted, InteractionStatus
from skymarshal_api.web.errors import (
    ApplicationError,
    InvalidRuntimeResponse,
    RunCancelled,
    error_body,
)

logger = logging.getLogger(__name__)


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
            record_failure(
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
                        "complete", record_success(started, event, run, began, log=self._log)
                    )
                    return
                raise InvalidRuntimeResponse(
                    "The runtime ended the run without a complete message."
                )
            except Exception as exc:  # the stream must end with its one error event
                self._recorded = True
                error = record_failure(
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
