"""invocations/run_result.py: which source each field of a run's result comes from, and
the derived decision's rule (a safety rejection vetoes; all approved approves)."""

from __future__ import annotations

from typing import Any

import pytest

from invocations.run_result import run_result_resolve
from invocations.wire import ChunkData, CompleteData

DESIGN_COMPLETE = {
    "status": "success",
    "assessment": {"summary": "AA123 delayed"},
    "recommendations": ["Rebook"],
    "execution_time_ms": 4523,
}


def _chunks(**statuses: str) -> dict[str, ChunkData]:
    return {
        agent: ChunkData(agent=agent, status="completed", partial_result={"status": status})
        for agent, status in statuses.items()
    }


def _resolve(chunks: dict[str, ChunkData], **data: Any) -> Any:
    return run_result_resolve(CompleteData.model_validate({**DESIGN_COMPLETE, **data}), chunks)


@pytest.mark.parametrize(
    ("statuses", "decision"),
    [
        ({"crew_compliance": "rejected", "network": "approved"}, "rejected"),
        ({"crew_compliance": "approved", "network": "rejected"}, "conditional"),
        ({"regulatory": "approved", "finance": "approved"}, "approved"),
        ({"maintenance": "conditional", "cargo": "approved"}, "conditional"),
        ({}, "conditional"),
    ],
)
def test_the_derived_decision_follows_the_safety_veto(
    statuses: dict[str, str], decision: str
) -> None:
    result = _resolve(_chunks(**statuses))

    assert result.final_decision == decision
    assert result.metadata["derived"]["final_decision"] == "agents"


def test_what_the_message_carries_is_kept_and_not_marked_derived() -> None:
    phase = {"status": "approved", "agents": []}
    result = _resolve(
        _chunks(crew_compliance="rejected"),
        final_decision="approved",
        safety_phase=phase,
        business_phase=phase,
        metadata={"runtime": "x"},
    )

    assert result.final_decision == "approved"
    assert result.safety_phase == phase
    assert result.metadata == {"runtime": "x"}


def test_the_assessments_decision_comes_before_the_agents() -> None:
    result = _resolve(
        _chunks(crew_compliance="rejected"),
        assessment={"final_decision": "approved"},
    )

    assert result.final_decision == "approved"
    assert result.metadata["derived"] == {
        "final_decision": "assessment",
        "safety_phase": "chunks",
        "business_phase": "none",
    }
    assert result.business_phase == {"agents": []}


def test_a_chunks_phase_field_places_an_unknown_agent() -> None:
    chunk = ChunkData(
        agent="weather_desk",
        status="completed",
        phase="safety",
        partial_result={"status": "rejected"},
    )

    result = _resolve({"weather_desk": chunk})

    assert [a["agent_name"] for a in result.safety_phase["agents"]] == ["weather_desk"]
    assert result.final_decision == "rejected"
