"""The examples of the OpenAPI schema are true: the recorded answers to the example prompt
are what the running app answers today (ids and timings aside), and the documented errors
are the ones the app sends, word for word."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from skymarshal_api.web.schema import EXAMPLE_PROMPT, EXAMPLE_RESPONSE, EXAMPLE_STREAM
from tests.invocations.live import App, Stack, sse_parse
from tests.openapi import documented_error, openapi_document
from tests.signing import botocore_send

RERECORD = "run `make openapi-examples` then `make schema`, and commit the result"
# What changes from run to run: ids, clocks and durations.
VARYING = {"request_id", "session_id", "execution_time_ms"}
VARYING_METADATA = {
    "runtime_request_id",
    "session_id",
    "runtime_execution_time_ms",
    "time_to_first_chunk_ms",
}


def _stable(body: dict[str, Any]) -> dict[str, Any]:
    stable = {key: value for key, value in body.items() if key not in VARYING}
    if "metadata" in stable:
        stable["metadata"] = {
            key: value for key, value in stable["metadata"].items() if key not in VARYING_METADATA
        }
    return stable


@pytest.fixture(scope="module")
def app(invoke_stack: Stack) -> App:
    return invoke_stack.app()


def test_the_response_example_is_the_apps_answer_to_the_example_prompt(app: App) -> None:
    response = app.invoke({"prompt": EXAMPLE_PROMPT})
    assert response.status_code == 200, response.text
    assert _stable(response.json()) == _stable(EXAMPLE_RESPONSE), RERECORD


def test_the_stream_example_is_the_apps_stream_for_the_example_prompt(app: App) -> None:
    response = app.invoke({"prompt": EXAMPLE_PROMPT, "streaming": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    live, recorded = sse_parse(response.text), sse_parse(EXAMPLE_STREAM)
    assert [(e.id, e.event) for e in live] == [(e.id, e.event) for e in recorded], RERECORD
    assert [e.event for e in recorded] == ["start"] + ["chunk"] * 14 + ["complete"]
    for live_event, recorded_event in zip(live, recorded, strict=True):
        assert _stable(live_event.data) == _stable(recorded_event.data), RERECORD
    assert _stable(recorded[-1].data) == _stable(EXAMPLE_RESPONSE)


def test_the_documented_authentication_errors_are_the_apps(app: App) -> None:
    document = openapi_document()
    url = f"{app.api.http_url}/api/v1/identity"
    unsigned = httpx.get(url, timeout=15)
    assert unsigned.status_code == 401, unsigned.text
    documented = documented_error(document, "identity_get", 401, "UNAUTHORIZED")
    assert unsigned.json()["error_message"] == documented["error_message"]
    wrong_secret = botocore_send("GET", url, secret="not-the-secret")
    assert wrong_secret.status_code == 403, wrong_secret.text
    documented = documented_error(document, "identity_get", 403, "FORBIDDEN")
    assert wrong_secret.json()["error_message"] == documented["error_message"]


def test_the_documented_session_errors_are_the_apps(app: App) -> None:
    document = openapi_document()
    not_found = app.history("0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b")
    assert not_found.status_code == 404, not_found.text
    documented = documented_error(document, "session_history_get", 404, "SESSION_NOT_FOUND")
    assert not_found.json()["error_message"] == documented["error_message"]
    invalid = app.history("not-a-uuid")
    assert invalid.status_code == 400, invalid.text
    documented = documented_error(document, "session_history_get", 400, "INVALID_REQUEST")
    assert invalid.json()["error_message"] == documented["error_message"]
    assert invalid.json()["details"] == documented["details"]
    bad_cursor = botocore_send("GET", f"{app.api.http_url}/api/v1/sessions?cursor=xyz")
    assert bad_cursor.status_code == 400, bad_cursor.text
    documented = documented_error(document, "sessions_list", 400, "INVALID_CURSOR")
    assert bad_cursor.json()["error_message"] == documented["error_message"]


def test_the_documented_invoke_errors_are_the_apps(app: App) -> None:
    document = openapi_document()
    short = app.invoke({"prompt": "<<Delayed>>"})
    assert short.status_code == 400, short.text
    documented = documented_error(document, "invoke", 400, "INVALID_REQUEST")
    body = short.json()
    assert body["error_message"] == documented["error_message"]
    assert set(body["details"]["fields"]) == set(documented["details"]["fields"]) == {"prompt"}
    not_json = app.post(b"not json")
    assert not_json.status_code == 400, not_json.text
    documented = documented_error(document, "invoke", 400, "INVALID_JSON")
    assert not_json.json()["error_message"] == documented["error_message"]
    plain = app.post(b"prompt", content_type="text/plain")
    assert plain.status_code == 415, plain.text
    documented = documented_error(document, "invoke", 415, "UNSUPPORTED_MEDIA_TYPE")
    assert plain.json()["error_message"] == documented["error_message"]
    big = app.post(json.dumps({"prompt": "x" * (70_000 - 14)}).encode())
    assert big.status_code == 413, big.text
    documented = documented_error(document, "invoke", 413, "PAYLOAD_TOO_LARGE")
    assert big.json()["error_message"] == documented["error_message"]
    assert big.json()["details"] == documented["details"]
