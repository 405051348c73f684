"""What an invocation leaves in the running server's output (gunicorn, read from its log
file): JSON log lines carrying the request's keys, and EMF documents, for a success, a
runtime failure, a 400, a rate-limit rejection and streamed runs (ended, or left by the
client)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from skymarshal_api.telemetry.logs import prompt_hmac
from tests.invocations.live import (
    LIMITED,
    PROMPT,
    App,
    Stack,
    assert_error,
    new_session_id,
    sse_events_incrementally,
)
from tests.signing import DEV_PRINCIPAL

LIMITED_PRINCIPAL = "arn:aws:iam::000000000000:user/invoke-limited"


@dataclass(frozen=True)
class Output:
    """A request's log lines and EMF documents, in the order the server wrote them."""

    logs: list[dict[str, Any]]
    emf: list[dict[str, Any]]

    def line(self, message: str) -> dict[str, Any]:
        [line] = [line for line in self.logs if line["message"] == message]
        return line

    def metric(self, name: str, **dimensions: str) -> list[float]:
        """The values of ``name`` in the document with exactly these dimensions (besides
        ``service``), after checking the document's EMF shape."""
        found = []
        for document in self.emf:
            for directive in document["_aws"]["CloudWatchMetrics"]:
                names = [metric["Name"] for metric in directive["Metrics"]]
                [keys] = directive["Dimensions"]
                assert all(key in document for key in keys), document
                if (
                    name in names
                    and set(keys) == {"service", *dimensions}
                    and all(document[key] == value for key, value in dimensions.items())
                ):
                    found.append(document)
        assert len(found) == 1, (name, dimensions, self.emf)
        values = found[0][name]
        assert isinstance(values, list)
        return [float(value) for value in values]


def output_of(app: App, request_id: str, *, until: str = "request", within: float = 10) -> Output:
    """The lines of ``request_id`` in the server's output, once ``until`` was logged (a
    stream's request line is written after its last byte was sent)."""
    deadline = time.monotonic() + within
    while True:
        logs, emf = [], []
        for document in app.api.json_documents():
            if document.get("request_id") != request_id:
                continue
            (emf if "_aws" in document else logs).append(document)
        if any(line["message"] == until for line in logs) and emf:
            return Output(logs, emf)
        assert time.monotonic() < deadline, f"no {until!r} line for {request_id}: {logs}"
        time.sleep(0.05)


def _assert_json_lines_have_keys(output: Output, request_id: str, principal: str) -> None:
    for line in output.logs:
        assert line["request_id"] == request_id
        assert line["service"] == "skymarshal-api"
        assert line["level"] in ("INFO", "WARNING", "ERROR")
        assert line["timestamp"].endswith("+00:00")
        assert line["principal"] == principal, line
    for document in output.emf:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "SkyMarshalApi"
        assert document["service"] == "skymarshal-api"
        assert isinstance(document["_aws"]["Timestamp"], int)


