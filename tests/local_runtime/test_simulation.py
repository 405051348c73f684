"""The simulation reads prompts the way an operations controller would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_runtime.runs import run_messages
from local_runtime.simulation import SessionMemory, disruption_parse


@pytest.mark.parametrize(
    ("prompt", "flight", "delay", "cause"),
    [
        ("Flight AA123 delayed 3 hours due to weather", "AA123", 180, "weather"),
        ("BA 2490 held 45 minutes for ATC flow control at LGW", "BA2490", 45, "atc"),
        ("U2 8123 AOG at BCN with an engine problem, 90 min", "U28123", 90, "maintenance"),
        ("LH400 delay of 2.5 h: first officer sick, no standby", "LH400", 150, "crew"),
        ("Flight 9W12 waiting for a runway to reopen", "9W12", None, "airport"),
        ("Something odd happened to our flight", None, None, "unknown"),
    ],
)
def test_prompt_facts_are_extracted(
    prompt: str, flight: str | None, delay: int | None, cause: str
) -> None:
    disruption = disruption_parse(prompt)
    assert (disruption.flight_number, disruption.delay_minutes, disruption.cause) == (
        flight,
        delay,
        cause,
    )


def test_follow_up_keeps_facts_the_prompt_leaves_out() -> None:
    first = disruption_parse("Flight QF1 delayed 2 hours at SYD, snow, 300 passengers")
    follow_up = disruption_parse("and if it grows to 9 hours?", first)
    assert follow_up.flight_number == "QF1"
    assert follow_up.delay_minutes == 540
    assert follow_up.cause == "weather"
    assert follow_up.airport == "SYD"
    assert follow_up.passengers == 300
    assert follow_up.context_from_previous_turn


def test_a_new_flight_in_a_session_starts_fresh() -> None:
    first = disruption_parse("Flight QF1 delayed 2 hours, snow")
    other = disruption_parse("Flight QF2 delayed 1 hour", first)
    assert other.flight_number == "QF2"
    assert other.cause == "unknown"
    assert not other.context_from_previous_turn


def _complete(prompt: str) -> dict:  # type: ignore[type-arg]
    messages = list(
        run_messages(prompt=prompt, session_id="s", request_id="r", memory=SessionMemory())
    )
    return messages[-1]["data"]  # type: ignore[no-any-return]


def test_a_short_weather_delay_is_approved() -> None:
    assert _complete("Flight AA123 delayed 30 minutes due to fog")["final_decision"] == "approved"


def test_a_crew_problem_is_vetoed_by_safety() -> None:
    data = _complete("Flight AA123 delayed 1 hour, captain called in sick")
    assert data["safety_phase"]["status"] == "rejected"
    assert data["final_decision"] == "rejected"
    assert data["recommendations"][0].startswith("Call out standby crew")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=400))
def test_every_prompt_gets_a_complete_consistent_assessment(prompt: str) -> None:
    data = _complete(prompt)
    safety = data["safety_phase"]["agents"]
    business = data["business_phase"]["agents"]
    assert len(safety) == 3
    assert len(business) == 4
    statuses = {a["status"] for a in safety + business}
    assert statuses <= {"approved", "conditional", "rejected"}
    if any(a["status"] == "rejected" for a in safety):
        assert data["final_decision"] == "rejected"
    elif statuses == {"approved"}:
        assert data["final_decision"] == "approved"
    else:
        assert data["final_decision"] == "conditional"
    assert data == _complete(prompt) | {"execution_time_ms": data["execution_time_ms"]}


def test_huge_numbers_and_long_prompts_are_read_without_failing() -> None:
    disruption = disruption_parse("Flight AA1 delayed 2 hours, " + "9" * 400 + " passengers")
    assert disruption.passengers == 1_000_000_000
    assert disruption_parse("1" * 100_000).flight_number is None
