"""The X-Ray documents themselves, built in this process and received on a UDP socket on
127.0.0.1 standing in for the daemon: the daemon address setting, a request too large for
one datagram, Lambda's trace header."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from skymarshal_api.telemetry.trace_context import trace_context_of
from skymarshal_api.telemetry.tracing import (
    daemon_address,
    trace_request_begin,
    trace_request_end,
    trace_subsegment_begin,
)
from tests.xray_daemon import document_receive, xray_daemon


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    with (
        xray_daemon() as sock,
        override_settings(TRACING_ENABLED=True, TRACING_DAEMON_ADDRESS=sock.getsockname()),
    ):
        yield sock


def _documents(daemon: socket.socket, count: int) -> list[dict[str, Any]]:
    return [document_receive(daemon) for _ in range(count)]


@pytest.mark.parametrize(
    ("value", "address"),
    [
        (None, ("127.0.0.1", 2000)),
        ("", ("127.0.0.1", 2000)),
        ("169.254.79.129:2000", ("169.254.79.129", 2000)),
        ("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", ("127.0.0.2", 2001)),
        ("udp:10.0.0.1:3000 tcp:10.0.0.1:3001", ("10.0.0.1", 3000)),
    ],
)
def test_the_daemon_address_is_read_as_the_sdks_read_it(
    value: str | None, address: tuple[str, int]
) -> None:
    assert daemon_address(value) == address


@pytest.mark.parametrize("value", ["localhost", ":2000", "127.0.0.1:port", "127.0.0.1:70000"])
def test_a_bad_daemon_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="AWS_XRAY_DAEMON_ADDRESS"):
        daemon_address(value)


def test_a_request_too_large_for_one_datagram_sends_its_subsegments_apart(
    daemon: socket.socket,
) -> None:
    trace = trace_request_begin(method="GET", path="/api/v1/sessions")
    assert trace is not None
    for n in range(40):  # 40 of 2 KB: more than the 64 KB of one datagram
        subsegment = trace_subsegment_begin(trace, f"DynamoDB GetItem {n}", namespace="aws")
        subsegment.annotate(operation="GetItem")
        subsegment.end(attempt=n, key="k" * 2048)
    trace_request_end(trace, status=200, annotations={"request_id": "r"}, error=False)

    request, *children = _documents(daemon, 41)
    assert "subsegments" not in request
    assert request["annotations"] == {"request_id": "r"}
    assert [child["name"] for child in children] == [f"DynamoDB GetItem {n}" for n in range(40)]
    for child in children:
        assert child["type"] == "subsegment"
        assert child["trace_id"] == request["trace_id"]
        assert child["parent_id"] == request["id"]
        assert request["start_time"] <= child["start_time"] <= child["end_time"]
    assert children[7]["metadata"]["default"]["attempt"] == 7


def test_an_ended_request_takes_no_more_subsegments(daemon: socket.socket) -> None:
    trace = trace_request_begin(method="GET", path="/api/v1/health")
    trace_request_end(trace, status=503, annotations={}, error=True)
    trace_subsegment_begin(trace, "late").end()
    trace_request_end(trace, status=503, annotations={}, error=True)  # sent once
    [document] = _documents(daemon, 1)
    assert document["fault"] is True
    assert "subsegments" not in document
    with pytest.raises(TimeoutError):
        daemon.recv(65536)


def test_lambdas_trace_header_makes_the_request_its_subsegment(
    daemon: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    trace = trace_request_begin(method="POST", path="/dev/api/v1/invoke")
    trace_subsegment_begin(trace, "agentcore-runtime-websocket").end(failed=True, outcome="timeout")
    trace_request_end(trace, status=429, annotations={}, error=True)
    [document] = _documents(daemon, 1)
    assert document["type"] == "subsegment"
    assert document["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert document["parent_id"] == "53995c3f42cd8ad8"
    assert (document["error"], document["throttle"]) == (True, True)
    [runtime] = document["subsegments"]
    assert runtime["fault"] is True
    assert runtime["metadata"]["default"]["outcome"] == "timeout"

    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
    assert trace_request_begin(method="POST", path="/dev/api/v1/invoke") is None


def test_a_callers_trace_is_kept_and_its_span_is_the_parent(daemon: socket.socket) -> None:
    context = trace_context_of(
        {"HTTP_TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    )
    trace = trace_request_begin(method="GET", path="/api/v1/health", context=context)
    subsegment = trace_subsegment_begin(trace, "agentcore-runtime-websocket")
    subsegment.end()
    trace_request_end(trace, status=200, annotations={}, error=False)
    [document] = _documents(daemon, 1)
    assert document["trace_id"] == "1-4bf92f35-77b34da6a3ce929d0e0e4736"
    assert document["id"] == context.span_id
    assert document["parent_id"] == "00f067aa0ba902b7"
    assert document["subsegments"][0]["id"] == subsegment.id


def test_a_callers_unsampled_trace_sends_nothing(daemon: socket.socket) -> None:
    for header in (
        {"HTTP_TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
        {"HTTP_X_AMZN_TRACE_ID": "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Sampled=0"},
    ):
        context = trace_context_of(header)
        assert not context.sampled
        assert trace_request_begin(method="GET", path="/api/v1/health", context=context) is None
    # The same trace, sampled, is sent: the check above is about the flag.
    sampled = trace_context_of(
        {"HTTP_TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    )
    trace = trace_request_begin(method="GET", path="/api/v1/health", context=sampled)
    trace_request_end(trace, status=200, annotations={}, error=False)
    assert len(_documents(daemon, 1)) == 1


def test_on_lambda_a_callers_other_trace_gets_a_segment_of_its_own(
    daemon: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"
    trace = trace_request_begin(
        method="GET",
        path="/dev/api/v1/health",
        context=trace_context_of({"HTTP_TRACEPARENT": caller + "1"}),
    )
    trace_request_end(trace, status=200, annotations={}, error=False)
    [document] = _documents(daemon, 1)
    assert "type" not in document
    assert document["trace_id"] == "1-4bf92f35-77b34da6a3ce929d0e0e4736"
    assert document["parent_id"] == "00f067aa0ba902b7"
    # Unsampled by the caller: nothing is sent for it.
    unsampled = trace_context_of({"HTTP_TRACEPARENT": caller + "0"})
    assert trace_request_begin(method="GET", path="/", context=unsampled) is None
