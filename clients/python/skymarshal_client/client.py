"""The SkyMarshal API client: every operation of openapi.yaml, signed with SigV4.

What every caller would otherwise write by hand:

- **Retries.** 429 and 503 are retried (``max_retries`` times) after ``Retry-After``
  seconds plus a little jitter, so callers told to come back at once do not all come back
  in the same instant; a ``Retry-After`` beyond ``max_retry_delay`` is not waited for (the
  error is raised, with ``retry_after``). Without the header: exponential backoff with full
  jitter, capped by ``max_retry_delay``. Every request is signed anew on each attempt.
- **Idempotency.** ``invoke`` and ``submit`` send an ``Idempotency-Key`` (a new UUID unless
  given), the same on every retry: a retried submit never starts a second run.
- **Tracing.** ``invoke``, ``invoke_stream`` and ``submit`` take ``traceparent`` (and
  ``tracestate``, ``baggage``): the run continues the caller's trace, down to the runtime.
- **Waiting.** ``wait`` repeats long-polls of ``long_poll_seconds`` (under API Gateway's
  29 s integration limit) until the run ends or the overall ``timeout`` passes.
- **Events.** ``events`` follows a run's events and, when the connection drops, reconnects
  with ``Last-Event-ID`` = the last id it handed out: nothing lost, nothing repeated.
  Behind API Gateway, which buffers responses, it asks for ``follow=false`` pages instead.
"""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from botocore.credentials import Credentials

from skymarshal_client.errors import (
    GatewayError,
    SkyMarshalError,
    StreamInterrupted,
    WaitTimeout,
    error_for,
)
from skymarshal_client.models import (
    Event,
    HealthResponse,
    IdentityResponse,
    Invocation,
    InvokeResponse,
    SessionHistory,
    SessionInteraction,
    SessionList,
    SessionSummary,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookSecretCreated,
)
from skymarshal_client.signing import AwsIdentity, SigV4HttpxAuth, is_gateway_url
from skymarshal_client.sse import sse_events

RETRY_STATUSES = frozenset({429, 503})
# API Gateway ends a request after 29 s: each long-poll stays well under it.
GATEWAY_LIMIT_SECONDS = 29.0
MAX_LONG_POLL_SECONDS = 25.0
USER_AGENT = "skymarshal-client/0.1.0"


@dataclass(frozen=True)
class OperationSupport:
    """How the client covers one operation of openapi.yaml (tests/clients/ compares this
    table with the document: a new operation, parameter or body field must appear here)."""

    method: str
    path: str
    functions: tuple[str, ...]
    parameters: frozenset[str] = frozenset()
    body: frozenset[str] = frozenset()


def _trace_headers(
    traceparent: str | None, tracestate: str | None, baggage: str | None
) -> dict[str, str]:
    """The W3C trace headers given: the API and the runtime continue that trace."""
    given = {"traceparent": traceparent, "tracestate": tracestate, "baggage": baggage}
    return {name: value for name, value in given.items() if value}


_TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})
_INVOKE_BODY = frozenset({"prompt", "session_id", "streaming", "on_conflict", "webhook"})
OPERATIONS: dict[str, OperationSupport] = {
    "health_get": OperationSupport("get", "/api/v1/health", ("health",)),
    "identity_get": OperationSupport("get", "/api/v1/identity", ("identity",)),
    "invoke": OperationSupport(
        "post",
        "/api/v1/invoke",
        ("invoke", "invoke_stream"),
        frozenset({"Idempotency-Key", *_TRACE_HEADERS}),
        _INVOKE_BODY,
    ),
    "invocation_create": OperationSupport(
        "post",
        "/api/v1/invocations",
        ("submit",),
        frozenset({"Idempotency-Key", *_TRACE_HEADERS}),
        _INVOKE_BODY,
    ),
    "invocation_get": OperationSupport(
        "get", "/api/v1/invocations/{request_id}", ("get",), frozenset({"request_id"})
    ),
    "invocation_cancel": OperationSupport(
        "delete", "/api/v1/invocations/{request_id}", ("cancel",), frozenset({"request_id"})
    ),
    "invocation_wait": OperationSupport(
        "get",
        "/api/v1/invocations/{request_id}/wait",
        ("wait", "wait_once"),
        frozenset({"request_id", "timeout"}),
    ),
    "invocation_events": OperationSupport(
        "get",
        "/api/v1/invocations/{request_id}/events",
        ("events",),
        frozenset({"request_id", "Last-Event-ID", "last_event_id", "follow"}),
    ),
    "sessions_list": OperationSupport(
        "get",
        "/api/v1/sessions",
        ("sessions", "sessions_page"),
        frozenset({"active", "cursor", "limit"}),
    ),
    "session_history_get": OperationSupport(
        "get",
        "/api/v1/sessions/{session_id}",
        ("session", "session_pages"),
        frozenset({"session_id", "cursor", "limit"}),
    ),
    "invocation_deliveries": OperationSupport(
        "get",
        "/api/v1/invocations/{request_id}/deliveries",
        ("deliveries",),
        frozenset({"request_id"}),
    ),
    "invocation_delivery_redeliver": OperationSupport(
        "post",
        "/api/v1/invocations/{request_id}/deliveries/{delivery_id}/redeliver",
        ("redeliver",),
        frozenset({"request_id", "delivery_id"}),
    ),
    "webhook_secret_create": OperationSupport(
        "post", "/api/v1/webhook-secrets", ("webhook_secret_create",)
    ),
    "schema_get": OperationSupport("get", "/api/v1/schema/", ("schema",), frozenset({"format"})),
}


