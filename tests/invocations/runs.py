"""Signed calls to the endpoints of background runs (POST /api/v1/invocations, GET
one run, its /wait and /events, DELETE it), shared by the tests of those endpoints:
the run settings of their apps and the checks of an accepted run."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.invocations.live import App, SseEvent, sse_events_incrementally
from tests.signing import botocore_headers, botocore_send

FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
RUN_ENV = {
    "RUN_POLL_SECONDS": "0.05",
    "RUN_CANCEL_CHECK_SECONDS": "0.2",
    "SSE_HEARTBEAT_SECONDS": "1",
}
# Seven agents one after another: a run takes about 7 x the agent latency.
SLOW = ("--agent-latency-ms", "300")


class Runs:
    """Signed calls to the invocations endpoints of one app."""

    def __init__(self, app: App) -> None:
        self.base = f"{app.api.http_url}/api/v1"
        self.app = app

    def _post(
        self,
        path: str,
        document: dict[str, Any],
        *,
        idempotency_key: str | None,
        timeout: float,
        **sign: Any,
    ) -> httpx.Response:
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base}/{path}"
        signed = botocore_headers("POST", url, body=body, headers=headers, **sign)
        return httpx.post(url, content=body, headers={**headers, **signed}, timeout=timeout)

    def create(
        self, document: dict[str, Any], *, idempotency_key: str | None = None, **sign: Any
    ) -> httpx.Response:
        return self._post(
            "invocations", document, idempotency_key=idempotency_key, timeout=30, **sign
        )

    def invoke(
        self,
        document: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float = 60,
    ) -> httpx.Response:
        return self._post("invoke", document, idempotency_key=idempotency_key, timeout=timeout)

    def get(self, request_id: str, suffix: str = "", **sign: Any) -> httpx.Response:
        return botocore_send("GET", f"{self.base}/invocations/{request_id}{suffix}", **sign)

    def wait(self, request_id: str, timeout: float) -> dict[str, Any]:
        url = f"{self.base}/invocations/{request_id}/wait?timeout={timeout:g}"
        response = httpx.get(url, headers=botocore_headers("GET", url), timeout=timeout + 10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def cancel(self, request_id: str, **sign: Any) -> httpx.Response:
        return botocore_send("DELETE", f"{self.base}/invocations/{request_id}", **sign)

    def until_final(self, request_id: str, *, within: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            body = self.wait(request_id, min(5.0, max(0.1, deadline - time.monotonic())))
            if body["status"] in FINAL:
                return body
            assert time.monotonic() < deadline, body

    def events(
        self,
        request_id: str,
        *,
        last_event_id: int | None = None,
        stop_after: int | None = None,
        follow: bool = True,
    ) -> list[SseEvent]:
        """The events, read as they arrive; with ``stop_after``, the connection is closed
        after that many (a client that drops)."""
        url = f"{self.base}/invocations/{request_id}/events" + ("" if follow else "?follow=false")
        headers = botocore_headers("GET", url)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        seen: list[SseEvent] = []
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in sse_events_incrementally(response):
                seen.append(event)
                if stop_after is not None and len(seen) >= stop_after:
                    break
        return seen


def _accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert response.headers["Location"] == f"/api/v1/invocations/{body['request_id']}"
    if response.headers.get("Idempotent-Replayed") != "true":
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert body["status"] in {"queued", "running"}
    assert body["links"]["events"].endswith(f"{body['request_id']}/events")
    return body
