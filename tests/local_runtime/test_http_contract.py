"""GET /ping and POST /invocations: the AgentCore Runtime container contract."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from scripts.stack import Server
from tests.conftest import RuntimeFactory

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


def test_ping_reports_healthy_with_time_of_last_update(local_runtime: Server) -> None:
    response = httpx.get(f"{local_runtime.http_url}/ping", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Healthy"
    assert abs(body["time_of_last_update"] - time.time()) < 24 * 3600


def _sse_events(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]


def test_invocations_streams_the_run_as_server_sent_events(local_runtime: Server) -> None:
    session_id = str(uuid.uuid4())
    response = httpx.post(
        f"{local_runtime.http_url}/invocations",
        json={"prompt": "Flight DL88 cancelled at ATL due to a crew shortage"},
        headers={SESSION_HEADER: session_id},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(response.text)
    assert [e["type"] for e in events] == ["chunk"] * 14 + ["complete"]
    data = events[-1]["data"]
    assert data["assessment"]["flight_number"] == "DL88"
    assert data["assessment"]["disruption_type"] == "cancellation"
    assert data["final_decision"] == "rejected"  # crew cannot operate: safety veto
    assert data["metadata"]["session_id"] == session_id


def test_invocations_rejects_a_payload_without_prompt(local_runtime: Server) -> None:
    response = httpx.post(f"{local_runtime.http_url}/invocations", json={"x": 1}, timeout=5)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "prompt"


def test_invocations_answers_429_when_busy(local_runtime_factory: RuntimeFactory) -> None:
    runtime = local_runtime_factory("--fault", "busy")
    response = httpx.post(
        f"{runtime.http_url}/invocations", json={"prompt": "AA1 delayed 1 hour"}, timeout=5
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
