"""POST /api/v1/invoke: a disruption prompt in, SkyMarshal's assessment out."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from invocations.serializers import InvokeRequestSerializer, InvokeResponseSerializer
from invocations.services import invocation_run, invocation_stream
from invocations.sse import SseStream
from skymarshal_api.apis import AuthenticatedApi
from skymarshal_api.authentication import principal_of
from skymarshal_api.errors import (
    InvalidJson,
    InvalidRequest,
    InvalidRuntimeResponse,
    LengthRequired,
    PayloadTooLarge,
    RuntimeConnectionFailed,
    RuntimeFailed,
    RuntimeTimeout,
    RuntimeUnavailable,
    SessionExpired,
    SessionNotFound,
    StorageUnavailable,
    UnsupportedMediaType,
)
from skymarshal_api.request_id import request_id_of
from skymarshal_api.schema import (
    AUTHENTICATED_ERRORS,
    EXAMPLE_PROMPT,
    EXAMPLE_RESPONSE,
    EXAMPLE_STREAM,
    INTERNAL_ERROR_RESPONSE,
    SSE_EVENT_SCHEMA,
    error_response,
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
            "Gateway (Zappa) the stream arrives buffered, as one valid SSE body."
        ),
        request=InvokeRequestSerializer,
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
            404: error_response(
                "SESSION_NOT_FOUND: session_id names a session of another caller.",
                SessionNotFound(),
            ),
            409: error_response(
                "SESSION_EXPIRED: the session has been idle too long; omit session_id to start "
                "a new one.",
                SessionExpired(
                    "The session has been idle for more than 30 minutes; start a new session by "
                    "omitting session_id.",
                    details={
                        "session_id": "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b",
                        "last_interaction_at": 1795423800000,
                    },
                ),
            ),
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
                    'Unsupported media type "text/plain" in request. Send Content-Type: '
                    "application/json."
                ),
            ),
            **INTERNAL_ERROR_RESPONSE,
            502: error_response(
                "CONNECTION_FAILED, RUNTIME_ERROR or INVALID_RUNTIME_RESPONSE: the runtime could "
                "not be reached, reported an error or answered something unreadable.",
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
                "TIMEOUT: the run passed its deadline (AGENTCORE_DEADLINE_SECONDS).",
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
        arguments = {
            "prompt": body.validated_data["prompt"],
            "session_id": body.validated_data.get("session_id"),
            "principal_arn": principal_of(request).arn,
            "request_id": request_id_of(request),
        }
        wants_stream = body.validated_data["streaming"] or "text/event-stream" in request.META.get(
            "HTTP_ACCEPT", ""
        )
        if not wants_stream:
            return Response(invocation_run(**arguments))
        response = StreamingHttpResponse(
            SseStream(invocation_stream(**arguments)), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
