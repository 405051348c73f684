"""The runtime's WebSocket /ws against a real server: the design.md protocol end to end."""

from __future__ import annotations

import time
import uuid

from scripts.stack import Server
from tests.local_runtime.wire import invoke

SAFETY = ["crew_compliance", "maintenance", "regulatory"]
BUSINESS = ["network", "guest_experience", "cargo", "finance"]
PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"


def test_full_run_streams_every_agent_then_one_complete_and_closes_1000(
    local_runtime: Server,
) -> None:
    session_id = str(uuid.uuid4())
    exchange = invoke(local_runtime.ws_url, PROMPT, session_id=session_id)

    assert exchange.close_frame_received
    assert exchange.close_code == 1000
    assert [m["type"] for m in exchange.messages] == ["chunk"] * 14 + ["complete"]
    agents = [(c["data"]["agent"], c["data"]["status"]) for c in exchange.chunks]
    expected = [(a, s) for a in SAFETY + BUSINESS for s in ("analyzing", "completed")]
    assert agents == expected
    assert [c["data"]["sequence"] for c in exchange.chunks] == list(range(1, 15))
    for chunk in exchange.chunks:
        phase = "safety" if chunk["data"]["agent"] in SAFETY else "business"
        assert chunk["data"]["phase"] == phase
        if chunk["data"]["status"] == "completed":
            result = chunk["data"]["partial_result"]
            assert result["agent_name"] == chunk["data"]["agent"]
            assert result["status"] in ("approved", "conditional", "rejected")
            assert 0.0 <= result["confidence"] <= 1.0
            assert result["reasoning"]

    data = exchange.messages[-1]["data"]
    assert data["status"] == "success"
    assert [a["agent_name"] for a in data["safety_phase"]["agents"]] == SAFETY
    assert [a["agent_name"] for a in data["business_phase"]["agents"]] == BUSINESS
    assert data["assessment"]["flight_number"] == "BA117"
    assert data["assessment"]["delay_minutes"] == 240
    assert data["assessment"]["cause"] == "maintenance"
    assert data["assessment"]["airport"] == "LHR"
    assert data["assessment"]["affected_passengers"] == 210
    assert data["final_decision"] == "conditional"
    assert data["recommendations"][0].startswith("Confirm parts availability")
    assert data["execution_time_ms"] >= 7 * 40
    assert data["metadata"]["session_id"] == session_id
    assert data["metadata"]["turn"] == 1


def test_follow_up_turn_refers_to_the_flight_of_the_earlier_turn(local_runtime: Server) -> None:
    session_id = str(uuid.uuid4())
    first = invoke(
        local_runtime.ws_url, "Flight UA45 delayed 90 minutes due to weather", session_id=session_id
    )
    follow_up = invoke(
        local_runtime.ws_url, "what if the delay grows to 6 hours?", session_id=session_id
    )
    other_session = invoke(
        local_runtime.ws_url, "what if the delay grows to 6 hours?", session_id=str(uuid.uuid4())
    )

    before = first.messages[-1]["data"]
    after = follow_up.messages[-1]["data"]
    assert before["assessment"]["flight_number"] == "UA45"
    assert after["assessment"]["flight_number"] == "UA45"
    assert after["assessment"]["cause"] == "weather"
    assert after["assessment"]["delay_minutes"] == 360
    assert after["metadata"] == {**after["metadata"], "turn": 2, "context_from_previous_turn": True}
    assert before["final_decision"] == "approved"
    assert after["final_decision"] != "approved"
    # Memory is per session: the same follow-up elsewhere knows no flight.
    assert other_session.messages[-1]["data"]["assessment"]["flight_number"] is None


def test_session_comes_from_the_agentcore_session_header(local_runtime: Server) -> None:
    session_id = str(uuid.uuid4())
    exchange = invoke(
        local_runtime.ws_url,
        None,
        session_id=session_id,
        request={
            "action": "invoke",
            "payload": {"prompt": "AA100 delayed 1 hour, ATC flow control", "session_id": "x"},
        },
    )
    assert exchange.messages[-1]["data"]["metadata"]["session_id"] == session_id


def test_same_prompt_gives_the_same_assessment(local_runtime: Server) -> None:
    runs = [
        invoke(local_runtime.ws_url, PROMPT, session_id=str(uuid.uuid4())).messages[-1]["data"]
        for _ in range(2)
    ]
    for run in runs:
        run.pop("execution_time_ms")
        run["metadata"].pop("session_id")
        run["metadata"].pop("runtime_request_id")
    assert runs[0] == runs[1]


def test_invalid_request_gets_one_error_and_close_1008(local_runtime: Server) -> None:
    for request in ('{"action": "invoke"}', "not json", {"action": "stop", "payload": {}}):
        exchange = invoke(local_runtime.ws_url, None, request=request)
        assert [m["type"] for m in exchange.messages] == ["error"], request
        assert exchange.messages[0]["error"]["code"] == "INVALID_REQUEST"
        assert exchange.close_frame_received
        assert exchange.close_code == 1008


def test_agent_latency_setting_paces_the_run(local_runtime_factory) -> None:  # type: ignore[no-untyped-def]
    slow = local_runtime_factory("--agent-latency-ms", "150")
    started = time.monotonic()
    exchange = invoke(slow.ws_url, PROMPT)
    elapsed = time.monotonic() - started
    assert exchange.messages[-1]["type"] == "complete"
    assert exchange.messages[-1]["data"]["execution_time_ms"] >= 7 * 150
    assert elapsed >= 7 * 0.150
