"""POST /api/v1/invoke, buffered, against the running app and the local runtime: the
InvokeResponse (Property 4), the interaction it records, sessions (new, continued,
client-chosen, someone else's) and the invoke rate limit."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from invocations.serializers import InvokeResponseSerializer
from tests.invocations.live import (
    INVOKE_LIMIT,
    LIMITED,
    OTHER,
    PROMPT,
    App,
    Stack,
    assert_error,
    assert_invoke_response,
    assert_no_connection_left,
    new_session_id,
)

LIMIT = 2
LIMIT_WINDOW = 3600


@pytest.fixture(scope="module")
def app(invoke_stack: Stack) -> App:
    return invoke_stack.app()


@pytest.fixture(scope="module")
def limited_app(invoke_stack: Stack) -> App:
    """Its own caller (LIMITED) and window, so that no other test's calls count."""
    return invoke_stack.app(
        RATE_LIMIT_INVOKE_PER_WINDOW=str(LIMIT), RATE_LIMIT_WINDOW_SECONDS=str(LIMIT_WINDOW)
    )


@pytest.fixture(scope="module")
def first(app: App) -> httpx.Response:
    """One buffered run of PROMPT in a new session, shared by the tests that look at it."""
    return app.invoke({"prompt": PROMPT})


# --- the response --------------------------------------------------------------------------


def test_a_buffered_invoke_answers_200_with_the_invoke_response(
    app: App, first: httpx.Response
) -> None:
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert_invoke_response(body, request_id=first.headers["X-Request-ID"])
    serializer = InvokeResponseSerializer(data=body)
    assert serializer.is_valid(), serializer.errors

    assert body["assessment"]["flight_number"] == "UA45"
    assert body["assessment"]["delay_minutes"] == 90
    assert body["assessment"]["cause"] == "weather"
    metadata = body["metadata"]
    assert metadata["new_session"] is True
    assert metadata["connect_attempts"] == 1
    assert metadata["session_id"] == body["session_id"]  # the runtime ran it in that session
    assert metadata["turn"] == 1
    assert metadata["agents_executed"] == 7
    assert 0 <= metadata["runtime_execution_time_ms"] <= body["execution_time_ms"]
    assert 0 < metadata["time_to_first_chunk_ms"] <= body["execution_time_ms"]
    assert metadata["api_version"]
    assert_no_connection_left(app.runtime.port)


def test_the_interaction_is_recorded_as_success_with_the_response(
    app: App, first: httpx.Response
) -> None:
    body = first.json()
    history = app.history(body["session_id"])
    assert history.status_code == 200, history.text
    assert history.json()["interaction_count"] == 1
    [interaction] = history.json()["interactions"]
    assert interaction["status"] == "success"
    assert interaction["session_id"] == body["session_id"]
    assert interaction["request_id"] == body["request_id"]
    assert interaction["prompt"] == PROMPT
    assert interaction["execution_time_ms"] == body["execution_time_ms"]
    assert interaction["error_message"] is None
    stored = {k: v for k, v in body.items() if k not in ("request_id", "session_id")}
    assert interaction["response"] == stored


# --- sessions ------------------------------------------------------------------------------


def test_a_follow_up_in_the_session_is_about_the_same_flight(app: App) -> None:
    opening = app.invoke({"prompt": PROMPT})
    assert opening.status_code == 200, opening.text
    session_id = opening.json()["session_id"]

    follow_up = app.invoke(
        {"prompt": "what if the delay grows to 6 hours?", "session_id": session_id}
    )

    assert follow_up.status_code == 200, follow_up.text
    body = follow_up.json()
    assert_invoke_response(body, request_id=follow_up.headers["X-Request-ID"])
    assert body["session_id"] == session_id
    assert body["request_id"] != opening.json()["request_id"]
    assert body["assessment"]["flight_number"] == "UA45"
    assert body["assessment"]["delay_minutes"] == 360
    assert body["assessment"]["cause"] == "weather"
    assert body["metadata"]["turn"] == 2
    assert body["metadata"]["context_from_previous_turn"] is True
    assert body["metadata"]["new_session"] is False
    interactions = app.interactions(session_id)
    assert [i["prompt"] for i in interactions] == [
        PROMPT,
        "what if the delay grows to 6 hours?",
    ]
    assert [i["status"] for i in interactions] == ["success", "success"]
    assert [i["request_id"] for i in interactions] == [
        opening.json()["request_id"],
        body["request_id"],
    ]


