"""Each fault mode of the runtime, observed by a real WebSocket client."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import RuntimeFactory
from tests.local_runtime.wire import invoke

PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"


def test_refuse_drops_the_handshake_without_an_answer(
    local_runtime_factory: RuntimeFactory,
) -> None:
    runtime = local_runtime_factory("--fault", "refuse")
    with pytest.raises(InvalidMessage), connect(runtime.ws_url, open_timeout=5):
        pass


def test_busy_rejects_with_429_retry_after_and_ping_says_healthy_busy(
    local_runtime_factory: RuntimeFactory,
) -> None:
    runtime = local_runtime_factory("--fault", "busy", "--retry-after", "7")
    with pytest.raises(InvalidStatus) as rejected, connect(runtime.ws_url, open_timeout=5):
        pass
    assert rejected.value.response.status_code == 429
    assert rejected.value.response.headers["Retry-After"] == "7"
    assert httpx.get(f"{runtime.http_url}/ping", timeout=5).json()["status"] == "HealthyBusy"


def test_hang_before_first_sends_nothing(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "hang-before-first")
    exchange = invoke(runtime.ws_url, PROMPT, recv_timeout=1.5)
    assert exchange.messages == []
    assert exchange.ended_by == "timeout"


def test_hang_mid_stream_stops_after_fault_after_chunks(
    local_runtime_factory: RuntimeFactory,
) -> None:
    runtime = local_runtime_factory("--fault", "hang-mid-stream", "--fault-after", "3")
    exchange = invoke(runtime.ws_url, PROMPT, recv_timeout=1.5)
    assert [m["type"] for m in exchange.messages] == ["chunk"] * 3
    assert exchange.ended_by == "timeout"


def test_drop_mid_stream_ends_without_a_close_frame(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "drop-mid-stream", "--fault-after", "4")
    exchange = invoke(runtime.ws_url, PROMPT)
    assert [m["type"] for m in exchange.messages] == ["chunk"] * 4
    assert exchange.ended_by == "ConnectionClosedError"
    assert not exchange.close_frame_received


def test_malformed_json_then_normal_close(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "malformed-json")
    exchange = invoke(runtime.ws_url, PROMPT)
    assert [m["type"] for m in exchange.messages] == ["chunk", "chunk", "<not json>"]
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        json.loads(exchange.raw_frames[-1])
    assert exchange.close_frame_received
    assert exchange.close_code == 1000


def test_error_message_is_the_one_terminal_message(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "error-message", "--fault-after", "2")
    exchange = invoke(runtime.ws_url, PROMPT)
    assert [m["type"] for m in exchange.messages] == ["chunk", "chunk", "error"]
    error = exchange.messages[-1]["error"]
    assert error["code"] == "AGENT_EXECUTION_FAILED"
    assert error["details"] == {"agent": "maintenance", "phase": "safety"}
    assert error["message"]
    assert exchange.close_frame_received
    assert exchange.close_code == 1000


def test_oversize_frame_exceeds_the_configured_size(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "oversize-frame", "--oversize-bytes", "300000")
    whole = invoke(runtime.ws_url, PROMPT, max_size=None)
    assert len(whole.raw_frames[-1]) > 300_000
    assert whole.close_code == 1000
    # A client with a smaller limit refuses the frame (1009) and gets no complete.
    limited = invoke(runtime.ws_url, PROMPT, max_size=100_000)
    assert [m["type"] for m in limited.messages] == ["chunk", "chunk"]
    assert limited.ended_by == "ConnectionClosedError"


def test_fault_after_zero_faults_before_the_first_chunk(
    local_runtime_factory: RuntimeFactory,
) -> None:
    runtime = local_runtime_factory("--fault", "error-message", "--fault-after", "0")
    started = time.monotonic()
    exchange = invoke(runtime.ws_url, PROMPT)
    assert [m["type"] for m in exchange.messages] == ["error"]
    assert time.monotonic() - started < 5
