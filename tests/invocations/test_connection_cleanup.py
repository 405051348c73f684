"""Property 9: whatever happens to a run, its runtime connection is closed, and nothing it
started (socket or thread) is left behind — over 200 mixed invocations, in process, against
real local runtimes misbehaving in different ways."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invocations.services import InvocationRequest, invocation_run
from scripts.stack import Server
from skymarshal_api.web.errors import ApplicationError
from tests.conftest import RuntimeFactory

pytestmark = pytest.mark.slow

PRINCIPAL = "arn:aws:iam::000000000000:user/cleanup"
PROMPT = "Flight LH400 delayed 2 hours, first officer sick"
OUTCOMES = {
    "success": "200",
    "error-message": "RUNTIME_ERROR",
    "malformed-json": "INVALID_RUNTIME_RESPONSE",
    "drop-mid-stream": "CONNECTION_FAILED",
    "hang-mid-stream": "TIMEOUT",
    "busy": "RUNTIME_UNAVAILABLE",
    "refuse": "CONNECTION_FAILED",
}

HANGS = {"hang-mid-stream"}
HANG_DEADLINE = 0.3


def _established(ports: set[int]) -> list[str]:
    """ESTABLISHED TCP connections (either end) on ``ports``, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != "01":
                continue
            if {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)} & ports:
                found.append(line)
    return found


@pytest.fixture
def runtimes(local_runtime_factory: RuntimeFactory) -> dict[str, Server]:
    started = {"success": local_runtime_factory("--agent-latency-ms", "0")}
    for fault in OUTCOMES:
        if fault != "success":
            started[fault] = local_runtime_factory("--fault", fault, "--agent-latency-ms", "0")
    return started


def test_no_socket_or_thread_is_left_after_200_mixed_invocations(
    runtimes: dict[str, Server], sessions_table: str, settings: Any
) -> None:
    settings.AGENTCORE_RETRY_DELAYS = (0.01, 0.01)
    ports = {server.port for server in runtimes.values()}
    threads_before = threading.active_count()
    seen: dict[str, int] = {}

    @settings_profile
    @given(st.permutations([kind for kind in sorted(OUTCOMES) for _ in range(29)][:200]))
    def run_all(kinds: list[str]) -> None:
        for kind in kinds:
            # Each run's settings are undone after it: the settings fixture would stack an
            # override per assignment (hundreds deep, each lookup walking them all, until
            # the recursion limit). A hang ends at its deadline, kept short; every other
            # kind has to end as it does whatever the machine's load, not by a deadline that
            # a slow moment of a busy machine (three refused attempts, say) could pass.
            with override_settings(
                AGENTCORE_WS_URL=runtimes[kind].ws_url,
                AGENTCORE_DEADLINE_SECONDS=HANG_DEADLINE if kind in HANGS else 30.0,
            ):
                try:
                    invocation_run(
                        InvocationRequest(
                            prompt=PROMPT,
                            session_id=None,
                            principal_arn=PRINCIPAL,
                            request_id=str(uuid.uuid4()),
                        )
                    )
                    outcome = "200"
                except ApplicationError as error:
                    outcome = error.error_code
            assert outcome == OUTCOMES[kind], kind
            seen[kind] = seen.get(kind, 0) + 1

    run_all()
    assert set(seen) == set(OUTCOMES)
    deadline = time.monotonic() + 5
    while _established(ports) or threading.active_count() > threads_before:
        assert time.monotonic() < deadline, (
            _established(ports),
            [t.name for t in threading.enumerate()],
        )
        time.sleep(0.1)


settings_profile = settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def test_a_stream_closed_before_it_was_read_closes_the_run(
    local_runtime_factory: RuntimeFactory, sessions_table: str, settings: Any
) -> None:
    from invocations.services import InvocationRequest, invocation_stream
    from invocations.sse import SseStream
    from sessions.selectors import session_history_get

    runtime = local_runtime_factory("--agent-latency-ms", "200")
    settings.AGENTCORE_WS_URL = runtime.ws_url
    session_id = str(uuid.uuid4())
    stream = SseStream(
        invocation_stream(
            InvocationRequest(
                prompt=PROMPT,
                session_id=session_id,
                principal_arn=PRINCIPAL,
                request_id=str(uuid.uuid4()),
            )
        )
    )
    assert _established({runtime.port})  # the run is connected
    stream.close()  # what the server does when the client is gone before the first byte
    deadline = time.monotonic() + 3
    while _established({runtime.port}):
        assert time.monotonic() < deadline, _established({runtime.port})
        time.sleep(0.1)
    [interaction] = session_history_get(session_id=session_id, principal_arn=PRINCIPAL).interactions
    assert interaction.status == "cancelled"
