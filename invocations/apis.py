"""POST /api/v1/invoke: a disruption prompt in, SkyMarshal's assessment out; and the
background runs of /api/v1/invocations: create, read, wait for, follow and cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response

from invocations.representation import invocation_representation
from invocations.serializers import (
    InvocationEventsQuerySerializer,
    InvocationRequestSerializer,
    InvocationSerializer,
    InvocationWaitQuerySerializer,
    InvokeRequestSerializer,
    InvokeResponseSerializer,
)
from invocations.services import (
    InvocationRequest,
    Replayed,
    invocation_cancel,
    invocation_events,
    invocation_run,
    invocation_stream,
    invocation_submit,
    invocation_wait,
)
from invocations.sse import SseStream, stored_event_frames
from sessions.run_selectors import RunRecord
from sessions.services import RunWebhook
from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.telemetry.request_id import request_id_of
from skymarshal_api.views import AuthenticatedApi
from skymarshal_api.web.errors import (
    IdempotencyKeyReused,
    InvalidJson,
    InvalidRequest,
    InvalidRuntimeResponse,
    InvocationFinished,
    InvocationNotFound,
    LengthRequired,
    PayloadTooLarge,
    RunDispatchFailed,
    RuntimeAccessDenied,
    RuntimeConnectionFailed,
    RuntimeFailed,
    RuntimeTimeout,
    RuntimeUnavailable,
    SessionBusy,
    SessionExpired,
    SessionNotFound,
    StorageUnavailable,
    UnsupportedMediaType,
)
from skymarshal_api.web.headers import (
    IDEMPOTENCY_KEY_PATTERN,
    LAST_EVENT_ID_PATTERN,
    InvalidHeader,
    idempotency_key_parse,
    last_event_id_parse,
)
from skymarshal_api.web.schema import (
    AUTHENTICATED_ERRORS,
    EXAMPLE_PROMPT,
    EXAMPLE_RESPONSE,
    EXAMPLE_STREAM,
    INTERNAL_ERROR_RESPONSE,
    SSE_EVENT_SCHEMA,
    TRACE_CONTEXT_PARAMETERS,
    error_response,
)
from skymarshal_api.web.validation import UUID4_PATTERN, is_uuid4

IDEMPOTENCY_HEADER = "Idempotency-Key"
_REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Makes a retry safe: 1 to 255 printable ASCII characters (a UUID is a good "
    "key). The same key and body within 24 h start nothing new and answer the original.",
)
# What a request body can be refused for before it is read (middleware and parsers).
_BODY_ERRORS = {
    411: error_response(
        "LENGTH_REQUIRED: a chunked body; send it with Content-Length.", LengthRequired()
    ),
    413: error_response(
        "PAYLOAD_TOO_LARGE: the body is larger than MAX_REQUEST_BODY_BYTES (64 KiB).",
        PayloadTooLarge(
            "The request body may be at most 65536 bytes; got 70000.",
            details={"max_bytes": 65536, "got_bytes": 70000},
        ),
    ),
    415: error_response(
        "UNSUPPORTED_MEDIA_TYPE: the body is not application/json.",
        UnsupportedMediaType(
            'Unsupported media type "text/plain" in request. Send Content-Type: application/json.'
        ),
    ),
}
# Why a session refuses a new run.
_SESSION_REFUSALS = {
    404: error_response(
        "SESSION_NOT_FOUND: session_id names a session of another caller.",
        SessionNotFound(),
    ),
    409: error_response(
        "SESSION_EXPIRED: the session has been idle too long; omit session_id to start "
        "a new one. SESSION_BUSY: another run is active or queued on the session (see "
        'Retry-After), unless the body says `"on_conflict": "enqueue"` and the run can get '
        "its turn in time.",
        SessionExpired(
            "The session has been idle for more than 30 minutes; start a new session by "
            "omitting session_id.",
            details={
                "session_id": "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b",
                "last_interaction_at": 1795423800000,
            },
        ),
        SessionBusy(
            details={
                "session_id": "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b",
                "active_request_id": "5e0c7b1a-2f3d-4c8e-9a6b-7d1e2f3a4b5c",
            }
        ),
    ),
}
IDEMPOTENCY_KEY_REUSED_RESPONSE = error_response(
    "IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used with another body, or on the other "
    "endpoint, in the last 24 hours; use a new key.",
    IdempotencyKeyReused(),
)


class InvokeApi(AuthenticatedApi):
    rate_limit_scope = "invoke"

    @extend_schema(
        operation_id="invoke",
        summary="Assess a disruption",
        description=(
            "Runs SkyMarshal on the prompt and answers with its assessment. With "
            '`"streaming": true` (or `Accept: text/event-stream`) the answer is '
            "`text/event-stream`: a `start` event, a `chunk` event as each agent starts and "
            "finishes, then one `complete` event (the InvokeResponse) or one `error` event "
            "(the error shape); a `: heartbeat` comment every 15 s of silence. Behind API "
            "Gateway (Zappa) the stream arrives buffered, as one valid SSE body. With an "
            "`Idempotency-Key` header, a repeated request (same key and body within 24 h) "
            "answers the original response (`Idempotent-Replayed: true`). For runs longer "
            "than API Gateway's 29 s, use POST /api/v1/invocations. With `webhook`, the run's "
            "events are also POSTed to its URL as signed Standard Webhooks messages (the "
            "WebhookPayload; see POST /api/v1/webhook-secrets and GET "
            "/api/v1/invocations/{request_id}/deliveries)."
        ),
        request=InvokeRequestSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, *TRACE_CONTEXT_PARAMETERS],
        responses={
            (200, "application/json"): OpenApiResponse(
                InvokeResponseSerializer,
                description="The assessment.",
                examples=[OpenApiExample("BA117 delayed 4 hours", value=EXAMPLE_RESPONSE)],
            ),
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description='Streamed (`"streaming": true` or `Accept: text/event-stream`): '
                "Server-Sent Events, described one event at a time.",
                examples=[OpenApiExample("BA117 delayed 4 hours, streamed", value=EXAMPLE_STREAM)],
            ),
            400: error_response(
                "INVALID_REQUEST (see details for each field) or INVALID_JSON.",
                InvalidRequest(
                    "The request is not valid; see details for each field.",
                    details={
                        "fields": {
                            "prompt": [
                                "prompt must be 10 to 10000 characters after removing <, >, {, "
                                "} and control characters; got 7."
                            ]
                        }
                    },
                ),
                InvalidJson(
                    "The request body is not valid JSON: JSON parse error - Expecting "
                    "value: line 1 column 1 (char 0)"
                ),
            ),
            **AUTHENTICATED_ERRORS,
            **_SESSION_REFUSALS,
            **_BODY_ERRORS,
            422: IDEMPOTENCY_KEY_REUSED_RESPONSE,
            **INTERNAL_ERROR_RESPONSE,
            502: error_response(
                "CONNECTION_FAILED, RUNTIME_ERROR or INVALID_RUNTIME_RESPONSE: the runtime could "
                "not be reached, reported an error or answered something unreadable; "
                "RUNTIME_ACCESS_DENIED: the runtime refused this API's credentials (the message "
                "names the IAM action and resource to grant).",
                RuntimeAccessDenied(
                    "The SkyMarshal runtime refused this API's credentials (HTTP 403): grant "
                    "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream on "
                    "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/skymarshal_dev-EXAMPLE123"
                    " to the API's role.",
                    details={
                        "runtime_status": 403,
                        "action": "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream",
                        "resource": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/"
                        "skymarshal_dev-EXAMPLE123",
                    },
                ),
                RuntimeConnectionFailed(
                    "Could not connect to the SkyMarshal runtime after 3 attempts.",
                    details={"attempts": 3},
                ),
                RuntimeFailed(
                    "The SkyMarshal runtime reported an error: "
                    "Agent network failed: simulated fault",
                    details={"runtime_error_code": "AGENT_EXECUTION_FAILED"},
                ),
                InvalidRuntimeResponse("The runtime ended the run without a complete message."),
            ),
            503: error_response(
                "RUNTIME_UNAVAILABLE (busy or throttled) or STORAGE_UNAVAILABLE (DynamoDB); "
                "retry after Retry-After.",
                RuntimeUnavailable(
                    "The SkyMarshal runtime is busy; retry later.", details={"runtime_status": 429}
                ),
                StorageUnavailable(
                    "Session storage could not record the interaction; retry after Retry-After."
                ),
            ),
            504: error_response(
                "TIMEOUT: the run passed its deadline (AGENTCORE_DEADLINE_SECONDS; behind API "
                "Gateway, REQUEST_HOLD_SECONDS: 25 s).",
                RuntimeTimeout(
                    "The SkyMarshal runtime did not finish within 300 s.",
                    details={"deadline_seconds": 300.0},
                ),
            ),
        },
        examples=[
            OpenApiExample("A delay", value={"prompt": EXAMPLE_PROMPT}, request_only=True),
            OpenApiExample(
                "A follow-up, streamed",
                value={
                    "prompt": "What if the delay grows to 6 hours?",
                    "session_id": "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b",
                    "streaming": True,
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        body = InvokeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wants_stream = body.validated_data["streaming"] or "text/event-stream" in request.META.get(
            "HTTP_ACCEPT", ""
        )
        invocation = _invocation_request(request, body.validated_data, streaming=wants_stream)
        if not wants_stream:
            outcome = invocation_run(invocation)
            if isinstance(outcome, Replayed):
                return _replayed(outcome.run)
            return Response(outcome)
        events = invocation_stream(invocation)
        if isinstance(events, Replayed):
            response = _event_stream(_replayed_frames(events.run))
            response[_REPLAYED_HEADER] = "true"
            return response
        return _event_stream(SseStream(events))


def _event_stream(content: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _idempotency_key(request: Request) -> str | None:
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    return None if key is None else idempotency_key_parse(key)


def _invocation_request(
    request: Request, validated: dict[str, Any], *, streaming: bool = False
) -> InvocationRequest:
    return InvocationRequest(
        prompt=validated["prompt"],
        session_id=validated.get("session_id"),
        principal_arn=principal_of(request).arn,
        request_id=request_id_of(request),
        on_conflict=validated["on_conflict"],
        idempotency_key=_idempotency_key(request),
        streaming=streaming,
        webhook=_webhook(validated.get("webhook")),
    )


def _webhook(validated: dict[str, Any] | None) -> RunWebhook | None:
    if validated is None:
        return None
    return RunWebhook(url=validated["url"], events=tuple(validated["events"]))


def _replayed(run: RunRecord) -> Response:
    """What the first request with this Idempotency-Key answered."""
    body = run.response if run.status == "succeeded" else run.error
    return Response(body, status=run.http_status or 200, headers={_REPLAYED_HEADER: "true"})


def _replayed_frames(run: RunRecord) -> Iterator[bytes]:
    start = {"request_id": run.request_id, "session_id": run.session_id}
    final = ("complete", run.response) if run.status == "succeeded" else ("error", run.error)
    for number, (event, data) in enumerate((("start", start), final), start=1):
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        yield f"id: {number}\nevent: {event}\ndata: {text}\n\n".encode()


def _request_id_validate(request_id: str) -> None:
    if not is_uuid4(request_id):
        raise InvocationNotFound()


_EXAMPLE_REQUEST_ID = "5e0c7b1a-2f3d-4c8e-9a6b-7d1e2f3a4b5c"
_EXAMPLE_SESSION_ID = "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b"
# The invocation of the examples, in a session of its own; and a queued one to cancel.
EXAMPLE_INVOCATION_ID = "3f6b2d1c-9e4a-4b7d-8c5e-2a1f0e9d8c7b"
EXAMPLE_INVOCATION_SESSION_ID = "6a1e9c2b-4d7f-4a3e-b5c8-0f2e1d3c4b5a"
EXAMPLE_CANCELLABLE_ID = "7d2f1c3e-8a4b-4e6f-b1c2-3d4e5f6a7b8c"
EXAMPLE_INVOCATION_RESULT = {
    **EXAMPLE_RESPONSE,
    "request_id": EXAMPLE_INVOCATION_ID,
    "session_id": EXAMPLE_INVOCATION_SESSION_ID,
}


def _example_invocation(status: str, **fields: Any) -> dict[str, Any]:
    base = f"/api/v1/invocations/{EXAMPLE_INVOCATION_ID}"
    return {
        "request_id": EXAMPLE_INVOCATION_ID,
        "session_id": EXAMPLE_INVOCATION_SESSION_ID,
        "status": status,
        "created_at": "2026-11-23T10:00:00.000+00:00",
        "started_at": None,
        "finished_at": None,
        "queued_behind": None,
        "cancel_requested": False,
        "result": None,
        "error": None,
        "links": {
            "self": base,
            "events": f"{base}/events",
            "wait": f"{base}/wait",
            "session": f"/api/v1/sessions/{EXAMPLE_INVOCATION_SESSION_ID}",
            "deliveries": f"{base}/deliveries",
        },
        **fields,
    }


_EXAMPLE_QUEUED = OpenApiExample("Accepted", value=_example_invocation("queued"))
_EXAMPLE_SUCCEEDED = OpenApiExample(
    "Succeeded",
    value=_example_invocation(
        "succeeded",
        started_at="2026-11-23T10:00:00.040+00:00",
        finished_at="2026-11-23T10:00:02.310+00:00",
        result=EXAMPLE_INVOCATION_RESULT,
    ),
)
_EXAMPLE_CANCELLED = OpenApiExample(
    "Cancelled",
    value=_example_invocation(
        "cancelled",
        started_at="2026-11-23T10:00:00.040+00:00",
        finished_at="2026-11-23T10:00:01.120+00:00",
        cancel_requested=True,
        error={
            "status": "error",
            "request_id": EXAMPLE_INVOCATION_ID,
            "error_code": "CANCELLED",
            "error_message": "The run was cancelled before it ended.",
            "details": None,
            "timestamp": "2026-11-23T10:00:01.120Z",
        },
    ),
)
_INVOCATION_ERRORS = {
    **AUTHENTICATED_ERRORS,
    404: error_response(
        "INVOCATION_NOT_FOUND: no invocation with this id for the caller (another caller's "
        "is not found either).",
        InvocationNotFound(),
    ),
    503: error_response(
        "STORAGE_UNAVAILABLE: DynamoDB did not answer; retry after Retry-After.",
        StorageUnavailable(
            "Session storage could not read the invocation; retry after Retry-After."
        ),
    ),
    **INTERNAL_ERROR_RESPONSE,
}
_UUID4_SCHEMA = {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN}
_REQUEST_ID = OpenApiParameter(
    "request_id",
    _UUID4_SCHEMA,
    OpenApiParameter.PATH,
    description="The invocation's id (the request_id POST /api/v1/invocations answered).",
    examples=[OpenApiExample("The example invocation", EXAMPLE_INVOCATION_ID)],
)
_CANCELLABLE_REQUEST_ID = OpenApiParameter(
    "request_id",
    _UUID4_SCHEMA,
    OpenApiParameter.PATH,
    description="The invocation's id (the request_id POST /api/v1/invocations answered).",
    examples=[OpenApiExample("A queued invocation", EXAMPLE_CANCELLABLE_ID)],
)


def _invalid(description: str, field: str, message: str) -> OpenApiResponse:
    return error_response(
        description,
        InvalidRequest(
            "The request is not valid; see details for each field.",
            details={"fields": {field: [message]}},
        ),
    )


class InvocationsApi(AuthenticatedApi):
    rate_limit_scope = "invoke"

    @extend_schema(
        operation_id="invocation_create",
        summary="Start a background assessment",
        description=(
            "Accepts the body of /invoke and runs it in the background: 202 with the "
            "invocation and `Location`. Poll it, long-poll `wait`, follow its `events`, or "
            "cancel it with DELETE. With an `Idempotency-Key` header, the same key and body "
            "within 24 h return the original invocation (`Idempotent-Replayed: true`); the "
            "same key with another body is 422. With `webhook`, its URL is sent the run's "
            "events (`run.started`, `run.succeeded`, `run.failed`, `run.timed_out`, "
            "`run.cancelled`) as signed Standard Webhooks messages, retried for about 42 hours "
            "until a 2xx; `links.deliveries` lists them."
        ),
        request=InvocationRequestSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, *TRACE_CONTEXT_PARAMETERS],
        responses={
            202: OpenApiResponse(
                InvocationSerializer,
                description="Accepted: queued for a worker (or behind the session's active "
                "run, with on_conflict enqueue). `Location` names it.",
                examples=[_EXAMPLE_QUEUED],
            ),
            400: error_response(
                "INVALID_REQUEST (see details for each field; `streaming` is refused: read the "
                "events instead), INVALID_JSON, or a malformed Idempotency-Key.",
                InvalidRequest(
                    "The request is not valid; see details for each field.",
                    details={
                        "fields": {
                            "streaming": [
                                "A background invocation is not streamed in its response; "
                                "read GET /api/v1/invocations/{request_id}/events instead, "
                                "or omit streaming."
                            ]
                        }
                    },
                ),
                InvalidHeader(
                    "Idempotency-Key",
                    "must be 1 to 255 printable ASCII characters without spaces (a UUID is a "
                    "good key).",
                ),
                InvalidJson(
                    "The request body is not valid JSON: JSON parse error - Expecting "
                    "value: line 1 column 1 (char 0)"
                ),
            ),
            **AUTHENTICATED_ERRORS,
            **_SESSION_REFUSALS,
            **_BODY_ERRORS,
            422: IDEMPOTENCY_KEY_REUSED_RESPONSE,
            **INTERNAL_ERROR_RESPONSE,
            503: error_response(
                "RUNTIME_UNAVAILABLE (this process holds as many background runs as it can), "
                "RUN_DISPATCH_FAILED (the worker function could not be invoked; the run was "
                "ended) or STORAGE_UNAVAILABLE; retry after Retry-After.",
                RuntimeUnavailable("Too many background runs are in progress; retry later."),
                RunDispatchFailed(details={"reason": "ResourceNotFoundException"}),
                StorageUnavailable(
                    "Session storage could not record the interaction; retry after Retry-After."
                ),
            ),
        },
        examples=[OpenApiExample("A delay", value={"prompt": EXAMPLE_PROMPT}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        body = InvocationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run, replayed = invocation_submit(_invocation_request(request, body.validated_data))
        representation = invocation_representation(run)
        headers = {"Location": representation["links"]["self"]}
        if replayed:
            headers[_REPLAYED_HEADER] = "true"
        return Response(InvocationSerializer(representation).data, status=202, headers=headers)


class InvocationApi(AuthenticatedApi):
    @extend_schema(
        operation_id="invocation_get",
        summary="A background assessment",
        description="Its status and timings; when it has succeeded, the InvokeResponse.",
        parameters=[_REQUEST_ID],
        responses={
            200: OpenApiResponse(
                InvocationSerializer,
                description="The invocation.",
                examples=[_EXAMPLE_QUEUED, _EXAMPLE_SUCCEEDED, _EXAMPLE_CANCELLED],
            ),
            **_INVOCATION_ERRORS,
        },
    )
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        run = invocation_wait(
            request_id=request_id, principal_arn=principal_of(request).arn, timeout=0
        )
        return Response(InvocationSerializer(invocation_representation(run)).data)

    @extend_schema(
        operation_id="invocation_cancel",
        summary="Cancel a background assessment",
        description=(
            "Cancels a queued or running invocation: 200 with status `cancelled` (the "
            "runtime connection is closed), or 202 with `cancel_requested` while its worker "
            "is still stopping. 409 INVOCATION_FINISHED when it has already ended."
        ),
        parameters=[_CANCELLABLE_REQUEST_ID],
        request=None,
        responses={
            200: OpenApiResponse(
                InvocationSerializer,
                description="Cancelled.",
                examples=[_EXAMPLE_CANCELLED],
            ),
            202: OpenApiResponse(
                InvocationSerializer,
                description="Asked to stop; its worker is still stopping (`cancel_requested`).",
            ),
            409: error_response(
                "INVOCATION_FINISHED: it has already ended.",
                InvocationFinished(
                    "The invocation has already ended (succeeded); there is nothing to cancel.",
                    details={"status": "succeeded"},
                ),
            ),
            **_INVOCATION_ERRORS,
        },
    )
    def delete(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        run = invocation_cancel(request_id=request_id, principal_arn=principal_of(request).arn)
        return Response(
            InvocationSerializer(invocation_representation(run)).data,
            status=202 if run.active else 200,
        )


class InvocationWaitApi(AuthenticatedApi):
    @extend_schema(
        operation_id="invocation_wait",
        summary="Wait for a background assessment",
        description=(
            "Answers as soon as the invocation ends, or after `timeout` seconds (at most 25, "
            "under API Gateway's 29 s) with its current status: call it again until the "
            "status is final."
        ),
        parameters=[_REQUEST_ID, InvocationWaitQuerySerializer],
        responses={
            200: OpenApiResponse(
                InvocationSerializer,
                description="The invocation, ended or as it is when the timeout passed.",
                examples=[_EXAMPLE_SUCCEEDED],
            ),
            400: _invalid(
                "INVALID_REQUEST: timeout is not a number from 0 to 25.",
                "timeout",
                "Ensure this value is less than or equal to 25.0.",
            ),
            **_INVOCATION_ERRORS,
        },
    )
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        query = InvocationWaitQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run = invocation_wait(
            request_id=request_id,
            principal_arn=principal_of(request).arn,
            timeout=query.validated_data["timeout"],
        )
        return Response(InvocationSerializer(invocation_representation(run)).data)


class InvocationEventsApi(AuthenticatedApi):
    @extend_schema(
        operation_id="invocation_events",
        summary="Follow a background assessment's events",
        description=(
            "`text/event-stream` of the invocation's events from the start, or after "
            "`Last-Event-ID` (header) / `last_event_id`: `start`, a `chunk` as each agent "
            "starts and finishes, then one `complete` (the InvokeResponse) or one `error`. "
            "Each event's `id` is its number; reconnecting with it loses and repeats "
            "nothing. With `follow=false` the stored events are sent and the stream ends "
            "(use it behind API Gateway, which buffers streams)."
        ),
        parameters=[
            _REQUEST_ID,
            InvocationEventsQuerySerializer,
            OpenApiParameter(
                "Last-Event-ID",
                {"type": "string", "pattern": LAST_EVENT_ID_PATTERN, "example": "7"},
                OpenApiParameter.HEADER,
                description="Resume after this event: its id, 1 to 18 ASCII digits.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description="The events (Server-Sent Events), described one event at a time.",
                examples=[OpenApiExample("BA117 delayed 4 hours", value=EXAMPLE_STREAM)],
            ),
            400: error_response(
                "INVALID_REQUEST: Last-Event-ID (or last_event_id) is not a number, or follow "
                "is neither true nor false.",
                InvalidHeader(
                    "Last-Event-ID",
                    "must be the id of an event this stream sent: 1 to 18 ASCII digits.",
                ),
            ),
            **_INVOCATION_ERRORS,
        },
    )
    def get(self, request: Request, request_id: str) -> StreamingHttpResponse:
        _request_id_validate(request_id)
        query = InvocationEventsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data.get("last_event_id")
        header = request.META.get("HTTP_LAST_EVENT_ID")
        if header is not None:
            after = max(after or 0, last_event_id_parse(header))
        events = invocation_events(
            request_id=request_id,
            principal_arn=principal_of(request).arn,
            after=after or 0,
            follow=query.validated_data["follow"],
        )
        return _event_stream(stored_event_frames(events))
