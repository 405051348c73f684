"""A run's result from the runtime's ``complete`` message, whatever it leaves out.

design.md's ``complete`` message carries ``status``, ``assessment``, ``recommendations`` and
``execution_time_ms``; the InvokeResponse also has ``final_decision`` and the two phases.
Each is taken from the first place that has it:

==============  ========================  =========================  ======================
field           1. the message            2. the assessment          3. derived
==============  ========================  =========================  ======================
final_decision  ``final_decision``        ``final_decision``         from the agents'
                                                                     statuses
safety_phase,   ``safety_phase``,         ``safety_phase`` /         from the chunks'
business_phase  ``business_phase``        ``business_phase``, else   results (each agent's
                                          the agents by name         last one)
==============  ========================  =========================  ======================

The derived decision follows SkyMarshal's rule: a rejection in the safety phase vetoes the
plan (``rejected``); every agent approved: ``approved``; anything else, or no agent
status at all, ``conditional``. ``metadata["derived"]`` names each field that the message
did not carry and where it came from (``assessment``, ``chunks`` or ``agents``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from invocations.wire import ChunkData, CompleteData

Decision = Literal["approved", "rejected", "conditional"]
DECISIONS: frozenset[str] = frozenset({"approved", "rejected", "conditional"})
PHASE_AGENTS: dict[str, tuple[str, ...]] = {
    "safety": ("crew_compliance", "maintenance", "regulatory"),
    "business": ("network", "guest_experience", "cargo", "finance"),
}
_PHASE_OF = {agent: phase for phase, agents in PHASE_AGENTS.items() for agent in agents}


@dataclass(frozen=True)
class RunResult:
    """What the InvokeResponse needs of a run, every field present."""

    status: str
    assessment: dict[str, Any]
    safety_phase: dict[str, Any]
    business_phase: dict[str, Any]
    final_decision: Decision
    recommendations: list[str]
    execution_time_ms: int | None
    metadata: dict[str, Any]


def _agent_entry(
    name: str, result: Mapping[str, Any], fallback_status: str | None
) -> dict[str, Any]:
    entry = {"agent_name": name, **result}
    if entry.get("status") not in DECISIONS and fallback_status in DECISIONS:
        entry["status"] = fallback_status
    return entry


def _phase_of_chunk(chunk: ChunkData) -> str | None:
    result = chunk.partial_result or {}
    for phase in (chunk.phase, result.get("phase")):
        if phase in PHASE_AGENTS:
            return str(phase)
    return _PHASE_OF.get(chunk.agent)


def _phase_build(agents: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = [a.get("status") for a in agents]
    phase: dict[str, Any] = {"agents": agents}
    if "rejected" in statuses:
        phase["status"] = "rejected"
    elif agents and all(s == "approved" for s in statuses):
        phase["status"] = "approved"
    elif agents:
        phase["status"] = "conditional"
    return phase


def _phase_from_assessment(assessment: Mapping[str, Any], phase: str) -> dict[str, Any] | None:
    whole = assessment.get(f"{phase}_phase")
    if isinstance(whole, dict):
        return whole
    agents = [
        _agent_entry(name, value, None)
        for name in PHASE_AGENTS[phase]
        if isinstance(value := assessment.get(name), dict)
    ]
    return _phase_build(agents) if agents else None


def _phase_from_chunks(chunks: Mapping[str, ChunkData], phase: str) -> dict[str, Any] | None:
    agents = [
        _agent_entry(name, chunk.partial_result or {}, chunk.status)
        for name, chunk in chunks.items()
        if _phase_of_chunk(chunk) == phase
    ]
    return _phase_build(agents) if agents else None


def _statuses(phase: Mapping[str, Any]) -> list[str]:
    agents = phase.get("agents")
    if isinstance(agents, list) and agents:
        return [str(a.get("status")) if isinstance(a, dict) else "" for a in agents]
    status = phase.get("status")
    return [str(status)] if status in DECISIONS else []


def decision_derive(safety: Mapping[str, Any], business: Mapping[str, Any]) -> Decision:
    """A safety rejection vetoes; all approved approves; anything else is conditional."""
    safety_statuses, business_statuses = _statuses(safety), _statuses(business)
    if "rejected" in safety_statuses:
        return "rejected"
    everyone = safety_statuses + business_statuses
    if everyone and all(status == "approved" for status in everyone):
        return "approved"
    return "conditional"


def run_result_resolve(data: CompleteData, chunks: Mapping[str, ChunkData]) -> RunResult:
    """The run's result from its ``complete`` message's ``data`` and each agent's last
    chunk with a result (``chunks``, by agent name), deriving what the message left out."""
    derived: dict[str, str] = {}
    phases: dict[str, dict[str, Any]] = {}
    for phase, given in (("safety", data.safety_phase), ("business", data.business_phase)):
        if given is not None:
            phases[phase] = given
            continue
        from_assessment = _phase_from_assessment(data.assessment, phase)
        from_chunks = None if from_assessment else _phase_from_chunks(chunks, phase)
        phases[phase] = from_assessment or from_chunks or {"agents": []}
        derived[f"{phase}_phase"] = (
            "assessment" if from_assessment else "chunks" if from_chunks else "none"
        )
    decision: Decision
    if data.final_decision is not None:
        decision = data.final_decision
    elif (in_assessment := data.assessment.get("final_decision")) in DECISIONS:
        decision = in_assessment
        derived["final_decision"] = "assessment"
    else:
        decision = decision_derive(phases["safety"], phases["business"])
        derived["final_decision"] = "agents"
    metadata = dict(data.metadata)
    if derived:
        metadata["derived"] = derived
    return RunResult(
        status=data.status,
        assessment=data.assessment,
        safety_phase=phases["safety"],
        business_phase=phases["business"],
        final_decision=decision,
        recommendations=data.recommendations,
        execution_time_ms=data.execution_time_ms,
        metadata=metadata,
    )
