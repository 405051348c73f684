"""Properties 4, 5, 6 and 12 of design.md, by Hypothesis, and a real SSE client seeing the
first chunk before the run ends."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from django.test import Client
from httpx_sse import connect_sse
from httpx_sse._decoders import SSEDecoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invocations.serializers import InvokeResponseSerializer
from invocations.services import InvocationRequest, StreamEvent, invocation_run
from invocations.sse import sse_frames
from scripts.stack import Server
from sessions.selectors import session_history_get
from skymarshal_api.web.errors import RuntimeTimeout
from skymarshal_api.web.validation import is_uuid4
from tests.conftest import ApiFactory, RuntimeFactory
from tests.signing import botocore_headers

pytestmark = pytest.mark.slow

PRINCIPAL = "arn:aws:iam::000000000000:user/properties"
FIXTURE_OK = [HealthCheck.function_scoped_fixture]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# --- Property 12: SSE framing -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["start", "chunk", "complete", "error", "heartbeat"]),
            st.dictionaries(st.text(max_size=10), json_values, max_size=5),
        ),
        max_size=20,
    )
)
def test_sse_frames_parse_back_to_the_same_events(events: list[tuple[str, dict[str, Any]]]) -> None:
    body = b"".join(sse_frames(StreamEvent(name, data) for name, data in events)).decode()
    assert body == "" or body.endswith("\n\n")
    decoder = SSEDecoder()
    lines = body.split("\n")[:-1]  # the text after the last newline is not a line
    # The SSE spec dispatches nothing for a block without data (our heartbeat comment);
    # httpx-sse's decoder yields an empty event there, which a spec-following client drops.
    parsed = [e for line in lines if (e := decoder.decode(line)) is not None and e.data != ""]
    expected = [(name, data) for name, data in events if name != "heartbeat"]
    assert [(e.event, json.loads(e.data)) for e in parsed] == expected
    assert [e.id for e in parsed] == [str(n) for n in range(1, len(expected) + 1)]
    for frame in body.split("\n\n")[:-1]:
        data_lines = [line for line in frame.split("\n") if line.startswith("data: ")]
        assert len(data_lines) == (0 if frame == ": heartbeat" else 1)


# --- Property 4: every successful run answers in the InvokeResponse shape ---------------------


@pytest.fixture
def fast_runtime(local_runtime_factory: RuntimeFactory) -> Server:
    return local_runtime_factory("--agent-latency-ms", "0")


prompt_parts = st.sampled_from(
    [
        "Flight AA123",
        "BA 2490",
        "delayed 3 hours",
        "held 45 minutes",
        "due to weather",
        "engine fault",
        "crew sick",
        "ATC flow control",
        "at ORD",
        "210 passengers",
        "perishable cargo",
        "cancelled",
        "what if it grows to 9 hours?",
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(parts=st.lists(prompt_parts, min_size=2, max_size=6), follow_up=st.booleans())
def test_successful_runs_answer_in_the_invoke_response_shape(
    fast_runtime: Server, sessions_table: str, settings: Any, parts: list[str], follow_up: bool
) -> None:
    settings.AGENTCORE_WS_URL = fast_runtime.ws_url
    request_id = str(uuid.uuid4())
    response = invocation_run(
        InvocationRequest(
            prompt=" ".join(parts), session_id=None, principal_arn=PRINCIPAL, request_id=request_id
        )
    )
    if follow_up:
        response = invocation_run(
            InvocationRequest(
                prompt="and if the delay doubles?",
                session_id=response["session_id"],
                principal_arn=PRINCIPAL,
                request_id=(request_id := str(uuid.uuid4())),
            )
        )
    serializer = InvokeResponseSerializer(data=response)
    assert serializer.is_valid(), serializer.errors
    assert response["status"] == "success"
    assert response["request_id"] == request_id
    assert is_uuid4(response["session_id"])
    assert response["execution_time_ms"] >= 0
    assert len(response["safety_phase"]["agents"]) == 3
    assert len(response["business_phase"]["agents"]) == 4
    assert "warnings" not in response


# --- Property 5: every error has the error shape ------------------------------------------


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(
        st.sampled_from(["prompt", "session_id", "streaming", "extra"]), json_values, max_size=4
    ).map(lambda value: json.dumps(value).encode()),
)


# Hypothesis's settings, by another name: the test's ``settings`` is Django's.
REJECTED_EXAMPLES = settings(max_examples=100, deadline=None)


def test_every_rejected_invoke_has_the_error_shape(settings: Any) -> None:
    # Set once for all the examples: each change of a table setting re-binds the table and
    # builds a new botocore client (about 0.5 s of CPU), which per example made this test
    # take minutes on a loaded machine.
    settings.AUTH_MODE = "none"
    settings.AGENTCORE_WS_URL = "ws://127.0.0.1:9/ws"  # nothing listens: no run may start
    settings.AGENTCORE_RETRY_DELAYS = ()
    settings.SESSION_TABLE_NAME = "no-table-needed"
    settings.DYNAMODB_MAX_RETRY_ATTEMPTS = 0

    @REJECTED_EXAMPLES
    @given(
        body=bodies,
        content_type=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
    )
    def rejected_invoke(content_type: str, body: bytes) -> None:
        response = Client().post("/api/v1/invoke", data=body, content_type=content_type)
        assert response.status_code < 500 or response.json()["error_code"] in (
            "CONNECTION_FAILED",
            "STORAGE_UNAVAILABLE",
        )
        if response.status_code >= 400:
            error = response.json()
            assert set(error) == {
                "status",
                "request_id",
                "error_code",
                "error_message",
                "details",
                "timestamp",
            }
            assert error["status"] == "error"
            assert error["request_id"] == response["X-Request-ID"]
            assert error["error_message"]

    rejected_invoke()


# --- Property 6: the deadline is enforced --------------------------------------------------


@settings(max_examples=8, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    deadline=st.floats(min_value=0.2, max_value=1.5),
    fault=st.sampled_from(["hang-before-first", "hang-mid-stream"]),
)
def test_a_run_past_its_deadline_ends_in_timeout_and_is_recorded(
    local_runtime_factory: RuntimeFactory,
    sessions_table: str,
    settings: Any,
    hanging: dict[str, Server],
    deadline: float,
    fault: str,
) -> None:
    if fault not in hanging:
        hanging[fault] = local_runtime_factory("--fault", fault)
    settings.AGENTCORE_WS_URL = hanging[fault].ws_url
    settings.AGENTCORE_DEADLINE_SECONDS = deadline
    session_id = str(uuid.uuid4())
    started = time.monotonic()
    with pytest.raises(RuntimeTimeout) as timed_out:
        invocation_run(
            InvocationRequest(
                prompt="Flight AA1 delayed 1 hour",
                session_id=session_id,
                principal_arn=PRINCIPAL,
                request_id=str(uuid.uuid4()),
            )
        )
    elapsed = time.monotonic() - started
    assert elapsed >= deadline
    assert timed_out.value.status_code == 504
    [interaction] = session_history_get(session_id=session_id, principal_arn=PRINCIPAL).interactions
    assert interaction.status == "timeout"
    # The run, from its acceptance to its recorded end, lasted its deadline and not much
    # more (the first call's acceptance also warms this process's storage client up).
    assert deadline * 1000 <= interaction.execution_time_ms < (deadline + 1.0) * 1000


@pytest.fixture
def hanging() -> dict[str, Server]:
    return {}


# --- A real SSE client sees the first chunk before the run has finished ----------------------


def test_an_sse_client_receives_the_first_chunk_before_the_run_finishes(
    api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory, sessions_table: str
) -> None:
    slow = local_runtime_factory("--agent-latency-ms", "300")  # a run of about 2.1 s
    api = api_server_factory(runtime=slow, SESSION_TABLE_NAME=sessions_table)
    url = f"{api.http_url}/api/v1/invoke"
    body = json.dumps({"prompt": "Flight AA123 delayed 3 hours", "streaming": True}).encode()
    headers = {**botocore_headers("POST", url, body=body), "Content-Type": "application/json"}
    arrivals: dict[str, float] = {}
    started = time.monotonic()
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(client, "POST", url, content=body, headers=headers) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            arrivals.setdefault(event.event, time.monotonic() - started)
    assert set(arrivals) == {"start", "chunk", "complete"}
    assert arrivals["complete"] >= 7 * 0.3
    assert arrivals["chunk"] < arrivals["complete"] - 1.5
