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
from skymarshal_api.request_id import request_id_of
from skymarshal_api.serializers import ErrorResponseSerializer

EXAMPLE_PROMPT = (
    "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault; 210 passengers, "
    "perishable cargo on board."
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorResponseSerializer, description=description)


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
            200: OpenApiResponse(
                InvokeResponseSerializer, description="The assessment (or, streaming, SSE)."
            ),
            400: _error("Invalid body: see details for each field."),
            401: _error("Missing or malformed SigV4 signature."),
            403: _error("A signature that does not verify."),
            404: _error("session_id names a session of another caller (SESSION_NOT_FOUND)."),
            409: _error("The session has expired (SESSION_EXPIRED)."),
            413: _error("The body is larger than 64 KiB."),
            415: _error("The body is not application/json."),
            429: _error("Rate limit exceeded; see Retry-After."),
            502: _error("CONNECTION_FAILED, RUNTIME_ERROR or INVALID_RUNTIME_RESPONSE."),
            503: _error("RUNTIME_UNAVAILABLE (busy; see Retry-After) or STORAGE_UNAVAILABLE."),
            504: _error("TIMEOUT: the run passed its deadline."),
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