def test_a_success_logs_its_keys_times_and_prompt_fingerprint(invoke_stack: Stack) -> None:
    app = invoke_stack.app()
    session_id = new_session_id()
    response = app.invoke({"prompt": PROMPT, "session_id": session_id})
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-ID"]

    output = output_of(app, request_id)
    _assert_json_lines_have_keys(output, request_id, DEV_PRINCIPAL)
    started = output.line("invocation accepted")
    assert started["session_id"] == session_id
    assert started["prompt_length"] == len(PROMPT)
    assert started["prompt_hmac"] == prompt_hmac(PROMPT)
    assert "prompt_sha256" not in started
    assert hashlib.sha256(PROMPT.encode()).hexdigest() not in json.dumps(output.logs)
    assert started["streaming"] is False
    runtime = output.line("runtime invocation")
    assert runtime["outcome"] == "success"
    assert runtime["chunks"] == 14  # 7 agents, analyzing and completed
    assert runtime["connect_attempts"] == 1
    assert 0 <= runtime["time_to_first_chunk_ms"] <= runtime["runtime_duration_ms"]
    request = output.line("request")
    assert request["session_id"] == session_id
    assert (request["method"], request["path"], request["route"]) == (
        "POST",
        "/api/v1/invoke",
        "api/v1/invoke",
    )
    assert request["status"] == 200
    assert request["level"] == "INFO"
    assert "error_code" not in request
    assert request["streamed"] is False
    assert request["response_bytes"] == len(response.content)
    assert request["prompt_hmac"] == prompt_hmac(PROMPT)
    timings = request["timings_ms"]
    # The connection is opened while the write-ahead record is written.
    assert timings["runtime"] + timings["persistence"] >= runtime["runtime_duration_ms"] - 5
    assert request["duration_ms"] >= timings["persistence"] + timings["runtime"]
    server_timing = response.headers["Server-Timing"]
    assert "instrumentation;dur=" in server_timing
    assert all(PROMPT not in json.dumps(line) for line in output.logs + output.emf)

    assert output.metric("Requests", route="api/v1/invoke") == [1.0]
    [latency] = output.metric("Latency", route="api/v1/invoke")
    assert abs(latency - request["duration_ms"]) < 0.01
    assert output.metric("RuntimeInvocations", outcome="success") == [1.0]
    [duration] = output.metric("RuntimeDuration", outcome="success")
    assert abs(duration - runtime["runtime_duration_ms"]) < 0.01
    [first_chunk] = output.metric("TimeToFirstChunk")
    assert abs(first_chunk - runtime["time_to_first_chunk_ms"]) < 0.01
    # The rate-limit count (UpdateItem); the write-ahead record with its run and the
    # completion that frees the session (two transactions).
    assert output.metric("DynamoDbCalls", operation="UpdateItem") == [1.0]
    assert output.metric("DynamoDbCalls", operation="TransactWriteItems") == [1.0, 1.0]
    assert all(v > 0 for v in output.metric("DynamoDbLatency", operation="UpdateItem"))
    assert not any("Errors" in document for document in output.emf)
    assert not any("DynamoDbFailures" in document for document in output.emf)


def test_a_runtime_failure_logs_and_counts_its_error_code(invoke_stack: Stack) -> None:
    app = invoke_stack.fault("error-message")
    response = app.invoke({"prompt": PROMPT})
    assert_error(response, 502, "RUNTIME_ERROR")
    request_id = response.headers["X-Request-ID"]

    output = output_of(app, request_id)
    _assert_json_lines_have_keys(output, request_id, DEV_PRINCIPAL)
    runtime = output.line("runtime invocation")
    assert (runtime["outcome"], runtime["error_code"], runtime["level"]) == (
        "failure",
        "RUNTIME_ERROR",
        "WARNING",
    )
    request = output.line("request")
    assert (request["status"], request["error_code"], request["level"]) == (
        502,
        "RUNTIME_ERROR",
        "ERROR",
    )
    assert request["runtime_outcome"] == "failure"
    # The runtime's own error details are in the log, never in the response.
    assert any(line["message"].startswith("Runtime error") for line in output.logs)
    assert "exception" not in request  # an expected failure: no traceback

    assert output.metric("Errors", error_code="RUNTIME_ERROR") == [1.0]
    assert output.metric("RuntimeInvocations", outcome="failure") == [1.0]
    assert output.metric("Requests", route="api/v1/invoke") == [1.0]


def test_a_400_logs_its_error_code_and_nothing_of_the_body(invoke_stack: Stack) -> None:
    app = invoke_stack.app()
    short = "Too short"
    response = app.invoke({"prompt": short, "streaming": "maybe"})
    assert_error(response, 400, "INVALID_REQUEST")
    request_id = response.headers["X-Request-ID"]

    output = output_of(app, request_id)
    _assert_json_lines_have_keys(output, request_id, DEV_PRINCIPAL)
    request = output.line("request")
    assert (request["status"], request["error_code"], request["level"]) == (
        400,
        "INVALID_REQUEST",
        "INFO",
    )
    assert "prompt_hmac" not in request
    assert "runtime_outcome" not in request
    assert not any(line["message"] == "invocation accepted" for line in output.logs)
    assert all(short not in json.dumps(line) for line in output.logs + output.emf)
    assert output.metric("Errors", error_code="INVALID_REQUEST") == [1.0]
    assert output.metric("Requests", route="api/v1/invoke") == [1.0]
    assert not any("RuntimeInvocations" in document for document in output.emf)


