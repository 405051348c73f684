"""POST /api/v1/invoke: a disruption prompt in, SkyMarshal's assessment out; and the
background runs of /api/v1/invocations: create, read, wait for, follow and cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from invocations.accept import InvocationRequest, Replayed
from invocations.cancel import invocation_cancel
from invocations.events import invocation_events
from invocations.execute import invocation_run, invocation_stream, invocation_submit
from invocations.openapi import (
    INVOCATION_DELETE,
    INVOCATION_EVENTS_GET,
    INVOCATION_GET,
    INVOCATION_WAIT_GET,
    INVOCATIONS_POST,
    INVOKE_POST,
)
from invocations.representation import invocation_representation
from invocations.serializers import (
    InvocationEventsQuerySerializer,
    InvocationRequestSerializer,
    InvocationSerializer,
    InvocationWaitQuerySerializer,
    InvokeRequestSerializer,
)
from invocations.sse import SseStream, stored_event_frames
from invocations.wait import invocation_wait
from sessions.run_selectors import RunRecord
from sessions.services import RunWebhook
from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.telemetry.request_id import request_id_of
from skymarshal_api.views import AuthenticatedApi, query_validated
from skymarshal_api.web.errors import (
    InvocationNotFound,
)
from skymarshal_api.web.headers import (
    idempotency_key_parse,
    last_event_id_parse,
)
from skymarshal_api.web.validation import is_uuid4

_REPLAYED_HEADER = "Idempotent-Replayed"


class InvokeApi(AuthenticatedApi):
    rate_limit_scope = "invoke"

    @INVOKE_POST
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


class InvocationsApi(AuthenticatedApi):
    rate_limit_scope = "invoke"

    @INVOCATIONS_POST
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
    rate_limit_beside_reads = True  # a read that answers at once

    @INVOCATION_GET
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        run = invocation_wait(
            request_id=request_id, principal_arn=principal_of(request).arn, timeout=0
        )
        return Response(InvocationSerializer(invocation_representation(run)).data)

    @INVOCATION_DELETE
    def delete(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        run = invocation_cancel(request_id=request_id, principal_arn=principal_of(request).arn)
        return Response(
            InvocationSerializer(invocation_representation(run)).data,
            status=202 if run.active else 200,
        )


class InvocationWaitApi(AuthenticatedApi):
    @INVOCATION_WAIT_GET
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        query = query_validated(InvocationWaitQuerySerializer, request)
        run = invocation_wait(
            request_id=request_id,
            principal_arn=principal_of(request).arn,
            timeout=query["timeout"],
        )
        return Response(InvocationSerializer(invocation_representation(run)).data)


class InvocationEventsApi(AuthenticatedApi):
    @INVOCATION_EVENTS_GET
    def get(self, request: Request, request_id: str) -> StreamingHttpResponse:
        _request_id_validate(request_id)
        query = query_validated(InvocationEventsQuerySerializer, request)
        after = query.get("last_event_id")
        header = request.META.get("HTTP_LAST_EVENT_ID")
        if header is not None:
            after = max(after or 0, last_event_id_parse(header))
        events = invocation_events(
            request_id=request_id,
            principal_arn=principal_of(request).arn,
            after=after or 0,
            follow=query["follow"],
        )
        return _event_stream(stored_event_frames(events))
