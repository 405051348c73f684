"""The OpenAPI declarations of invocations/apis.py and invocations/webhook_apis.py: each
operation's schema (its extend_schema), and the examples, parameters and error responses
they document. The views hold only what the endpoints do."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from invocations.serializers import (
    InvocationEventsQuerySerializer,
    InvocationRequestSerializer,
    InvocationSerializer,
    InvocationWaitQuerySerializer,
    InvokeRequestSerializer,
    InvokeResponseSerializer,
)
from invocations.webhook_serializers import (
    WebhookDeliveryListSerializer,
    WebhookDeliverySerializer,
    WebhookSecretCreatedSerializer,
)
from skymarshal_api.web.errors import (
    DeliveryNotFound,
    IdempotencyKeyReused,
    InvalidJson,
    InvalidRequest,
    InvalidRuntimeResponse,
    InvocationFinished,
    InvocationNotFound,
    LengthRequired,
    PayloadTooLarge,
    RedeliveryLimitReached,
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
    TooManyWebhookSecrets,
    UnsupportedMediaType,
)
from skymarshal_api.web.headers import (
    IDEMPOTENCY_KEY_PATTERN,
    LAST_EVENT_ID_PATTERN,
    InvalidHeader,
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
from skymarshal_api.web.schema_annotations import extend_schema
from skymarshal_api.web.validation import UUID4_PATTERN

IDEMPOTENCY_HEADER = "Idempotency-Key"


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Makes a retry safe: 1 to 255 printable ASCII characters (a UUID is a good "
    "key). The same key and body within 24 h start nothing new and answer the original.",
)


# What a request body can be refused for before it is read (middleware and parsers).
BODY_ERRORS = {
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
SESSION_REFUSALS = {
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


EXAMPLE_QUEUED = OpenApiExample("Accepted", value=_example_invocation("queued"))


EXAMPLE_SUCCEEDED = OpenApiExample(
    "Succeeded",
    value=_example_invocation(
        "succeeded",
        started_at="2026-11-23T10:00:00.040+00:00",
        finished_at="2026-11-23T10:00:02.310+00:00",
        result=EXAMPLE_INVOCATION_RESULT,
    ),
)


EXAMPLE_CANCELLED = OpenApiExample(
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


INVOCATION_ERRORS = {
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


UUID4_SCHEMA = {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN}


REQUEST_ID_PARAMETER = OpenApiParameter(
    "request_id",
    UUID4_SCHEMA,
    OpenApiParameter.PATH,
    description="The invocation's id (the request_id POST /api/v1/invocations answered).",
    examples=[OpenApiExample("The example invocation", EXAMPLE_INVOCATION_ID)],
)


CANCELLABLE_REQUEST_ID_PARAMETER = OpenApiParameter(
    "request_id",
    UUID4_SCHEMA,
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


INVOKE_POST = extend_schema(
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
        **SESSION_REFUSALS,
        **BODY_ERRORS,
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
                "The SkyMarshal runtime reported an error: Agent network failed: simulated fault",
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


INVOCATIONS_POST = extend_schema(
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
            examples=[EXAMPLE_QUEUED],
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
        **SESSION_REFUSALS,
        **BODY_ERRORS,
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


INVOCATION_GET = extend_schema(
    operation_id="invocation_get",
    summary="A background assessment",
    description="Its status and timings; when it has succeeded, the InvokeResponse.",
    parameters=[REQUEST_ID_PARAMETER],
    responses={
        200: OpenApiResponse(
            InvocationSerializer,
            description="The invocation.",
            examples=[EXAMPLE_QUEUED, EXAMPLE_SUCCEEDED, EXAMPLE_CANCELLED],
        ),
        **INVOCATION_ERRORS,
    },
)


INVOCATION_DELETE = extend_schema(
    operation_id="invocation_cancel",
    summary="Cancel a background assessment",
    description=(
        "Cancels a queued or running invocation: 200 with status `cancelled` (the "
        "runtime connection is closed), or 202 with `cancel_requested` while its worker "
        "is still stopping. 409 INVOCATION_FINISHED when it has already ended."
    ),
    parameters=[CANCELLABLE_REQUEST_ID_PARAMETER],
    request=None,
    responses={
        200: OpenApiResponse(
            InvocationSerializer,
            description="Cancelled.",
            examples=[EXAMPLE_CANCELLED],
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
        **INVOCATION_ERRORS,
    },
)


INVOCATION_WAIT_GET = extend_schema(
    operation_id="invocation_wait",
    summary="Wait for a background assessment",
    description=(
        "Answers as soon as the invocation ends, or after `timeout` seconds (at most 25, "
        "under API Gateway's 29 s) with its current status: call it again until the "
        "status is final."
    ),
    parameters=[REQUEST_ID_PARAMETER, InvocationWaitQuerySerializer],
    responses={
        200: OpenApiResponse(
            InvocationSerializer,
            description="The invocation, ended or as it is when the timeout passed.",
            examples=[EXAMPLE_SUCCEEDED],
        ),
        400: _invalid(
            "INVALID_REQUEST: timeout is not a number from 0 to 25.",
            "timeout",
            "Ensure this value is less than or equal to 25.0.",
        ),
        **INVOCATION_ERRORS,
    },
)


INVOCATION_EVENTS_GET = extend_schema(
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
        REQUEST_ID_PARAMETER,
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
        **INVOCATION_ERRORS,
    },
)


_EXAMPLE_SECRET_ID = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # noqa: S105 - an id


_EXAMPLE_ROTATED_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"


_EXAMPLE_DELIVERY_ID = "msg_5f0c2d8e1b7a4c3f9e6d2a1b0c8e7f6a"


_EXAMPLE_INVOCATION = dict(EXAMPLE_SUCCEEDED.value)


_EXAMPLE_URL = "https://hooks.example.com/skymarshal"


_EXAMPLE_DELIVERY = {
    "delivery_id": _EXAMPLE_DELIVERY_ID,
    "event": "run.succeeded",
    "url": _EXAMPLE_URL,
    "status": "delivered",
    "created_at": "2026-11-23T10:00:02.330+00:00",
    "next_attempt_at": None,
    "attempts": [
        {
            "attempted_at": "2026-11-23T10:00:02.341+00:00",
            "status_code": 503,
            "latency_ms": 87,
            "error": None,
            "redelivery": False,
        },
        {
            "attempted_at": "2026-11-23T10:00:07.802+00:00",
            "status_code": 200,
            "latency_ms": 64,
            "error": None,
            "redelivery": False,
        },
    ],
    "payload": {
        "type": "run.succeeded",
        "timestamp": "2026-11-23T10:00:02.310+00:00",
        "data": _EXAMPLE_INVOCATION,
    },
}


_DELIVERY_ID = OpenApiParameter(
    "delivery_id",
    {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
    OpenApiParameter.PATH,
    description="The delivery's id (its webhook-id), as GET …/deliveries lists it.",
    examples=[OpenApiExample("A delivery", _EXAMPLE_DELIVERY_ID)],
)


_DELIVERY_ERRORS = {
    **INVOCATION_ERRORS,
    404: error_response(
        "INVOCATION_NOT_FOUND: no run with this id for the caller (of /invocations or of "
        "/invoke; another caller's is not found either).",
        InvocationNotFound(),
    ),
}


WEBHOOK_SECRETS_POST = extend_schema(
    operation_id="webhook_secret_create",
    summary="Create or rotate the caller's webhook signing secret",
    description=(
        "A new signing secret (`whsec_…`, shown only in this response) for the caller's "
        "run webhooks. Each delivery carries `webhook-id`, `webhook-timestamp` and "
        "`webhook-signature` (Standard Webhooks: `v1,<base64 HMAC-SHA256 of "
        "id.timestamp.body>`); verify them with any Standard Webhooks library. Calling it "
        "again rotates: the secrets that were current keep signing for 24 hours, next to "
        "the new one (`webhook-signature` then holds one signature per secret), so a "
        "receiver can switch secrets without losing a delivery. A run's webhook needs one "
        "(400 otherwise)."
    ),
    request=None,
    responses={
        201: OpenApiResponse(
            WebhookSecretCreatedSerializer,
            description="Created; keep `secret`: it is never shown again.",
            examples=[
                OpenApiExample(
                    "A rotation",
                    value={
                        "secret_id": _EXAMPLE_SECRET_ID,
                        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5jn3h1XEWzM=",
                        "created_at": "2026-11-23T10:00:00.000+00:00",
                        "rotated": [
                            {
                                "secret_id": _EXAMPLE_ROTATED_ID,
                                "created_at": "2026-11-01T09:00:00.000+00:00",
                                "expires_at": "2026-11-24T10:00:00.000+00:00",
                            }
                        ],
                    },
                )
            ],
        ),
        **AUTHENTICATED_ERRORS,
        409: error_response(
            "TOO_MANY_WEBHOOK_SECRETS: 5 secrets are valid already (rotated ones stay "
            "valid for 24 hours).",
            TooManyWebhookSecrets(
                details={"valid_secrets": 5, "next_expiry_at": "2026-11-24T08:00:00.000+00:00"}
            ),
        ),
        503: error_response(
            "STORAGE_UNAVAILABLE: DynamoDB did not answer; retry after Retry-After.",
            StorageUnavailable(
                "Session storage could not create the webhook signing secret; retry "
                "after Retry-After."
            ),
        ),
        **INTERNAL_ERROR_RESPONSE,
    },
)


INVOCATION_DELIVERIES_GET = extend_schema(
    operation_id="invocation_deliveries",
    summary="A run's webhook deliveries",
    description=(
        "The webhook deliveries of a run (of /invocations or of /invoke, by its "
        "request_id): one per event sent, each with its `webhook-id`, status, the "
        "payload every attempt sends, and every attempt (time, HTTP status, latency, "
        "error). A delivery is tried at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, "
        "10 h and 24 h (with jitter) until a 2xx; a 410 stops it."
    ),
    parameters=[REQUEST_ID_PARAMETER],
    responses={
        200: OpenApiResponse(
            WebhookDeliveryListSerializer,
            description="The run's deliveries (none when it has no webhook).",
            examples=[
                OpenApiExample(
                    "Delivered on the second attempt",
                    value={
                        "request_id": _EXAMPLE_INVOCATION["request_id"],
                        "deliveries": [_EXAMPLE_DELIVERY],
                    },
                )
            ],
        ),
        **_DELIVERY_ERRORS,
    },
)


INVOCATION_REDELIVER_POST = extend_schema(
    operation_id="invocation_delivery_redeliver",
    summary="Send a webhook delivery again",
    description=(
        "Sends the delivery again now, with the same `webhook-id` and body (a receiver "
        "that deduplicates on `webhook-id` sees it once): one more attempt for a "
        "delivery that had ended (delivered, gone or failed), the next attempt at once "
        "for one still pending. 202: the attempt follows at once; GET …/deliveries "
        "shows it."
    ),
    parameters=[REQUEST_ID_PARAMETER, _DELIVERY_ID],
    request=None,
    responses={
        202: OpenApiResponse(
            WebhookDeliverySerializer,
            description="Scheduled: due now.",
            examples=[
                OpenApiExample(
                    "Due again",
                    value={
                        **_EXAMPLE_DELIVERY,
                        "status": "pending",
                        "next_attempt_at": "2026-11-23T11:00:00.000+00:00",
                    },
                )
            ],
        ),
        **INVOCATION_ERRORS,
        404: error_response(
            "INVOCATION_NOT_FOUND: no run with this id for the caller; "
            "DELIVERY_NOT_FOUND: the run has no delivery with this id.",
            InvocationNotFound(),
            DeliveryNotFound(),
        ),
        409: error_response(
            "REDELIVERY_LIMIT_REACHED: the delivery has had 50 attempts.",
            RedeliveryLimitReached(
                "The delivery has had 50 attempts, the most a delivery may have.",
                details={"attempts": 50},
            ),
        ),
    },
)
