"""A synchronous run connects to the runtime while its write-ahead record is written, and
sends the invoke message only once the record is committed; a run refused before it is
recorded leaves the runtime asked nothing.

The runtime here is a WebSocket server of the test's own on 127.0.0.1 that looks in
DynamoDB Local, when the invoke message arrives, for the run's record."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from invocations.accept import InvocationRequest, Replayed
from invocations.execute import invocation_run, invocation_stream
from sessions.begin import interaction_begin
from sessions.models import SessionInteraction
from skymarshal_api.web.errors import SessionBusy
from tests.log_audit import SENT

PRINCIPAL = "arn:aws:iam::000000000000:user/connect-beside"
PROMPT = "Flight BA117 delayed 4 hours at LHR"
COMPLETE = {
    "type": "complete",
    "data": {"status": "success", "final_decision": "approved", "recommendations": ["Go"]},
}


@dataclass
class Observed:
    connections: int = 0
    # For each invoke message: the statuses of the session's interactions when it came.
    recorded_at_invoke: list[list[str]] = field(default_factory=list)
    closed_without_message: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def runtime(settings: Any, sessions_table: str) -> Iterator[Observed]:
    observed = Observed()

    def handler(connection: ServerConnection) -> None:
        with observed.lock:
            observed.connections += 1
        try:
            message = json.loads(connection.recv(timeout=10))
        except (ConnectionClosed, TimeoutError):
            with observed.lock:
                observed.closed_without_message += 1
            return
        session_id = message["payload"]["session_id"]
        statuses = _statuses(session_id)
        with observed.lock:
            observed.recorded_at_invoke.append(statuses)
        connection.send(json.dumps(COMPLETE))

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        settings.AGENTCORE_WS_URL = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        settings.AGENTCORE_RETRY_DELAYS = ()
        try:
            yield observed
        finally:
            server.shutdown()
            thread.join(timeout=5)


def _statuses(session_id: str) -> list[str]:
    """The statuses of the session's interactions, oldest first."""
    return [
        item.status
        for item in SessionInteraction.query(session_id, SessionInteraction.timestamp > 0)
    ]


def _request(session_id: str | None = None) -> InvocationRequest:
    SENT.prompt_record(PROMPT)
    return InvocationRequest(
        prompt=PROMPT,
        session_id=session_id,
        principal_arn=PRINCIPAL,
        request_id=str(uuid.uuid4()),
    )


def test_the_invoke_message_comes_after_the_record_is_committed(runtime: Observed) -> None:
    response = invocation_run(_request())
    assert isinstance(response, dict)
    assert response["status"] == "success"
    # A new session: its id was chosen before the record, and the record was there.
    assert runtime.recorded_at_invoke == [["in_progress"]]
    assert runtime.connections == 1

    again = invocation_run(_request(response["session_id"]))
    assert isinstance(again, dict)
    assert runtime.recorded_at_invoke[1] == ["success", "in_progress"]


def test_a_streamed_run_too(runtime: Observed) -> None:
    events = invocation_stream(_request())
    assert not isinstance(events, Replayed)
    names = [event.event for event in events]
    assert names[0] == "start"
    assert names[-1] == "complete"
    assert runtime.recorded_at_invoke == [["in_progress"]]


def test_a_run_refused_before_it_is_recorded_asks_the_runtime_nothing(
    runtime: Observed,
) -> None:
    held = interaction_begin(
        session_id=None,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=PRINCIPAL,
    )
    with pytest.raises(SessionBusy):
        invocation_run(_request(held.session_id))

    # Its connection (opened beside the refused write) is closed with no message.
    deadline_checks = 50
    while runtime.closed_without_message < 1 and deadline_checks:
        threading.Event().wait(0.05)
        deadline_checks -= 1
    assert runtime.closed_without_message == 1
    assert runtime.recorded_at_invoke == []
    assert _statuses(held.session_id) == ["in_progress"]