def test_rate_limit_rejections_are_counted_under_the_configured_namespace(
    invoke_stack: Stack,
) -> None:
    app = invoke_stack.app(
        RATE_LIMIT_INVOKE_PER_WINDOW="1",
        METRICS_NAMESPACE="SkyMarshalApiTest",
        METRICS_DIMENSIONS=json.dumps({"stage": "test"}),
    )
    # Three: two of them fall in the same minute window even when a minute begins between.
    responses = [app.invoke({"prompt": "x"}, **LIMITED) for _ in range(3)]
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected, [r.status_code for r in responses]
    request_id = rejected[0].headers["X-Request-ID"]

    output = output_of(app, request_id)
    assert output.line("request")["principal"] == LIMITED_PRINCIPAL
    for document in output.emf:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "SkyMarshalApiTest"
            assert "stage" in directive["Dimensions"][0]
        assert document["stage"] == "test"
    rejections = [d for d in output.emf if "RateLimitRejections" in d]
    assert [(d["scope"], d["RateLimitRejections"]) for d in rejections] == [("invoke", [1.0])]
    errors = [d for d in output.emf if "Errors" in d]
    assert [(d["error_code"], d["Errors"]) for d in errors] == [("RATE_LIMITED", [1.0])]


def test_a_streamed_run_is_logged_when_its_stream_ends(invoke_stack: Stack) -> None:
    app = invoke_stack.app()
    body = json.dumps({"prompt": PROMPT, "streaming": True}).encode()
    with httpx.Client(timeout=30) as client:
        response = client.post(app.invoke_url, content=body, headers=app.signed_headers(body))
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]

    output = output_of(app, request_id)
    runtime = output.line("runtime invocation")
    request = output.line("request")
    assert request["streamed"] is True
    assert request["status"] == 200
    assert request["runtime_outcome"] == runtime["outcome"] == "success"
    # Written when the stream ended, so it covers the whole run and its recording.
    assert request["duration_ms"] >= runtime["runtime_duration_ms"]
    assert output.logs.index(request) > output.logs.index(runtime)
    assert output.metric("RuntimeInvocations", outcome="success") == [1.0]
    [latency] = output.metric("Latency", route="api/v1/invoke")
    assert latency >= runtime["runtime_duration_ms"]
    assert output.metric("DynamoDbCalls", operation="UpdateItem") == [1.0]
    assert output.metric("DynamoDbCalls", operation="TransactWriteItems") == [1.0, 1.0]


def test_a_stream_left_by_its_client_is_logged_as_cancelled(invoke_stack: Stack) -> None:
    app = invoke_stack.app("--agent-latency-ms", "400")  # a run of about 2.8 s
    session_id = new_session_id()
    body = json.dumps({"prompt": PROMPT, "session_id": session_id, "streaming": True}).encode()
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", app.invoke_url, content=body, headers=app.signed_headers(body)
        ) as response,
    ):
        request_id = response.headers["X-Request-ID"]
        events = sse_events_incrementally(response)
        assert [next(events).event, next(events).event] == ["start", "chunk"]
    left_at = time.monotonic()

    output = output_of(app, request_id)
    runtime = output.line("runtime invocation")
    assert runtime["outcome"] == "cancelled"
    assert runtime["runtime_duration_ms"] < 2800  # ended when the client left, not the run
    request = output.line("request")
    assert request["streamed"] is True
    assert request["runtime_outcome"] == "cancelled"
    assert request["session_id"] == session_id
    assert time.monotonic() - left_at < 10
    assert output.metric("RuntimeInvocations", outcome="cancelled") == [1.0]
