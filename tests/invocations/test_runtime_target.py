"""The runtime WebSocket's handshake headers in AWS mode: the SDK's SigV4 headers, and the
trace headers after them, unsigned (as the SDK adds the session header)."""

from __future__ import annotations

from typing import Any

import pytest

from invocations.runtime_client import SESSION_HEADER, _agentcore_client, runtime_target
from skymarshal_api.telemetry.trace_context import trace_context_of

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/skymarshal-abc123"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_trace_headers_go_with_the_signed_handshake_unsigned(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    settings.AGENTCORE_MODE = "aws"
    settings.AGENTCORE_RUNTIME_ARN = RUNTIME_ARN
    settings.AGENTCORE_ENDPOINT_NAME = None
    settings.AWS_REGION = "us-east-1"
    _agentcore_client.cache_clear()
    context = trace_context_of({"HTTP_TRACEPARENT": TRACEPARENT, "HTTP_BAGGAGE": "a=b"})
    try:
        target = runtime_target("session-1", context.propagation_headers())
    finally:
        _agentcore_client.cache_clear()
    headers = {name.lower(): value for name, value in target.headers.items()}
    assert target.url.startswith("wss://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/")
    assert headers[SESSION_HEADER.lower()] == "session-1"
    assert headers["traceparent"] == context.traceparent()
    assert headers["baggage"] == "a=b"
    assert headers["x-amzn-trace-id"].startswith("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;")
    assert headers["x-amzn-bedrock-agentcore-runtime-custom-traceparent"] == context.traceparent()
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed == "host;x-amz-date"
    # websockets writes the handshake's own headers itself.
    assert "upgrade" not in headers
    assert "sec-websocket-key" not in headers
