"""One SkyMarshal run as the sequence of wire messages it produces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from local_runtime import __version__
from local_runtime.protocol import chunk_message
from local_runtime.simulation import (
    PHASES,
    AgentAssessment,
    SessionMemory,
    agent_run,
    assessment_summary,
    disruption_parse,
    final_decision,
    phase_decision,
    recommendations_prioritize,
)


def run_messages(
    *, prompt: str, session_id: str, request_id: str, memory: SessionMemory
) -> Iterator[dict[str, Any]]:
    """The run's messages: for each agent an ``analyzing`` chunk then a ``completed`` chunk
    carrying its assessment, safety phase first; then the ``complete`` message. The caller
    paces the run (an agent "works" between its two chunks) and fills in
    ``execution_time_ms``. The session remembers the turn once the run completes."""
    _, previous = memory.recall(session_id)
    disruption = disruption_parse(prompt, previous)
    sequence = 0
    results: dict[str, list[AgentAssessment]] = {}
    for phase, agents in PHASES:
        results[phase] = []
        for agent in agents:
            sequence += 1
            yield chunk_message(
                sequence=sequence, agent=agent, phase=phase, status="analyzing", partial_result=None
            )
            assessment = agent_run(agent, disruption)
            results[phase].append(assessment)
            sequence += 1
            yield chunk_message(
                sequence=sequence,
                agent=agent,
                phase=phase,
                status="completed",
                partial_result=assessment.as_dict(),
            )
    safety, business = results["safety"], results["business"]
    decision = final_decision(safety, business)
    turn = memory.remember(session_id, disruption)
    yield {
        "type": "complete",
        "data": {
            "status": "success",
            "assessment": assessment_summary(disruption, decision),
            "safety_phase": {
                "status": phase_decision(safety),
                "agents": [a.as_dict() for a in safety],
            },
            "business_phase": {
                "status": phase_decision(business),
                "agents": [a.as_dict() for a in business],
            },
            "final_decision": decision,
            "recommendations": recommendations_prioritize(safety + business),
            "execution_time_ms": 0,
            "metadata": {
                "runtime": "skymarshal-local-runtime",
                "runtime_version": __version__,
                "runtime_request_id": request_id,
                "session_id": session_id,
                "turn": turn,
                "context_from_previous_turn": disruption.context_from_previous_turn,
                "agents_executed": sum(len(agents) for _, agents in PHASES),
            },
        },
    }
