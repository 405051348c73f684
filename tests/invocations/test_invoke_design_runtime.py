"""POST /api/v1/invoke against a runtime that speaks design.md's messages to the letter
(tests/design_runtime.py): no ``final_decision`` and no phases in its ``complete``
message, so the API derives them and says so in ``metadata``; messages of unknown types
are skipped; a binary frame is INVALID_RUNTIME_RESPONSE; nothing after the terminal
message counts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.stack import Server, _runtime_ready, _start, _with_port_retry
from tests.conftest import ApiFactory
from tests.design_runtime import EXECUTION_TIME_MS, RECOMMENDATIONS
from tests.invocations.live import (
    BASE_ENV,
    BUSINESS_AGENTS,
    SAFETY_AGENTS,
    App,
    SseEvent,
    assert_error,
    assert_invoke_response,
    new_session_id,
    sse_parse,
)

PROMPT = "Flight AA123 delayed 3 hours due to weather"


def start_design_runtime(log_dir: Path) -> Server:
    def start(port: int) -> Server:
        command = [sys.executable, "-m", "tests.design_runtime", "--port", str(port)]
        return _start("design-runtime", command, port=port, ready=_runtime_ready, log_dir=log_dir)

    return _with_port_retry(start, None)


@pytest.fixture(scope="module")
def app(
    log_dir: Path, module_api_server_factory: ApiFactory, module_sessions_table: str
) -> Iterator[App]:
    runtime = start_design_runtime(log_dir)
    try:
        api = module_api_server_factory(
            runtime=runtime, SESSION_TABLE_NAME=module_sessions_table, **BASE_ENV
        )
        yield App(api=api, runtime=runtime)
    finally:
        runtime.stop()


def _invoke(app: App, script: str, **extra: Any) -> httpx.Response:
    return app.invoke(
        {"prompt": f"{PROMPT}, script={script}", "session_id": new_session_id(), **extra}
    )


def _stream(app: App, script: str) -> tuple[httpx.Response, list[SseEvent]]:
    response = _invoke(app, script, streaming=True)
    assert response.status_code == 200, response.text
    return response, sse_parse(response.text)


def test_design_messages_give_200_with_the_decision_and_phases_derived(app: App) -> None:
    response = _invoke(app, "design")

    assert response.status_code == 200, response.text
    body = response.json()
    assert_invoke_response(body, request_id=response.headers["X-Request-ID"])
    assert body["final_decision"] == "conditional"  # maintenance conditional, none rejected
    assert body["safety_phase"]["status"] == "conditional"
    assert body["business_phase"]["status"] == "approved"
    assert [a["status"] for a in body["safety_phase"]["agents"]] == [
        "approved",
        "conditional",
        "approved",
    ]
    assert body["recommendations"] == RECOMMENDATIONS
    assert body["metadata"]["runtime_execution_time_ms"] == EXECUTION_TIME_MS
    assert body["metadata"]["derived"] == {
        "final_decision": "agents",
        "safety_phase": "chunks",
        "business_phase": "chunks",
    }
    [interaction] = app.interactions(body["session_id"])
    assert interaction["status"] == "success"
    assert interaction["response"]["final_decision"] == "conditional"


def test_a_safety_rejection_vetoes_the_derived_decision(app: App) -> None:
    response = _invoke(app, "design-rejected")

    assert response.status_code == 200, response.text
    assert response.json()["final_decision"] == "rejected"
    assert response.json()["safety_phase"]["status"] == "rejected"


def test_phases_come_from_the_assessment_by_agent_name(app: App) -> None:
    response = _invoke(app, "by-agent-name")

    assert response.status_code == 200, response.text
    body = response.json()
    assert_invoke_response(body, request_id=response.headers["X-Request-ID"])
    assert [a["agent_name"] for a in body["safety_phase"]["agents"]] == SAFETY_AGENTS
    assert [a["agent_name"] for a in body["business_phase"]["agents"]] == BUSINESS_AGENTS
    assert body["final_decision"] == "approved"
    assert body["metadata"]["derived"] == {
        "final_decision": "agents",
        "safety_phase": "assessment",
        "business_phase": "assessment",
    }


def test_design_messages_streamed_end_with_exactly_one_terminal_event(app: App) -> None:
    response, events = _stream(app, "design")

    assert [e.event for e in events] == ["start"] + ["chunk"] * 14 + ["complete"]
    assert events[1].data == {
        "agent": "crew_compliance",
        "status": "analyzing",
        "partial_result": {},
    }
    assert events[-1].data["final_decision"] == "conditional"
    assert events[-1].data["request_id"] == response.headers["X-Request-ID"]


def test_unknown_message_types_are_skipped(app: App) -> None:
    buffered = _invoke(app, "unknown-types")
    _, events = _stream(app, "unknown-types")

    assert buffered.status_code == 200, buffered.text
    assert buffered.json()["final_decision"] == "conditional"
    assert [e.event for e in events] == ["start"] + ["chunk"] * 14 + ["complete"]
    # The server may still be writing its last lines when the response arrives.
    deadline = time.monotonic() + 5
    while True:
        documents = app.api.json_documents()
        skipped = [d for d in documents if "_aws" in d and "RuntimeMessagesSkipped" in d]
        if skipped or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    log = app.api.log_path.read_text(encoding="utf-8")
    assert "Skipped a runtime message of unknown type 'progress'" in log
    assert "Skipped a runtime message of unknown type 'x-telemetry'" in log
    assert skipped, "no EMF document counts the skipped messages"


def test_whatever_follows_the_terminal_message_is_ignored(app: App) -> None:
    buffered = _invoke(app, "after-terminal")
    _, events = _stream(app, "after-terminal")

    assert buffered.status_code == 200, buffered.text
    # The second complete says "approved": only the first one counts.
    assert buffered.json()["final_decision"] == "conditional"
    assert [e.event for e in events] == ["start"] + ["chunk"] * 14 + ["complete"]
    assert events[-1].data["final_decision"] == "conditional"


def test_a_binary_frame_is_invalid_runtime_response(app: App) -> None:
    response = _invoke(app, "binary")

    error = assert_error(response, 502, "INVALID_RUNTIME_RESPONSE")
    assert error["details"]["problem"] == "binary_frame"
    [interaction] = app.interactions(json.loads(response.request.content)["session_id"])
    assert interaction["status"] == "error"
