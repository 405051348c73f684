"""What a request leaves for the on-call engineer: its correlation keys on every log line
(``trace_id`` among them: the W3C trace id of ``skymarshal_api.telemetry.trace_context``), one
sanitized ``request`` line when it ends, its metrics (EMF, with the trace id) and its X-Ray
segment in the same trace.

``ObservabilityMiddleware`` opens a request's observation and ends it when the response is
done: at once for a plain response, when the stream is closed for a streamed one (the
WSGI server closes it when the stream ends or the client goes away). The other modules
report into the current observation:

- ``request_principal_bind`` / ``request_session_bind``: who calls, about which session;
- ``request_error_record``: the error_code of the error the request answers with;
- ``runtime_invocation_record``: a runtime call's outcome, duration, time to first chunk;
- ``dynamodb_client_instrument``: per-call latency and failures of a DynamoDB client
  (botocore's before-call / after-call / after-call-error events), and a subsegment each;
- ``rate_limit_rejection_record``.

Metrics (namespace METRICS_NAMESPACE, dimension ``service`` and METRICS_DIMENSIONS on all):

==========================  ===========  ==========================
metric                      unit         dimensions
==========================  ===========  ==========================
Requests, Latency           Count, ms    route
Errors                      Count        error_code
RuntimeInvocations,         Count, ms    outcome (success, failure,
RuntimeDuration                          timeout, cancelled)
TimeToFirstChunk            ms           (none beyond service)
DynamoDbCalls,              Count, ms    operation
DynamoDbLatency
DynamoDbFailures            Count        operation, error_code
DynamoDbRetries             Count        operation: botocore's retries
                                         of a call (RetryAttempts)
DynamoDbConflicts           Count        operation: transactions
                                         cancelled by a conflicting
                                         write (TransactionConflict)
RateLimitRejections         Count        scope
SessionWriteFailures        Count        (none beyond service)
RuntimeMessagesSkipped      Count        (none beyond service): runtime
                                         messages of an unknown type
==========================  ===========  ==========================
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakSet

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

from skymarshal_api.telemetry.logs import log_keys_bind, log_keys_clear
from skymarshal_api.telemetry.metrics import (
    COUNT,
    MILLISECONDS,
    metric_record,
    metric_sample,
    metrics_collect_flush,
    metrics_collect_start,
    metrics_record,
)
from skymarshal_api.telemetry.request_id import REQUEST_ID_HEADER, new_request_id
from skymarshal_api.telemetry.timing import (
    instrumentation_timed,
    server_timing_header,
    timing_spans,
    timing_start,
    timing_stop,
)
from skymarshal_api.telemetry.trace_context import (
    TraceContext,
    trace_context_current,
    trace_context_of,
    trace_context_use,
)
from skymarshal_api.telemetry.tracing import (
    RequestTrace,
    Subsegment,
    trace_request_begin,
    trace_request_end,
    trace_subsegment_begin,
)

logger = logging.getLogger("skymarshal_api.requests")

_UNMATCHED_ROUTE = "unmatched"


@dataclass
class RequestObservation:
    request_id: str
    method: str
    path: str
    started: float
    keys: dict[str, str] = field(default_factory=dict)
    route: str = _UNMATCHED_ROUTE
    error_code: str | None = None
    status: int = 200
    fields: dict[str, Any] = field(default_factory=dict)
    trace: RequestTrace | None = None
    trace_context: TraceContext | None = None
    finished: bool = False


_current: ContextVar[RequestObservation | None] = ContextVar("skymarshal_request", default=None)


# --- the request -----------------------------------------------------------------------


def _lambda_ids(meta: dict[str, Any]) -> dict[str, str]:
    """API Gateway's and Lambda's request ids, from what Zappa puts in the WSGI environ:
    ``lambda.event`` (requestContext.requestId) and ``lambda.context`` (aws_request_id)."""
    ids: dict[str, str] = {}
    event = meta.get("lambda.event")
    context = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(context, dict) and isinstance(context.get("requestId"), str):
        ids["apigw_request_id"] = context["requestId"]
    aws_request_id = getattr(meta.get("lambda.context"), "aws_request_id", None)
    if isinstance(aws_request_id, str):
        ids["lambda_request_id"] = aws_request_id
    return ids


@instrumentation_timed()
def request_observe_begin(request: HttpRequest) -> RequestObservation:
    began = time.perf_counter()
    timing_start()  # the span is added when this function returns
    log_keys_clear()
    metrics_collect_start()
    request_id = new_request_id()
    request.request_id = request_id  # type: ignore[attr-defined]
    trace_context = trace_context_of(request.META)
    trace_context_use(trace_context)
    observation = RequestObservation(
        request_id=request_id,
        method=request.method or "GET",
        path=request.path,
        started=began,
        keys={
            "request_id": request_id,
            "trace_id": trace_context.trace_id,
            **_lambda_ids(request.META),
        },
        trace_context=trace_context,
    )
    _current.set(observation)
    log_keys_bind(**observation.keys)
    observation.trace = trace_request_begin(
        method=observation.method, path=observation.path, context=trace_context
    )
    return observation


def request_principal_bind(principal_arn: str) -> None:
    """The authenticated caller, on every later line of this request."""
    _bind("principal", principal_arn)


def request_session_bind(session_id: str) -> None:
    """The session this request is about, on every later line of this request."""
    _bind("session_id", session_id)


def _bind(key: str, value: str) -> None:
    observation = _current.get()
    if observation is not None:
        observation.keys[key] = value
    log_keys_bind(**{key: value})


def request_fields_add(**fields: Any) -> None:
    """Sanitized facts for the request's closing line (e.g. a prompt's fingerprint)."""
    observation = _current.get()
    if observation is not None:
        observation.fields.update(fields)


def request_error_record(error_code: str) -> None:
    """The request answers (or its stream ends) with this error."""
    observation = _current.get()
    if observation is not None:
        observation.error_code = error_code


def _route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    return str(route) if route else _UNMATCHED_ROUTE


def request_observe_end(
    observation: RequestObservation, *, status: int, response_bytes: int | None, streamed: bool
) -> None:
    """The request's closing line, its metrics and the end of its segment (once)."""
    if observation.finished:
        return
    observation.finished = True
    latency_ms = (time.perf_counter() - observation.started) * 1000
    _observe_end(observation, latency_ms, status, response_bytes, streamed)