@dataclass(frozen=True)
class Webhook:
    """A run's webhook: its events are POSTed to ``url``, signed with the caller's secret
    (``Client.webhook_secret_create``); ``events`` None: the run's end, whichever it is."""

    url: str
    events: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"url": self.url}
        if self.events is not None:
            body["events"] = list(self.events)
        return body


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: httpx.Response) -> SkyMarshalError:
    """The exception of an error answer: ours by ``error_code``, API Gateway's own as
    GatewayError."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    retry_after = _retry_after(response)
    if isinstance(body, dict) and "error_code" in body:
        return error_from_body(body, status_code=response.status_code, retry_after=retry_after)
    message = body.get("message") if isinstance(body, dict) else None
    return GatewayError(
        str(message or body or response.reason_phrase),
        status_code=response.status_code,
        retry_after=retry_after,
        body=body,
    )


def error_from_body(
    body: dict[str, Any], *, status_code: int | None = None, retry_after: float | None = None
) -> SkyMarshalError:
    code = str(body.get("error_code") or "")
    details = body.get("details")
    return error_for(code)(
        str(body.get("error_message") or code),
        status_code=status_code,
        error_code=code or None,
        request_id=body.get("request_id"),
        details=details if isinstance(details, dict) else {},
        retry_after=retry_after,
        body=body,
    )


class Client:
    """``Client("https://ID.execute-api.eu-west-1.amazonaws.com/dev", profile="sso-dev")``.

    ``url`` is the stage's base URL (with the stage) or a local server's; the region comes
    from the URL, else ``region``, else the profile. ``credentials`` replaces the chain
    (e.g. the local development key pair).
    """

    def __init__(
        self,
        url: str,
        *,
        profile: str | None = None,
        region: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_delay: float = 30.0,
        long_poll_seconds: float = 20.0,
        follow: bool | None = None,
        poll_interval: float = 1.0,
        max_reconnects: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < long_poll_seconds <= MAX_LONG_POLL_SECONDS:
            raise ValueError(
                f"long_poll_seconds must be in (0, {MAX_LONG_POLL_SECONDS}], "
                f"under API Gateway's {GATEWAY_LIMIT_SECONDS:.0f} s; got {long_poll_seconds}"
            )
        self.url = url.rstrip("/")
        self.identity_source = AwsIdentity(
            url=self.url, profile=profile, region=region, credentials=credentials
        )
        self.region = self.identity_source.region
        self.max_retries = max_retries
        self.max_retry_delay = max_retry_delay
        self.long_poll_seconds = long_poll_seconds
        # API Gateway buffers every response: a followed stream would only arrive at its end.
        self.follow = (not is_gateway_url(self.url)) if follow is None else follow
        self.poll_interval = poll_interval
        self.max_reconnects = max_reconnects
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url,
            auth=SigV4HttpxAuth(self.identity_source),
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    # --- plumbing -----------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None to give up."""
        if attempt >= self.max_retries:
            return None
        after = _retry_after(response)
        if after is None:
            return random.uniform(0, min(self.max_retry_delay, 0.5 * 2**attempt))  # noqa: S311
        if after > self.max_retry_delay:
            return None
        # Never earlier than asked; spread by up to 10 % (at least 0.1 s, at most 1 s).
        jitter = random.uniform(0, min(1.0, max(0.1, after * 0.1)))  # noqa: S311
        return after + jitter

    @contextmanager
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """A response (streamed: read it inside the block) after retries; raises the error
        of an error answer."""
        attempt = 0
        while True:
            request = self._http.build_request(
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            response = self._http.send(request, stream=True)
            if response.status_code in RETRY_STATUSES:
                delay = self._retry_delay(response, attempt)
                if delay is not None:
                    response.close()
                    self._sleep(delay)
                    attempt += 1
                    continue
            try:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                yield response
            finally:
                response.close()
            return

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as response:
            response.read()
            return response.json()

    # --- operations ---------------------------------------------------------------------

    def health(self) -> HealthResponse:
        """GET /api/v1/health (unsigned at the gateway; signed here all the same). An
        unhealthy API answers 503 with the same document, which is returned, not raised."""
        response = self._http.get("/api/v1/health")
        if response.status_code == 503 and "checks" in response.text:
            return HealthResponse.from_dict(response.json())
        if response.status_code >= 400:
            raise error_from_response(response)
        return HealthResponse.from_dict(response.json())

    def identity(self) -> IdentityResponse:
        """GET /api/v1/identity: who the API takes the caller to be."""
        return IdentityResponse.from_dict(self._json("GET", "/api/v1/identity"))

    def schema(self, *, format: str = "json") -> dict[str, Any]:
        """GET /api/v1/schema/: the OpenAPI document."""
        document = self._json("GET", "/api/v1/schema/", params={"format": format})
        return dict(document)

    @staticmethod
    def _invoke_body(
        prompt: str,
        session_id: str | None,
        on_conflict: str | None,
        streaming: bool,
        webhook: Webhook | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": prompt}
        if session_id is not None:
            body["session_id"] = session_id
        if on_conflict is not None:
            body["on_conflict"] = on_conflict
        if streaming:
            body["streaming"] = True
        if webhook is not None:
            body["webhook"] = webhook.as_dict()
        return body

    def invoke(
        self,
        prompt: str,
        *,
        session_id: str | None = None,
        on_conflict: str | None = None,
        idempotency_key: str | None = None,
        webhook: Webhook | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
        baggage: str | None = None,
    ) -> InvokeResponse:
        """POST /api/v1/invoke, buffered: the assessment (and, with ``webhook``, the run's
        events sent to its URL)."""
        body = self._invoke_body(prompt, session_id, on_conflict, False, webhook)
        headers = {
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
            **_trace_headers(traceparent, tracestate, baggage),
        }
        return InvokeResponse.from_dict(
            self._json("POST", "/api/v1/invoke", json=body, headers=headers)
        )

    def invoke_stream(
        self,
        prompt: str,
        *,
        session_id: str | None = None,
        on_conflict: str | None = None,
        idempotency_key: str | None = None,
        webhook: Webhook | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
        baggage: str | None = None,
    ) -> Iterator[Event]:
        """POST /api/v1/invoke streamed: ``start``, the ``chunk``s, then ``complete`` (its
        ``data`` is the InvokeResponse). An ``error`` event is raised as its exception."""
        body = self._invoke_body(prompt, session_id, on_conflict, True, webhook)
        headers = {
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
            "Accept": "text/event-stream",
            **_trace_headers(traceparent, tracestate, baggage),
        }
        with self._request("POST", "/api/v1/invoke", json=body, headers=headers) as response:
            for event in sse_events(response.iter_lines()):
                if event.event == "error" and isinstance(event.data, dict):
                    raise error_from_body(event.data)
                yield event
                if event.final:
                    return

    def submit(
        self,
        prompt: str,
        *,
        session_id: str | None = None,
        on_conflict: str | None = None,
        idempotency_key: str | None = None,
        webhook: Webhook | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
        baggage: str | None = None,
    ) -> Invocation:
        """POST /api/v1/invocations: a background run (queued), with an Idempotency-Key."""
        body = self._invoke_body(prompt, session_id, on_conflict, False, webhook)
        headers = {
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
            **_trace_headers(traceparent, tracestate, baggage),
        }
        return Invocation.from_dict(
            self._json("POST", "/api/v1/invocations", json=body, headers=headers)
        )

    @staticmethod
    def _run_path(request_id: str, suffix: str = "") -> str:
        return f"/api/v1/invocations/{quote(request_id, safe='')}{suffix}"

    def get(self, request_id: str) -> Invocation:
        """GET /api/v1/invocations/{request_id}."""
        return Invocation.from_dict(self._json("GET", self._run_path(request_id)))

    def cancel(self, request_id: str) -> Invocation:
        """DELETE /api/v1/invocations/{request_id} (200 cancelled, or 202 while stopping)."""
        return Invocation.from_dict(self._json("DELETE", self._run_path(request_id)))

    def wait_once(self, request_id: str, *, timeout: float | None = None) -> Invocation:
        """One long-poll: the run once it ends, or its current state after ``timeout`` s."""
        seconds = min(self.long_poll_seconds if timeout is None else timeout, MAX_LONG_POLL_SECONDS)
        return Invocation.from_dict(
            self._json(
                "GET",
                self._run_path(request_id, "/wait"),
                params={"timeout": f"{max(seconds, 0.0):g}"},
                timeout=seconds + 10.0,
            )
        )

    def wait(self, request_id: str, *, timeout: float = 900.0) -> Invocation:
        """Long-polls until the run ends (succeeded, failed, timed_out or cancelled) and
        returns it; raises WaitTimeout after ``timeout`` s overall."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"run {request_id} had not ended after {timeout:g} s; wait again, or cancel",
                    details={"request_id": request_id},
                )
            invocation = self.wait_once(request_id, timeout=min(self.long_poll_seconds, remaining))
            if invocation.final:
                return invocation

    def events(
        self, request_id: str, *, after: int | None = None, follow: bool | None = None
    ) -> Iterator[Event]:
        """The run's events from the start (or after id ``after``) until its final
        ``complete`` or ``error`` event, reconnecting with Last-Event-ID whenever the
        connection drops. An ``error`` event is handed out like any other (the run's
        outcome, not a failure of the stream)."""
        follow = self.follow if follow is None else follow
        last = after
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            params = None if follow else {"follow": "false"}
            progressed = False
            try:
                with self._request(
                    "GET", self._run_path(request_id, "/events"), params=params, headers=headers
                ) as response:
                    for event in sse_events(response.iter_lines()):
                        if event.id is not None and last is not None and event.id <= last:
                            continue
                        if event.id is not None:
                            last = event.id
                        progressed = True
                        yield event
                        if event.final:
                            return
            except httpx.TransportError as exc:
                failures = 0 if progressed else failures + 1
                if failures > self.max_reconnects:
                    raise StreamInterrupted(
                        f"the events of {request_id} broke off after id {last} and "
                        f"{failures} reconnections failed: {exc}",
                        details={"request_id": request_id, "last_event_id": last},
                    ) from exc
                self._sleep(min(self.max_retry_delay, 0.2 * 2 ** max(failures - 1, 0)))
                continue
            # The stream ended without a final event: a page of stored events
            # (follow=false), or a server or proxy that closed it. Ask again after `last`.
            failures = 0
            if not follow or not progressed:
                self._sleep(self.poll_interval)

    def deliveries(self, request_id: str) -> WebhookDeliveryList:
        """GET /api/v1/invocations/{request_id}/deliveries: the run's webhook deliveries
        and their attempts (of /invoke runs too)."""
        return WebhookDeliveryList.from_dict(
            self._json("GET", self._run_path(request_id, "/deliveries"))
        )

    def redeliver(self, request_id: str, delivery_id: str) -> WebhookDelivery:
        """POST …/deliveries/{delivery_id}/redeliver: send it again, same webhook-id."""
        path = self._run_path(request_id, f"/deliveries/{quote(delivery_id, safe='')}/redeliver")
        return WebhookDelivery.from_dict(self._json("POST", path))

    def webhook_secret_create(self) -> WebhookSecretCreated:
        """POST /api/v1/webhook-secrets: a new signing secret (shown this once); the
        current one keeps signing for 24 hours."""
        return WebhookSecretCreated.from_dict(self._json("POST", "/api/v1/webhook-secrets"))

    def sessions_page(
        self, *, active: bool | None = None, limit: int | None = None, cursor: str | None = None
    ) -> SessionList:
        """GET /api/v1/sessions: one page of the caller's sessions."""
        params: dict[str, Any] = {}
        if active is not None:
            params["active"] = "true" if active else "false"
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        return SessionList.from_dict(self._json("GET", "/api/v1/sessions", params=params))

    def sessions(
        self, *, active: bool | None = None, limit: int | None = None
    ) -> Iterator[SessionSummary]:
        """The caller's sessions, most recently used first, every page (``limit`` a page)."""
        cursor: str | None = None
        while True:
            page = self.sessions_page(active=active, limit=limit, cursor=cursor)
            yield from page.sessions
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def session_pages(
        self, session_id: str, *, limit: int | None = None
    ) -> Iterator[SessionHistory]:
        """GET /api/v1/sessions/{session_id}, page after page."""
        cursor: str | None = None
        path = f"/api/v1/sessions/{quote(session_id, safe='')}"
        while True:
            params: dict[str, Any] = {}
            if limit is not None:
                params["limit"] = limit
            if cursor is not None:
                params["cursor"] = cursor
            page = SessionHistory.from_dict(self._json("GET", path, params=params))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def session(self, session_id: str, *, limit: int | None = None) -> SessionHistory:
        """One session with all its interactions (every page read)."""
        first: SessionHistory | None = None
        interactions: list[SessionInteraction] = []
        for page in self.session_pages(session_id, limit=limit):
            first = first or page
            interactions.extend(page.interactions)
        assert first is not None
        return SessionHistory(
            session_id=first.session_id,
            created_at=first.created_at,
            last_interaction_at=first.last_interaction_at,
            interaction_count=first.interaction_count,
            expired=first.expired,
            interactions=interactions,
            next_cursor=None,
            raw=first.raw,
        )
