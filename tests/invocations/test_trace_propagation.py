"""One trace from the caller to the runtime: the API under gunicorn, the local runtime and a
UDP socket on 127.0.0.1 standing in for the X-Ray daemon. A caller's traceparent (or
X-Amzn-Trace-Id) is continued; its trace id is found in the API's log lines and EMF
documents, in the traceparent the runtime received (its log), in the response's
traceparent and in the X-Ray documents; an invalid traceparent starts a new trace."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Any

import httpx
import pytest

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.signing import botocore_send
from tests.xray_daemon import daemon_address, documents_receive

PROMPT = "Flight QF12 delayed 2 hours at LAX due to crew availability"
TRACEPARENT = re.compile("00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")
CUSTOM = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-"


@pytest.fixture(scope="module")
def api(
    module_api_server_factory: ApiFactory, module_sessions_table: str, daemon: socket.socket
) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table,
        TRACING_ENABLED="true",
        AWS_XRAY_DAEMON_ADDRESS=daemon_address(daemon),
        RUN_POLL_SECONDS="0.05",
    )


def _ids() -> tuple[str, str]:
    return os.urandom(16).hex(), os.urandom(8).hex()


def _post(api: Server, path: str, headers: dict[str, str]) -> httpx.Response:
    return botocore_send(
        "POST",
        f"{api.http_url}{path}",
        body=json.dumps({"prompt": PROMPT}),
        headers={"Content-Type": "application/json", **headers},
    )


def _eventually(find: Any, within: float = 10.0) -> Any:
    """``find()``'s first truthy answer within ``within`` seconds (logs are written by
    other processes a moment after the response)."""
    deadline = time.monotonic() + within
    while True:
        found = find()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _runtime_trace_lines(runtime: Server, trace_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in runtime.json_documents()
        if line.get("message") == "trace context" and line.get("trace_id") == trace_id
    ]


def _segment(daemon: socket.socket, request_id: str) -> dict[str, Any]:
    received = documents_receive(
        daemon,
        10,
        until=lambda document: document.get("annotations", {}).get("request_id") == request_id,
    )
    assert received, f"no segment for {request_id}"
    segment = received[-1]
    assert segment.get("annotations", {}).get("request_id") == request_id, received
    return segment


def test_a_callers_traceparent_reaches_logs_metrics_runtime_response_and_xray(
    api: Server, local_runtime: Server, daemon: socket.socket
) -> None:
    trace_id, parent_id = _ids()
    response = _post(
        api,
        "/api/v1/invoke",
        {
            "traceparent": f"00-{trace_id}-{parent_id}-01",
            "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
            "baggage": "userId=alice,isProduction=false",
        },
    )
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-ID"]

    # The response names the API's own span in the caller's trace.
    returned = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert returned is not None, response.headers
    assert returned[1] == trace_id
    assert returned[2] != parent_id
    assert returned[3] == "01"
    api_span = returned[2]

    # X-Ray: the request's segment is in the same trace, its id the API's span, the
    # caller's span its parent; the runtime call is its subsegment.
    segment = _segment(daemon, request_id)
    assert segment["trace_id"] == f"1-{trace_id[:8]}-{trace_id[8:]}"
    assert segment["id"] == api_span
    assert segment["parent_id"] == parent_id
    [runtime_call] = [
        child for child in segment["subsegments"] if child["name"] == "agentcore-runtime-websocket"
    ]

    # The runtime received the trace in its handshake, the runtime call's subsegment as
    # its parent, with tracestate and baggage, and X-Ray's header in the same trace.
    [received] = _eventually(lambda: _runtime_trace_lines(local_runtime, trace_id))
    assert received["parent_span_id"] == runtime_call["id"]
    assert received["sampled"] is True
    assert received["transport"] == "websocket"
    assert received["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert received["baggage"] == "userId=alice,isProduction=false"
    assert received["xray_trace_header"] == (
        f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={runtime_call['id']};Sampled=1"
    )

    # Every log line of the request, and every EMF document, carries the trace id.
    def request_lines() -> list[dict[str, Any]]:
        lines = [d for d in api.json_documents() if d.get("request_id") == request_id]
        return lines if any(d.get("message") == "request" for d in lines) else []

    lines = _eventually(request_lines)
    assert lines, "no log lines for the request"
    assert {line.get("trace_id") for line in lines} == {trace_id}, lines
    metrics = [line for line in lines if "_aws" in line]
    assert metrics, "no EMF document for the request"
    assert all(line["trace_id"] == trace_id for line in metrics)
    logged = [line for line in lines if "_aws" not in line]
    assert {"request", "invocation accepted", "runtime invocation"} <= {
        line["message"] for line in logged
    }


def test_a_background_run_continues_the_accepting_requests_trace(
    api: Server, local_runtime: Server
) -> None:
    trace_id, parent_id = _ids()
    response = _post(
        api,
        "/api/v1/invocations",
        {"traceparent": f"00-{trace_id}-{parent_id}-01", "baggage": "tenant=acme"},
    )
    assert response.status_code == 202, response.text
    accepting_span = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert accepting_span is not None
    assert accepting_span[1] == trace_id
    request_id = response.json()["request_id"]

    waited = botocore_send("GET", f"{api.http_url}/api/v1/invocations/{request_id}/wait?timeout=20")
    assert waited.status_code == 200, waited.text
    assert waited.json()["status"] == "succeeded", waited.text

    # The worker called the runtime in the same trace, as a child of the accepting
    # request's span (the worker's own span: a new one in between).
    [received] = _eventually(lambda: _runtime_trace_lines(local_runtime, trace_id))
    assert received["baggage"] == "tenant=acme"
    assert received["parent_span_id"] not in (parent_id, accepting_span[2])

    # The worker's log lines and metrics carry the trace too.
    def worker_lines() -> list[dict[str, Any]]:
        return [
            d
            for d in api.json_documents()
            if d.get("request_id") == request_id and d.get("message") == "runtime invocation"
        ]

    [runtime_line] = _eventually(worker_lines)
    assert runtime_line["trace_id"] == trace_id
    emf = [
        d
        for d in api.json_documents()
        if "_aws" in d and "RuntimeInvocations" in d and d.get("trace_id") == trace_id
    ]
    assert emf, "no EMF document of the worker's runtime call in the trace"


def test_an_xray_header_is_continued(api: Server, local_runtime: Server) -> None:
    trace_id, parent_id = _ids()
    response = _post(
        api,
        "/api/v1/invoke",
        {"X-Amzn-Trace-Id": f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={parent_id};Sampled=1"},
    )
    assert response.status_code == 200, response.text
    returned = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert returned is not None
    assert returned[1] == trace_id
    assert _eventually(lambda: _runtime_trace_lines(local_runtime, trace_id))


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "nonsense",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace_without_an_error(
    api: Server, local_runtime: Server, traceparent: str
) -> None:
    response = _post(api, "/api/v1/invoke", {"traceparent": traceparent})
    assert response.status_code == 200, response.text
    returned = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert returned is not None
    trace_id = returned[1]
    assert trace_id not in traceparent.lower()
    assert trace_id != "0" * 32
    [received] = _eventually(lambda: _runtime_trace_lines(local_runtime, trace_id))
    assert received["traceparent"].startswith(f"00-{trace_id}-")
