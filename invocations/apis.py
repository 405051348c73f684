"""POST /api/v1/invoke: a disruption prompt in, SkyMarshal's assessment out; and the
background runs of /api/v1/invocations: create, read, wait for, follow and cancel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response

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
    run_wait_ended,
)
from invocations.sse import SseStream, stored_event_frames
from sessions.run_selectors import RunRecord, run_get
from skymarshal_api.apis import AuthenticatedApi
from skymarshal_api.authentication import principal_of
from skymarshal_api.errors import InvalidRequest
from skymarshal_api.request_id import request_id_of
from skymarshal_api.serializers import ErrorResponseSerializer
from skymarshal_api.validation import is_uuid4

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_REPLAYED_HEADER = "Idempotent-Replayed"

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
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest(
            f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters without "
            "spaces (a UUID is a good key).",
            details={"header": IDEMPOTENCY_HEADER},
        )
    return str(key)


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
    )


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


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def invocation_representation(run: RunRecord) -> dict[str, Any]:
    this = reverse("invocation", args=[run.request_id])
    return {
        "request_id": run.request_id,
        "session_id": run.session_id,
        "status": run.status,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "queued_behind": run.after if run.status == "queued" else None,
        "cancel_requested": run.cancel_requested,
        "result": run.response if run.status == "succeeded" else None,
        "error": run.error if run.status not in ("queued", "running", "succeeded") else None,
        "links": {
            "self": this,
            "events": reverse("invocation-events", args=[run.request_id]),
            "wait": reverse("invocation-wait", args=[run.request_id]),
            "session": reverse("session-history", args=[run.session_id]),
        },
    }


def _request_id_validate(request_id: str) -> None:
    from skymarshal_api.errors import InvocationNotFound

    if not is_uuid4(request_id):
        raise InvocationNotFound()


_INVOCATION_ERRORS = {
    401: _error("Missing or malformed SigV4 signature."),
    403: _error("A signature that does not verify."),
    404: _error("No invocation with this id for the caller (INVOCATION_NOT_FOUND)."),
    429: _error("Rate limit exceeded; see Retry-After."),
    503: _error("STORAGE_UNAVAILABLE."),
}
_REQUEST_ID = OpenApiParameter(
    "request_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invocation's id."
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
            "same key with another body is 422."
        ),
        request=InvocationRequestSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="1 to 255 printable ASCII characters; a UUID is a good key.",
            )
        ],
        responses={
            202: OpenApiResponse(InvocationSerializer, description="Accepted, queued."),
            400: _error("Invalid body or Idempotency-Key."),
            404: _error("session_id names a session of another caller (SESSION_NOT_FOUND)."),
            409: _error("SESSION_EXPIRED, or SESSION_BUSY (see Retry-After)."),
            413: _error("The body is larger than 64 KiB."),
            415: _error("The body is not application/json."),
            422: _error("The Idempotency-Key was used with another body (IDEMPOTENCY_KEY_REUSED)."),
            503: _error("RUNTIME_UNAVAILABLE (too many runs) or STORAGE_UNAVAILABLE."),
            **{k: v for k, v in _INVOCATION_ERRORS.items() if k in (401, 403, 429)},
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
            200: InvocationSerializer,
            400: _error("Invalid request."),
            **_INVOCATION_ERRORS,
        },
    )
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        run = run_get(request_id=request_id, principal_arn=principal_of(request).arn)
        if run.overdue:
            run = run_wait_ended(request_id, timeout=0)
        return Response(InvocationSerializer(invocation_representation(run)).data)

    @extend_schema(
        operation_id="invocation_cancel",
        summary="Cancel a background assessment",
        description=(
            "Cancels a queued or running invocation: 200 with status `cancelled` (the "
            "runtime connection is closed), or 202 with `cancel_requested` while its worker "
            "is still stopping. 409 INVOCATION_FINISHED when it has already ended."
        ),
        parameters=[_REQUEST_ID],
        request=None,
        responses={
            200: InvocationSerializer,
            202: InvocationSerializer,
            400: _error("Invalid request."),
            409: _error("The invocation has already ended (INVOCATION_FINISHED)."),
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
            200: InvocationSerializer,
            400: _error("Invalid timeout."),
            **_INVOCATION_ERRORS,
        },
    )
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        query = InvocationWaitQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run_get(request_id=request_id, principal_arn=principal_of(request).arn)
        run = run_wait_ended(request_id, timeout=query.validated_data["timeout"])
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
                int,
                OpenApiParameter.HEADER,
                description="Resume after this event.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="The events (Server-Sent Events)."
            ),
            400: _error("Invalid Last-Event-ID or query."),
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
            if not header.isdigit() or len(header) > 12:
                raise InvalidRequest(
                    "Last-Event-ID must be the id of an event this stream sent (a number).",
                    details={"header": "Last-Event-ID"},
                )
            after = max(after or 0, int(header))
        events = invocation_events(
            request_id=request_id,
            principal_arn=principal_of(request).arn,
            after=after or 0,
            follow=query.validated_data["follow"],
        )
        return _event_stream(stored_event_frames(events))
