"""POST /api/v1/invoke, buffered, against local runtimes misbehaving each documented way
(local_runtime/app.py): the HTTP answer (Property 5; Property 6 for the deadline), the
interaction it leaves recorded, and no connection to the runtime left open afterwards
(Property 9), over real sockets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.invocations.live import (
    PROMPT,
    App,
    Stack,
    assert_error,
    assert_invoke_response,
    assert_no_connection_left,
    established_on,
    new_session_id,
)

pytestmark = pytest.mark.slow

DEADLINE = 2


@dataclass(frozen=True)
class Outcome:
    response: httpx.Response
    error: dict[str, Any]
    elapsed: float
    interaction: dict[str, Any]


def _run(app: App, status: int, code: str, recorded: str, *, see_it_open: bool = False) -> Outcome:
    """One buffered invoke in a session of its own: answered ``status``/``code``, the
    interaction recorded ``recorded``, and no connection to the runtime left open. With
    ``see_it_open``, the run's connection must show in /proc/net/tcp while it is in
    progress (the check of Property 9 sees what it is looking for)."""
    session_id = new_session_id()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = pool.submit(app.invoke, {"prompt": PROMPT, "session_id": session_id})
        while see_it_open and not established_on(app.runtime.port):
            assert not call.done(), "no connection to the runtime was seen during the run"
            time.sleep(0.01)
        response = call.result()
    elapsed = time.monotonic() - started
    error = assert_error(response, status, code)
    history = app.history(session_id)
    assert history.status_code == 200, history.text
    assert history.json()["interaction_count"] == 1
    [interaction] = history.json()["interactions"]
    assert interaction["status"] == recorded
    assert interaction["request_id"] == error["request_id"]
    assert interaction["prompt"] == PROMPT
    assert interaction["response"] is None
    assert interaction["error_message"].startswith(f"{code}: ")
    assert isinstance(interaction["execution_time_ms"], int)
    assert_no_connection_left(app.runtime.port)
    return Outcome(response, error, elapsed, interaction)


def test_success_leaves_no_connection_open(invoke_stack: Stack) -> None:
    app = invoke_stack.app()
    session_id = new_session_id()

    response = app.invoke({"prompt": PROMPT, "session_id": session_id})

    assert response.status_code == 200, response.text
    assert_invoke_response(response.json(), request_id=response.headers["X-Request-ID"])
    assert [i["status"] for i in app.interactions(session_id)] == ["success"]
    assert_no_connection_left(app.runtime.port)


def test_refuse_is_502_connection_failed_after_3_attempts(invoke_stack: Stack) -> None:
    outcome = _run(invoke_stack.fault("refuse"), 502, "CONNECTION_FAILED", "error")

    assert outcome.elapsed >= 3.0  # tried at 0 s, 1 s and 3 s
    assert outcome.error["details"]["attempts"] == 3
    # Measured by the server, not by this client, whose first request to a new server pays
    # for its warming up (and which a loaded machine slows further).
    assert 3000 <= outcome.interaction["execution_time_ms"] < 6000


def test_busy_is_503_runtime_unavailable_with_retry_after(invoke_stack: Stack) -> None:
    outcome = _run(
        invoke_stack.fault("busy", "--retry-after", "7"), 503, "RUNTIME_UNAVAILABLE", "error"
    )

    assert outcome.response.headers["Retry-After"] == "7"
    assert outcome.error["details"]["runtime_status"] == 429
    # A busy runtime is not retried (a retry would wait 1 s first); measured by the server,
    # not by this client, whose first request to a new server pays for its warming up.
    assert outcome.interaction["execution_time_ms"] < 1000


def test_a_refused_handshake_is_502_runtime_access_denied_naming_the_grant(
    invoke_stack: Stack,
) -> None:
    outcome = _run(invoke_stack.fault("deny"), 502, "RUNTIME_ACCESS_DENIED", "error")

    action = "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream"
    assert action in outcome.error["error_message"]
    assert outcome.error["details"]["action"] == action
    assert outcome.error["details"]["runtime_status"] == 403
    assert (
        outcome.error["details"]["resource"]
        == invoke_stack.runtime("--fault", "deny", "--agent-latency-ms", "0").ws_url
    )
    # A refusal is not retried (retries would wait 1 s, then 2 s).
    assert outcome.interaction["execution_time_ms"] < 1000


def test_an_error_message_is_502_runtime_error_with_its_code(invoke_stack: Stack) -> None:
    outcome = _run(invoke_stack.fault("error-message"), 502, "RUNTIME_ERROR", "error")

    # The runtime's code and message reach the caller, its details (internals) do not.
    assert outcome.error["details"] == {"runtime_error_code": "AGENT_EXECUTION_FAILED"}
    # Two chunks (crew_compliance analyzing and completed), then the third agent step fails.
    assert "maintenance" in outcome.error["error_message"]


def test_malformed_json_is_502_invalid_runtime_response(invoke_stack: Stack) -> None:
    outcome = _run(invoke_stack.fault("malformed-json"), 502, "INVALID_RUNTIME_RESPONSE", "error")
    assert outcome.error["details"]["problem"]


def test_an_oversize_frame_is_502_invalid_runtime_response(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("oversize-frame", "--oversize-bytes", "2000000")

    outcome = _run(app, 502, "INVALID_RUNTIME_RESPONSE", "error")

    assert str(1024 * 1024) in outcome.error["error_message"]  # the app's default maximum


def test_a_drop_mid_stream_is_502_connection_failed(invoke_stack: Stack) -> None:
    outcome = _run(invoke_stack.fault("drop-mid-stream"), 502, "CONNECTION_FAILED", "error")
    # A lost connection is not retried (the run may have started): measured by the server.
    assert outcome.interaction["execution_time_ms"] < 2000


@pytest.mark.parametrize("fault", ["hang-before-first", "hang-mid-stream"])
def test_a_hang_is_504_timeout_at_the_deadline(invoke_stack: Stack, fault: str) -> None:
    app = invoke_stack.fault(fault, AGENTCORE_DEADLINE_SECONDS=str(DEADLINE))

    outcome = _run(app, 504, "TIMEOUT", "timeout", see_it_open=True)

    assert outcome.elapsed >= DEADLINE
    assert DEADLINE * 1000 <= outcome.interaction["execution_time_ms"] < (DEADLINE + 1) * 1000
    assert outcome.error["details"]["deadline_seconds"] == DEADLINE
    assert DEADLINE * 1000 <= outcome.interaction["execution_time_ms"] < (DEADLINE + 2) * 1000