@instrumentation_timed()
def _observe_end(
    observation: RequestObservation,
    latency_ms: float,
    status: int,
    response_bytes: int | None,
    streamed: bool,
) -> None:
    spans = timing_spans()
    spans.pop("instrumentation", None)
    line: dict[str, Any] = {
        "method": observation.method,
        "path": observation.path,
        "route": observation.route,
        "status": status,
        "duration_ms": round(latency_ms, 2),
        "timings_ms": {name: round(value, 2) for name, value in spans.items()},
        "streamed": streamed,
        **observation.fields,
    }
    if response_bytes is not None:
        line["response_bytes"] = response_bytes
    if observation.error_code:
        line["error_code"] = observation.error_code
    level = logging.ERROR if status >= 500 else logging.INFO
    logger.log(level, "request", extra=line)
    metric_record("Requests", COUNT, 1, route=observation.route)
    metric_record("Latency", MILLISECONDS, latency_ms, route=observation.route)
    if observation.error_code:
        metric_record("Errors", COUNT, 1, error_code=observation.error_code)
    properties = {"request_id": observation.request_id}
    if observation.trace_context is not None:
        properties["trace_id"] = observation.trace_context.trace_id
    metrics_collect_flush(properties)
    trace_request_end(
        observation.trace,
        status=status,
        annotations={
            "request_id": observation.request_id,
            "route": observation.route,
            **({"error_code": observation.error_code} if observation.error_code else {}),
        },
        error=observation.error_code is not None,
    )