def test_a_new_client_chosen_session_id_starts_that_session(app: App) -> None:
    session_id = new_session_id()
    assert app.history(session_id).status_code == 404

    response = app.invoke({"prompt": PROMPT, "session_id": session_id})

    assert response.status_code == 200, response.text
    body = response.json()
    assert_invoke_response(body, request_id=response.headers["X-Request-ID"])
    assert body["session_id"] == session_id
    assert body["metadata"]["session_id"] == session_id
    assert body["metadata"]["turn"] == 1
    history = app.history(session_id).json()
    assert history["interaction_count"] == 1
    assert history["interactions"][0]["request_id"] == body["request_id"]
    assert session_id in app.session_ids()


def test_another_principal_cannot_use_a_session_it_does_not_own(app: App) -> None:
    owned = app.invoke({"prompt": PROMPT})
    assert owned.status_code == 200, owned.text
    session_id = owned.json()["session_id"]

    response = app.invoke(
        {"prompt": "what if the delay grows to 6 hours?", "session_id": session_id}, **OTHER
    )

    error = assert_error(response, 404, "SESSION_NOT_FOUND")
    assert session_id not in json.dumps(error)  # nothing about the session is told
    assert [i["request_id"] for i in app.interactions(session_id)] == [owned.json()["request_id"]]
    assert app.history(session_id, **OTHER).status_code == 404
    assert app.session_ids(**OTHER) == []


# --- the prompt the runtime gets is the sanitized one (Property 8) ----------------------------


def test_a_prompt_is_sanitized_before_it_is_run_and_recorded(app: App) -> None:
    prompt = "  <b>Flight UA45</b> delayed {90} minutes\x07\x1b due to\tweather\x7f\n "

    response = app.invoke({"prompt": prompt})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["assessment"]["flight_number"] == "UA45"
    [interaction] = app.interactions(body["session_id"])
    assert interaction["prompt"] == "bFlight UA45/b delayed 90 minutes due to\tweather"


def test_a_prompt_with_a_nul_character_is_sanitized_not_rejected(app: App) -> None:
    """NUL is a control character: Property 8 removes it like \\x07 above. (DRF's
    CharField rejects it before the sanitizer runs: "Null characters are not allowed.")"""
    response = app.invoke({"prompt": f"{PROMPT}\x00"})

    assert response.status_code == 200, response.text
    [interaction] = app.interactions(response.json()["session_id"])
    assert interaction["prompt"] == PROMPT


# --- rate limit ----------------------------------------------------------------------------


def _rate_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["X-RateLimit-Limit"]),
        int(response.headers["X-RateLimit-Remaining"]),
        int(response.headers["X-RateLimit-Reset"]),
    )


def test_invoke_responses_carry_the_rate_limit_headers(app: App) -> None:
    first_call = app.invoke({"prompt": PROMPT})
    second_call = app.invoke({"prompt": PROMPT})
    rejected = app.invoke({"prompt": "too short"})

    assert first_call.status_code == second_call.status_code == 200
    assert rejected.status_code == 400
    limits = [_rate_headers(r) for r in (first_call, second_call, rejected)]
    assert {limit for limit, _, _ in limits} == {INVOKE_LIMIT}
    remaining = [left for _, left, _ in limits]
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[0] > remaining[-1]
    assert all(1 <= reset <= 60 for _, _, reset in limits)


def test_the_invoke_rate_limit_is_enforced(limited_app: App) -> None:
    left = LIMIT_WINDOW - time.time() % LIMIT_WINDOW
    if left < 20:  # the calls must fall in one window
        time.sleep(left + 0.5)
    session_id = new_session_id()
    accepted = [
        limited_app.invoke({"prompt": PROMPT, "session_id": session_id}, **LIMITED)
        for _ in range(LIMIT)
    ]
    assert [r.status_code for r in accepted] == [200] * LIMIT
    assert [_rate_headers(r)[:2] for r in accepted] == [(LIMIT, 1), (LIMIT, 0)]

    response = limited_app.invoke({"prompt": PROMPT, "session_id": session_id}, **LIMITED)

    error = assert_error(response, 429, "RATE_LIMITED")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= LIMIT_WINDOW
    assert _rate_headers(response) == (LIMIT, 0, retry_after)
    details: dict[str, Any] = error["details"]
    assert details["limit"] == LIMIT
    assert details["window_seconds"] == LIMIT_WINDOW
    # The refused call ran nothing and recorded nothing; other callers are not limited.
    interactions = limited_app.interactions(session_id, **LIMITED)
    assert [i["request_id"] for i in interactions] == [r.json()["request_id"] for r in accepted]
    assert limited_app.invoke({"prompt": PROMPT}, **OTHER).status_code == 200
