"""X-Ray traces of the running server: a UDP socket on 127.0.0.1 stands in for the X-Ray
daemon and receives what the SDK sends it; without a listener, tracing is silent."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def traced_api(
    module_api_server_factory: ApiFactory, module_sessions_table: str, daemon: socket.socket
) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table,
        TRACING_ENABLED="true",
        AWS_XRAY_DAEMON_ADDRESS=daemon_address(daemon),
    )


def _invoke(api: Server) -> Any:
    body = json.dumps({"prompt": PROMPT})
    return botocore_send(
        "POST",
        f"{api.http_url}/api/v1/invoke",
        body=body,
        headers={"Content-Type": "application/json"},
    )


def _segments(daemon: socket.socket, request_id: str, within: float = 10) -> list[dict[str, Any]]:
    """Documents received until the request's segment arrived."""
    received = documents_receive(
        daemon,
        within,
        until=lambda segment: segment.get("annotations", {}).get("request_id") == request_id,
    )
    assert received, f"no segment for {request_id}"
    assert received[-1].get("annotations", {}).get("request_id") == request_id, received
    return received


def test_a_request_is_a_segment_with_runtime_and_dynamodb_subsegments(
    traced_api: Server, daemon: socket.socket
) -> None:
    response = _invoke(traced_api)
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-ID"]

    segment = _segments(daemon, request_id)[-1]
    assert segment["name"] == "skymarshal-api"
    assert segment["trace_id"].startswith("1-")
    assert segment["end_time"] > segment["start_time"]
    assert segment["http"]["request"] == {"method": "POST", "url": "/api/v1/invoke"}
    assert segment["http"]["response"]["status"] == 200
    assert segment["annotations"]["route"] == "api/v1/invoke"
    assert "fault" not in segment
    children = segment["subsegments"]
    names = [child["name"] for child in children]
    assert names == [
        "DynamoDB UpdateItem",  # the rate limit
        "agentcore-runtime-websocket",  # connected while the write-ahead record is written
        "DynamoDB TransactWriteItems",  # the write-ahead record, its run, the session
        "DynamoDB TransactWriteItems",  # the completion, its run, the session let go
    ], names
    runtime, write_ahead, completion = children[1:]
    assert runtime["start_time"] <= write_ahead["start_time"]
    assert write_ahead["end_time"] <= runtime["end_time"] <= completion["start_time"]
    for child in children:
        assert segment["start_time"] <= child["start_time"] <= child["end_time"]
        assert child["end_time"] <= segment["end_time"]
    assert runtime["namespace"] == "remote"
    assert runtime["metadata"]["default"]["outcome"] == "success"
    assert children[0]["namespace"] == "aws"
    assert children[0]["annotations"]["operation"] == "UpdateItem"


def test_a_failed_request_marks_its_segment(traced_api: Server, daemon: socket.socket) -> None:
    body = json.dumps({"prompt": "short"})
    response = botocore_send(
        "POST",
        f"{traced_api.http_url}/api/v1/invoke",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    segment = _segments(daemon, response.headers["X-Request-ID"])[-1]
    assert segment["http"]["response"]["status"] == 400
    assert segment["annotations"]["error_code"] == "INVALID_REQUEST"
    assert segment["error"] is True


def test_tracing_without_a_daemon_is_silent(
    api_server_factory: ApiFactory, module_sessions_table: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    # Nothing listens there now: every datagram the SDK sends is lost.
    api = api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table,
        TRACING_ENABLED="true",
        AWS_XRAY_DAEMON_ADDRESS=address,
    )
    for _ in range(3):
        response = _invoke(api)
        assert response.status_code == 200, response.text
    time.sleep(0.5)
    logs = api.json_documents()
    assert [line for line in logs if line.get("name") == "skymarshal_api.requests"]
    noisy = [line for line in logs if line.get("level") in ("WARNING", "ERROR")]
    assert noisy == []


def test_health_checks_run_in_other_threads_and_still_trace_their_calls(
    traced_api: Server, daemon: socket.socket
) -> None:
    response = httpx.get(f"{traced_api.http_url}/api/v1/health", timeout=10)
    assert response.status_code == 200, response.text
    segment = _segments(daemon, response.headers["X-Request-ID"])[-1]
    assert segment["annotations"]["route"] == "api/v1/health"
    names = [child["name"] for child in segment.get("subsegments", [])]
    assert "DynamoDB DescribeTable" in names, names