def _request_finished(**_: Any) -> None:
    """After the server closed the response (Django's request_finished): a stream's end
    ends its observation; then the context is cleared for the thread's next request."""
    observation = _current.get()
    if observation is not None and not observation.finished:
        request_observe_end(
            observation, status=observation.status, response_bytes=None, streamed=True
        )
    _current.set(None)
    metrics_collect_flush()
    trace_context_use(None)
    log_keys_clear()
    timing_stop()


request_finished.connect(_request_finished, dispatch_uid="skymarshal_observability")


TRACEPARENT_HEADER = "traceparent"


class ObservabilityMiddleware:
    """Gives each request its id (``request.request_id``, echoed in X-Request-ID) and its
    place in a trace (continued from the caller's, returned in ``traceparent`` naming the
    request's own span), reports where its time went in Server-Timing, and observes it
    (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        observation = request_observe_begin(request)
        response = self.get_response(request)
        observation.route = _route_of(request)
        response[REQUEST_ID_HEADER] = observation.request_id
        if observation.trace_context is not None:
            response[TRACEPARENT_HEADER] = observation.trace_context.traceparent()
        observation.status = response.status_code
        if not response.streaming:  # a stream ends in _request_finished, once closed
            request_observe_end(
                observation,
                status=response.status_code,
                response_bytes=len(getattr(response, "content", b"")),
                streamed=False,
            )
        total_ms = (time.perf_counter() - observation.started) * 1000
        response["Server-Timing"] = server_timing_header(total_ms)
        return response


# --- the runtime -----------------------------------------------------------------------


def runtime_subsegment_begin() -> Subsegment:
    """The X-Ray subsegment of a runtime WebSocket call."""
    observation = _current.get()
    subsegment = trace_subsegment_begin(
        observation.trace if observation else None, "agentcore-runtime-websocket"
    )
    return subsegment


def runtime_trace_headers(subsegment: Subsegment | None = None) -> dict[str, str]:
    """The headers that carry the current trace to the runtime, the runtime call's
    subsegment (else this service's span) as the parent; none outside a trace."""
    context = trace_context_current()
    if context is None:
        return {}
    return context.propagation_headers(subsegment.id if subsegment is not None else None)


@instrumentation_timed()
def runtime_invocation_record(
    *,
    outcome: str,
    duration_ms: float,
    first_chunk_ms: float | None,
    chunks: int,
    connect_attempts: int | None,
    error_code: str | None,
) -> None:
    """One runtime call ended: its log line and metrics. ``outcome`` is success, failure,
    timeout or cancelled."""
    line: dict[str, Any] = {
        "outcome": outcome,
        "runtime_duration_ms": round(duration_ms, 2),
        "chunks": chunks,
    }
    if connect_attempts is not None:
        line["connect_attempts"] = connect_attempts
    if first_chunk_ms is not None:
        line["time_to_first_chunk_ms"] = round(first_chunk_ms, 2)
    if error_code:
        line["error_code"] = error_code
    level = logging.INFO if outcome in ("success", "cancelled") else logging.WARNING
    logging.getLogger("skymarshal_api.runtime").log(level, "runtime invocation", extra=line)
    metric_record("RuntimeInvocations", COUNT, 1, outcome=outcome)
    metric_record("RuntimeDuration", MILLISECONDS, duration_ms, outcome=outcome)
    if first_chunk_ms is not None:
        metric_record("TimeToFirstChunk", MILLISECONDS, first_chunk_ms)
    request_fields_add(runtime_outcome=outcome)


def rate_limit_rejection_record(scope: str) -> None:
    metric_record("RateLimitRejections", COUNT, 1, scope=scope)


# --- DynamoDB --------------------------------------------------------------------------

# Answers, not failures: a condition the request set was not met.
_CONDITIONAL_CODES = frozenset({"ConditionalCheckFailedException"})
_instrumented: WeakSet[Any] = WeakSet()
_instrument_lock = threading.Lock()


def dynamodb_client_instrument(client: Any) -> None:
    """Time each call of this botocore DynamoDB client, count its failures, and give it an
    X-Ray subsegment (idempotent: a client is instrumented once)."""
    if client in _instrumented:
        return
    with _instrument_lock:
        if client in _instrumented:
            return
        events = client.meta.events
        events.register("before-call.dynamodb", _dynamodb_before, unique_id="skymarshal-ddb-b")
        events.register("after-call.dynamodb", _dynamodb_after, unique_id="skymarshal-ddb-a")
        events.register(
            "after-call-error.dynamodb", _dynamodb_after_error, unique_id="skymarshal-ddb-e"
        )
        _instrumented.add(client)


@instrumentation_timed()
def _dynamodb_before(*, model: Any, context: dict[str, Any], **_: Any) -> None:
    observation = _current.get()
    context["skymarshal_operation"] = model.name
    context["skymarshal_subsegment"] = trace_subsegment_begin(
        observation.trace if observation else None, f"DynamoDB {model.name}", namespace="aws"
    )
    context["skymarshal_started"] = time.perf_counter()


def _dynamodb_done(
    context: dict[str, Any], error_code: str | None, parsed: dict[str, Any] | None
) -> None:
    ended = time.perf_counter()
    started = context.get("skymarshal_started")
    if started is None:
        return
    _dynamodb_record(context, error_code, (ended - started) * 1000, parsed or {})


@instrumentation_timed()
def _dynamodb_record(
    context: dict[str, Any], error_code: str | None, latency_ms: float, parsed: dict[str, Any]
) -> None:
    operation = str(context.get("skymarshal_operation", "unknown"))
    samples = [
        metric_sample("DynamoDbCalls", COUNT, 1, operation=operation),
        metric_sample("DynamoDbLatency", MILLISECONDS, latency_ms, operation=operation),
    ]
    if error_code:
        samples.append(
            metric_sample("DynamoDbFailures", COUNT, 1, operation=operation, error_code=error_code)
        )
    retries = parsed.get("ResponseMetadata", {}).get("RetryAttempts")
    if isinstance(retries, int) and retries > 0:
        samples.append(metric_sample("DynamoDbRetries", COUNT, retries, operation=operation))
    if "TransactionConflict" in _cancellation_codes(parsed):
        samples.append(metric_sample("DynamoDbConflicts", COUNT, 1, operation=operation))
    metrics_record(*samples)
    subsegment: Subsegment | None = context.get("skymarshal_subsegment")
    if subsegment is not None:
        subsegment.annotate(operation=operation)
        subsegment.end(
            failed=error_code is not None,
            **({"error_code": error_code} if error_code else {}),
        )


def _dynamodb_after(
    *, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
) -> None:
    error_code: str | None = None
    if getattr(http_response, "status_code", 200) >= 300:
        error_code = str(parsed.get("Error", {}).get("Code", "Unknown"))
        if error_code in _CONDITIONAL_CODES or _only_conditions_failed(parsed):
            error_code = None
    _dynamodb_done(context, error_code, parsed)


def _cancellation_codes(parsed: dict[str, Any]) -> set[str]:
    """The reason codes of a cancelled transaction (none for anything else)."""
    reasons = parsed.get("CancellationReasons") or []
    return {str(reason.get("Code")) for reason in reasons if isinstance(reason, dict)}


def _only_conditions_failed(parsed: dict[str, Any]) -> bool:
    """A cancelled transaction whose only reasons are unmet conditions is an answer."""
    codes = _cancellation_codes(parsed)
    return bool(codes) and codes <= {"None", "ConditionalCheckFailed"}


def _dynamodb_after_error(*, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    # A call that failed without an answer (timeouts, connection errors) after its retries.
    _dynamodb_done(context, type(exception).__name__, getattr(exception, "response", None))
