"""A deterministic stand-in for the SkyMarshal agents.

It reads a disruption prompt the way an operations controller would (which flight, how
long a delay, what caused it, who and what is on board), runs the seven agents in their
two phases and derives the final decision. The same prompt in the same session always
gives the same assessment, so tests can assert on it and a person can read it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Decision = Literal["approved", "conditional", "rejected"]
Cause = Literal[
    "weather", "maintenance", "crew", "atc", "security", "airport", "medical", "unknown"
]

SAFETY_AGENTS = ("crew_compliance", "maintenance", "regulatory")
BUSINESS_AGENTS = ("network", "guest_experience", "cargo", "finance")
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("safety", SAFETY_AGENTS),
    ("business", BUSINESS_AGENTS),
)

# Keyword → cause, in priority order: the first cause with a keyword in the prompt wins.
_CAUSE_KEYWORDS: tuple[tuple[Cause, tuple[str, ...]], ...] = (
    ("security", ("security", "bomb", "threat", "unruly")),
    ("medical", ("medical", "diversion", "diverted", "ill passenger")),
    (
        "maintenance",
        (
            "maintenance",
            "mechanical",
            "technical",
            "engine",
            "hydraulic",
            "aog",
            "bird strike",
            "tyre",
            "tire",
            "apu",
            "avionics",
            "fault",
        ),
    ),
    ("crew", ("crew", "pilot", "captain", "first officer", "cabin staff", "duty time")),
    ("atc", ("atc", "air traffic", "ground stop", "flow control", "slot", "airspace")),
    (
        "weather",
        (
            "weather",
            "storm",
            "thunderstorm",
            "snow",
            "fog",
            "ice",
            "icing",
            "wind",
            "hurricane",
            "typhoon",
            "volcanic",
            "de-icing",
        ),
    ),
    ("airport", ("runway", "gate", "fuel", "baggage system", "power outage", "strike")),
)
# Causes outside the airline's control: no passenger compensation is due for them.
_EXTRAORDINARY: frozenset[Cause] = frozenset({"weather", "atc", "security", "medical"})

_FLIGHT = re.compile(r"\b([A-Z]{2}|[A-Z]\d|\d[A-Z])\s?(\d{1,4})\b")
# Each number pattern starts only where a number starts ((?<![\d.,])): without that, a
# long run of digits costs quadratic backtracking.
_DELAY = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m)\b(?!\w)", re.IGNORECASE
)
_PASSENGERS = re.compile(
    r"(?<![\d,])(\d[\d,]*)\s*(?:passengers|pax|guests|travellers|travelers)\b", re.I
)
_AIRPORT = re.compile(r"\b(?:at|from|to|in|into|out of)\s+([A-Z]{3})\b")
_CARGO_KG = re.compile(r"(?<![\d.,])(\d[\d,]*(?:\.\d+)?)\s*(kg|tonnes?|tons?|t)\b", re.IGNORECASE)

# Planned duty of the operating crew before the disruption; the flight duty period
# limit (EASA ORO.FTL.205 basic maximum for a mid-day report) and the limit reachable
# only with the commander's discretion.
_PLANNED_DUTY_MINUTES = 9 * 60
_FDP_LIMIT_MINUTES = 13 * 60
_FDP_DISCRETION_MINUTES = 15 * 60


@dataclass(frozen=True)
class Disruption:
    flight_number: str | None
    delay_minutes: int | None
    cause: Cause
    cancelled: bool
    airport: str | None
    passengers: int
    cargo_kg: float
    perishable_cargo: bool
    live_animals: bool
    context_from_previous_turn: bool = False

    @property
    def effective_delay_minutes(self) -> int:
        if self.cancelled:
            return 24 * 60
        return self.delay_minutes if self.delay_minutes is not None else 60

    @property
    def severity(self) -> str:
        delay = self.effective_delay_minutes
        if self.cancelled or delay >= 8 * 60:
            return "critical"
        if delay >= 4 * 60:
            return "high"
        if delay >= 2 * 60:
            return "medium"
        return "low"


@dataclass(frozen=True)
class AgentAssessment:
    agent_name: str
    phase: str
    status: Decision
    confidence: float
    reasoning: str
    constraints: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_name": self.agent_name,
            "phase": self.phase,
            "status": self.status,
            "confidence": self.confidence,
            "reasoning": self.reasoning,
            "constraints": list(self.constraints),
            "recommendations": list(self.recommendations),
        }


def _number(text: str) -> float:
    # Capped: a prompt may hold any digits, and int(inf) raises.
    return min(float(text.replace(",", "")), 1e9)


def _delay_minutes(prompt: str) -> int | None:
    """The last duration in the prompt (a follow-up's "grows to 6 hours" is the new delay)."""
    matches = list(_DELAY.finditer(prompt))
    if not matches:
        if re.search(r"\bovernight\b", prompt, re.I):
            return 12 * 60
        return None
    value, unit = matches[-1].groups()
    minutes = _number(value) * (60 if unit.lower().startswith("h") else 1)
    return round(minutes)


def _cause(prompt: str) -> Cause:
    lowered = prompt.lower()
    for cause, keywords in _CAUSE_KEYWORDS:
        for keyword in keywords:
            if re.search(rf"\b{re.escape(keyword)}", lowered):
                return cause
    return "unknown"


def _cargo_kg(prompt: str) -> float:
    match = _CARGO_KG.search(prompt)
    if match is None:
        return 0.0
    value, unit = match.groups()
    return _number(value) * (1 if unit.lower() == "kg" else 1000)


def disruption_parse(prompt: str, previous: Disruption | None = None) -> Disruption:
    """Read a disruption from ``prompt``; facts the prompt leaves out come from ``previous``
    (the session's earlier turn), so a follow-up can say just "what if it grows to 6 hours?"."""
    # The facts are in the first lines of any real prompt (the runtime reads up to 100,000
    # characters); a bound keeps the parse cheap whatever arrives.
    prompt = prompt[:10_000]
    flight_match = _FLIGHT.search(prompt)
    flight = "".join(flight_match.groups()) if flight_match else None
    delay = _delay_minutes(prompt)
    cause = _cause(prompt)
    lowered = prompt.lower()
    cancelled = bool(re.search(r"\bcancel", lowered))
    airport_match = _AIRPORT.search(prompt)
    passengers_match = _PASSENGERS.search(prompt)
    cargo_kg = _cargo_kg(prompt)
    perishable = bool(re.search(r"perishable|pharma|vaccine|fresh", lowered))
    live_animals = bool(re.search(r"live animal|\bpets?\b|\bavi\b", lowered))

    follow_up = previous is not None and (flight is None or flight == previous.flight_number)
    if previous is not None and follow_up:
        return Disruption(
            flight_number=previous.flight_number,
            delay_minutes=delay if delay is not None else previous.delay_minutes,
            cause=cause if cause != "unknown" else previous.cause,
            cancelled=cancelled or previous.cancelled,
            airport=airport_match.group(1) if airport_match else previous.airport,
            passengers=int(_number(passengers_match.group(1)))
            if passengers_match
            else previous.passengers,
            cargo_kg=cargo_kg or previous.cargo_kg,
            perishable_cargo=perishable or previous.perishable_cargo,
            live_animals=live_animals or previous.live_animals,
            context_from_previous_turn=True,
        )
    return Disruption(
        flight_number=flight,
        delay_minutes=delay,
        cause=cause,
        cancelled=cancelled,
        airport=airport_match.group(1) if airport_match else None,
        passengers=int(_number(passengers_match.group(1))) if passengers_match else 180,
        cargo_kg=cargo_kg,
        perishable_cargo=perishable,
        live_animals=live_animals,
    )


def _hours(minutes: int) -> str:
    hours = minutes / 60
    return f"{hours:g} h" if hours >= 1 else f"{minutes} min"


def _crew_compliance(d: Disruption) -> AgentAssessment:
    duty = _PLANNED_DUTY_MINUTES + d.effective_delay_minutes
    constraints = [f"Flight duty period limit {_hours(_FDP_LIMIT_MINUTES)}"]
    if d.cause == "crew" or duty > _FDP_DISCRETION_MINUTES:
        reason = (
            "the disruption is crew-related"
            if d.cause == "crew"
            else f"projected duty {_hours(duty)} exceeds even the discretion limit"
        )
        return AgentAssessment(
            "crew_compliance",
            "safety",
            "rejected",
            0.93,
            f"The scheduled crew cannot operate: {reason}.",
            [*constraints, "Operating crew must be replaced"],
            ["Call out standby crew and reposition them to the departure station"],
        )
    if duty > _FDP_LIMIT_MINUTES:
        return AgentAssessment(
            "crew_compliance",
            "safety",
            "conditional",
            0.86,
            f"Projected duty {_hours(duty)} exceeds the {_hours(_FDP_LIMIT_MINUTES)} limit "
            "and is only legal with commander's discretion.",
            [*constraints, "Commander's discretion report required"],
            ["Obtain the commander's discretion and alert standby crew as a fallback"],
        )
    return AgentAssessment(
        "crew_compliance",
        "safety",
        "approved",
        0.95,
        f"Projected duty {_hours(duty)} stays within the {_hours(_FDP_LIMIT_MINUTES)} limit.",
        constraints,
        [],
    )


def _maintenance(d: Disruption) -> AgentAssessment:
    if d.cause != "maintenance":
        return AgentAssessment(
            "maintenance",
            "safety",
            "approved",
            0.92,
            "No technical defect is reported; the aircraft remains airworthy.",
            [],
            [],
        )
    if d.effective_delay_minutes < 120:
        return AgentAssessment(
            "maintenance",
            "safety",
            "rejected",
            0.84,
            "A technical defect cannot be rectified and certified within "
            f"{_hours(d.effective_delay_minutes)}.",
            ["Aircraft must be released to service by certifying staff"],
            ["Swap to a serviceable aircraft rather than wait for the repair"],
        )
    return AgentAssessment(
        "maintenance",
        "safety",
        "conditional",
        0.81,
        "The defect can be rectified within the delay if parts and engineers are on hand.",
        ["Aircraft must be released to service by certifying staff", "MEL items reviewed"],
        ["Confirm parts availability and obtain the certificate of release to service"],
    )


def _regulatory(d: Disruption) -> AgentAssessment:
    delay = d.effective_delay_minutes
    constraints = []
    recommendations = []
    if delay >= 180:
        constraints.append("Passenger rights notice required (EU261 / DOT)")
        recommendations.append("Issue passenger rights notices at the gate and by SMS")
    if d.cause == "security":
        return AgentAssessment(
            "regulatory",
            "safety",
            "rejected",
            0.9,
            "A security event requires clearance from the authorities before departure.",
            [*constraints, "Security clearance from the airport authority"],
            ["Hold the flight until the authorities clear it", *recommendations],
        )
    if delay >= 6 * 60:
        return AgentAssessment(
            "regulatory",
            "safety",
            "conditional",
            0.82,
            f"A {_hours(delay)} delay may breach the night curfew and needs a new slot.",
            [*constraints, "Night curfew", "New ATC slot required"],
            ["Request a new departure slot and check curfew at the destination", *recommendations],
        )
    return AgentAssessment(
        "regulatory",
        "safety",
        "approved",
        0.9,
        f"A {_hours(delay)} delay keeps the flight within slot and curfew rules.",
        constraints,
        recommendations,
    )


def _network(d: Disruption) -> AgentAssessment:
    delay = d.effective_delay_minutes
    misconnect_share = min(0.6, delay / 600)
    misconnections = round(d.passengers * 0.35 * misconnect_share)
    if delay >= 5 * 60:
        return AgentAssessment(
            "network",
            "business",
            "rejected",
            0.8,
            f"A {_hours(delay)} delay breaks the aircraft's next rotations; "
            f"about {misconnections} passengers miss connections.",
            ["Downstream rotations of the same aircraft"],
            ["Swap aircraft or cancel and consolidate with the next departure"],
        )
    if delay >= 120:
        return AgentAssessment(
            "network",
            "business",
            "conditional",
            0.83,
            f"About {misconnections} passengers risk missing connections.",
            ["Minimum connection times at the hub"],
            ["Protect connecting passengers on later flights"],
        )
    return AgentAssessment(
        "network",
        "business",
        "approved",
        0.9,
        "The delay is absorbed by the schedule buffer; connections hold.",
        [],
        [],
    )


def _guest_experience(d: Disruption) -> AgentAssessment:
    delay = d.effective_delay_minutes
    recommendations = []
    if delay >= 120:
        recommendations.append(f"Issue meal vouchers to {d.passengers} passengers")
    if delay >= 240:
        recommendations.append("Offer free rebooking and refunds")
    if delay >= 8 * 60:
        recommendations.append("Book hotel rooms and ground transport for an overnight stay")
    status: Decision = "conditional" if recommendations else "approved"
    return AgentAssessment(
        "guest_experience",
        "business",
        status,
        0.88,
        f"{d.passengers} passengers face a {_hours(delay)} delay; care is "
        f"{'required' if recommendations else 'not required'}.",
        ["Duty of care under passenger rights rules"] if recommendations else [],
        recommendations,
    )


def _cargo(d: Disruption) -> AgentAssessment:
    delay = d.effective_delay_minutes
    if (d.perishable_cargo or d.live_animals) and delay >= 180:
        kind = "live animals" if d.live_animals else "perishable cargo"
        return AgentAssessment(
            "cargo",
            "business",
            "conditional",
            0.85,
            f"The {kind} on board cannot wait {_hours(delay)}.",
            ["Cold chain / animal welfare limits"],
            [f"Offload the {kind} and transfer it to the next available flight"],
        )
    cargo = f"{d.cargo_kg:g} kg of cargo" if d.cargo_kg else "The cargo"
    return AgentAssessment(
        "cargo",
        "business",
        "approved",
        0.9,
        f"{cargo} tolerates the delay.",
        [],
        [],
    )


def _finance(d: Disruption) -> AgentAssessment:
    delay = d.effective_delay_minutes
    compensation = 0
    if delay >= 180 and d.cause not in _EXTRAORDINARY:
        compensation = d.passengers * 400
    care = d.passengers * (15 if delay >= 120 else 0) + d.passengers * (
        120 if delay >= 8 * 60 else 0
    )
    crew = 4000 if d.cause == "crew" or delay >= 6 * 60 else 0
    total = compensation + care + crew
    status: Decision = "approved" if total < 50_000 else "conditional"
    return AgentAssessment(
        "finance",
        "business",
        status,
        0.78,
        f"Estimated cost EUR {total:,}: compensation {compensation:,}, passenger care {care:,}, "
        f"crew {crew:,}.",
        ["Passenger compensation is due"] if compensation else [],
        ["Weigh cancellation against the cost of operating late"] if status != "approved" else [],
    )


AGENTS = {
    "crew_compliance": _crew_compliance,
    "maintenance": _maintenance,
    "regulatory": _regulatory,
    "network": _network,
    "guest_experience": _guest_experience,
    "cargo": _cargo,
    "finance": _finance,
}


def agent_run(agent: str, disruption: Disruption) -> AgentAssessment:
    return AGENTS[agent](disruption)


def phase_decision(assessments: list[AgentAssessment]) -> Decision:
    statuses = {a.status for a in assessments}
    if "rejected" in statuses:
        return "rejected"
    if "conditional" in statuses:
        return "conditional"
    return "approved"


def final_decision(safety: list[AgentAssessment], business: list[AgentAssessment]) -> Decision:
    """Safety vetoes: a rejecting safety agent rejects the plan. Anything short of approval
    elsewhere makes the plan conditional on its constraints."""
    if phase_decision(safety) == "rejected":
        return "rejected"
    if phase_decision(safety + business) != "approved":
        return "conditional"
    return "approved"


def recommendations_prioritize(assessments: list[AgentAssessment]) -> list[str]:
    """Safety before business; within a phase, rejecting agents before conditional ones."""
    rank = {"rejected": 0, "conditional": 1, "approved": 2}
    ordered = sorted(
        enumerate(assessments),
        key=lambda item: (item[1].phase != "safety", rank[item[1].status], item[0]),
    )
    seen: list[str] = []
    for _, assessment in ordered:
        for recommendation in assessment.recommendations:
            if recommendation not in seen:
                seen.append(recommendation)
    return seen


def assessment_summary(d: Disruption, decision: Decision) -> dict[str, Any]:
    flight = d.flight_number or "The flight"
    what = "cancellation" if d.cancelled else f"{_hours(d.effective_delay_minutes)} delay"
    where = f" at {d.airport}" if d.airport else ""
    return {
        "flight_number": d.flight_number,
        "disruption_type": "cancellation" if d.cancelled else "delay",
        "cause": d.cause,
        "delay_minutes": d.delay_minutes,
        "airport": d.airport,
        "affected_passengers": d.passengers,
        "severity": d.severity,
        "summary": f"{flight}: {what}{where} caused by {d.cause}; decision {decision}.",
    }


class SessionMemory:
    """What each session's last turn was about, like an AgentCore session's memory. Bounded
    (least recently used sessions are forgotten first), because a runtime's memory is."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._turns: OrderedDict[str, tuple[int, Disruption]] = OrderedDict()
        # WebSocket runs and /invocations runs happen on different threads.
        self._lock = threading.Lock()

    def recall(self, session_id: str) -> tuple[int, Disruption | None]:
        """(turns so far, the last disruption) for ``session_id``."""
        with self._lock:
            if session_id not in self._turns:
                return 0, None
            self._turns.move_to_end(session_id)
            return self._turns[session_id]

    def remember(self, session_id: str, disruption: Disruption) -> int:
        with self._lock:
            turns = self._turns[session_id][0] if session_id in self._turns else 0
            self._turns[session_id] = (turns + 1, replace(disruption))
            self._turns.move_to_end(session_id)
            while len(self._turns) > self._capacity:
                self._turns.popitem(last=False)
            return turns + 1
