"""Helpers of the tests that call POST /api/v1/invoke on the running app over HTTP: a
per-module stack of local runtimes and API servers (started on first use), SigV4-signed
calls, the error shape of Property 5, strict SSE parsing (Property 12) and the
open-connection check of Property 9."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.stack import Server, start_local_runtime
from skymarshal_api.web.validation import is_uuid4
from tests.conftest import ApiFactory
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_headers, botocore_send

SAFETY_AGENTS = ["crew_compliance", "maintenance", "regulatory"]
BUSINESS_AGENTS = ["network", "guest_experience", "cargo", "finance"]
DECISIONS = {"approved", "rejected", "conditional"}
ERROR_KEYS = {"status", "request_id", "error_code", "error_message", "details", "timestamp"}
RESPONSE_KEYS = {
    "status",
    "request_id",
    "session_id",
    "execution_time_ms",
    "assessment",
    "safety_phase",
    "business_phase",
    "final_decision",
    "recommendations",
    "metadata",
}
AGENT_KEYS = {"agent_name", "status", "confidence", "reasoning", "constraints", "recommendations"}
PROMPT = "Flight UA45 delayed 90 minutes due to weather"

# Callers besides the developer: signing arguments of botocore_send / App methods.
OTHER = {"key": "AKIAINVOKEOTHER00001", "secret": "invoke-other-secret"}
LIMITED = {"key": "AKIAINVOKELIMITED001", "secret": "invoke-limited-secret"}
# The other caller of the background-run tests (OTHER's sessions are counted elsewhere).
STRANGER = {"key": "AKIAINVOKESTRANGER01", "secret": "invoke-stranger-secret"}
KEYS = {
    DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL},
    OTHER["key"]: {
        "secret": OTHER["secret"],
        "principal": "arn:aws:iam::000000000000:user/invoke-other",
    },
    LIMITED["key"]: {
        "secret": LIMITED["secret"],
        "principal": "arn:aws:iam::000000000000:user/invoke-limited",
    },
    STRANGER["key"]: {
        "secret": STRANGER["secret"],
        "principal": "arn:aws:iam::000000000000:user/invoke-stranger",
    },
}
# The tests share one sessions table, hence one invoke count per caller: the validation
# tests alone make more calls a minute than the default limit of 100.
INVOKE_LIMIT = 1000
BASE_ENV = {"SIGV4_LOCAL_KEYS": json.dumps(KEYS), "RATE_LIMIT_INVOKE_PER_WINDOW": str(INVOKE_LIMIT)}


@dataclass(frozen=True)
class App:
    """An API server and the runtime it is wired to."""

    api: Server
    runtime: Server

    @property
    def invoke_url(self) -> str:
        return f"{self.api.http_url}/api/v1/invoke"

    def post(
        self, body: bytes, *, content_type: str = "application/json", **sign: Any
    ) -> httpx.Response:
        """POST these bytes to /invoke, signed (Content-Type is part of the signature)."""
        return botocore_send(
            "POST", self.invoke_url, body=body, headers={"Content-Type": content_type}, **sign
        )

    def invoke(self, document: Any, **sign: Any) -> httpx.Response:
        return self.post(json.dumps(document).encode(), **sign)

    def history(self, session_id: str, **sign: Any) -> httpx.Response:
        return botocore_send("GET", f"{self.api.http_url}/api/v1/sessions/{session_id}", **sign)

    def interactions(self, session_id: str, **sign: Any) -> list[dict[str, Any]]:
        response = self.history(session_id, **sign)
        assert response.status_code == 200, response.text
        return list(response.json()["interactions"])

    def session_ids(self, **sign: Any) -> list[str]:
        response = botocore_send("GET", f"{self.api.http_url}/api/v1/sessions?limit=100", **sign)
        assert response.status_code == 200, response.text
        return [session["session_id"] for session in response.json()["sessions"]]

    def signed_headers(self, body: bytes, **sign: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        return {**headers, **botocore_headers("POST", self.invoke_url, body=body, headers=headers)}


class Stack:
    """Runtimes (by their CLI arguments) and API servers (by runtime arguments and
    environment) shared by the invoke tests, each started the first time a test asks for
    it; ``()`` is the session's well-behaved runtime. Every API server has BASE_ENV."""

    def __init__(
        self, *, log_dir: Path, apis: ApiFactory, default_runtime: Server, table: str
    ) -> None:
        self._log_dir, self._apis, self._table = log_dir, apis, table
        self._runtimes: dict[tuple[str, ...], Server] = {(): default_runtime}
        self._apps: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], App] = {}

    @property
    def table(self) -> str:
        return self._table

    def runtime(self, *args: str) -> Server:
        if args not in self._runtimes:
            self._runtimes[args] = start_local_runtime(*args, log_dir=self._log_dir)
        return self._runtimes[args]

    def app(self, *runtime_args: str, **env: str) -> App:
        env = {**BASE_ENV, **env}
        key = (runtime_args, tuple(sorted(env.items())))
        if key not in self._apps:
            runtime = self.runtime(*runtime_args)
            api = self._apis(runtime=runtime, SESSION_TABLE_NAME=self._table, **env)
            self._apps[key] = App(api=api, runtime=runtime)
        return self._apps[key]

    def fault(self, fault: str, *runtime_args: str, **env: str) -> App:
        """An app wired to a runtime misbehaving as ``fault`` (agents taking no time)."""
        return self.app("--fault", fault, "--agent-latency-ms", "0", *runtime_args, **env)

    def servers(self) -> list[Server]:
        """The runtimes this stack started (the session's runtime is the session's)."""
        return [runtime for args, runtime in self._runtimes.items() if args]


# --- the shapes ----------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``response`` is ``status`` with ``code`` in the error shape (Property 5); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_error_body(body, code, request_id=response.headers["X-Request-ID"])
    return dict(body)


def assert_error_body(body: dict[str, Any], code: str, *, request_id: str) -> None:
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == "error"
    assert body["error_code"] == code, body
    assert body["request_id"] == request_id
    assert is_uuid4(request_id)
    assert isinstance(body["error_message"], str)
    assert body["error_message"]
    assert body["details"] is None or isinstance(body["details"], dict)
    assert body["timestamp"].endswith("Z")
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))


def assert_invoke_response(body: dict[str, Any], *, request_id: str) -> None:
    """``body`` is an InvokeResponse (Property 4)."""
    assert set(body) == RESPONSE_KEYS, sorted(set(body) ^ RESPONSE_KEYS)
    assert body["status"] == "success"
    assert body["request_id"] == request_id
    assert is_uuid4(body["request_id"])
    assert is_uuid4(body["session_id"])
    assert body["session_id"] != body["request_id"]
    assert isinstance(body["execution_time_ms"], int)
    assert body["execution_time_ms"] >= 0
    assert isinstance(body["assessment"], dict)
    assert body["assessment"]
    for phase, agents in (("safety_phase", SAFETY_AGENTS), ("business_phase", BUSINESS_AGENTS)):
        assert body[phase]["status"] in DECISIONS
        assert [agent["agent_name"] for agent in body[phase]["agents"]] == agents
        for agent in body[phase]["agents"]:
            assert set(agent) >= AGENT_KEYS
            assert agent["status"] in DECISIONS
            assert 0.0 <= agent["confidence"] <= 1.0
            assert isinstance(agent["reasoning"], str)
            assert agent["reasoning"]
            assert all(isinstance(c, str) for c in agent["constraints"])
            assert all(isinstance(r, str) for r in agent["recommendations"])
    assert body["final_decision"] in DECISIONS
    assert isinstance(body["recommendations"], list)
    assert all(isinstance(r, str) for r in body["recommendations"])
    assert isinstance(body["metadata"], dict)


def new_session_id() -> str:
    return str(uuid.uuid4())


# --- Server-Sent Events --------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]


def sse_frame_parse(frame: str) -> SseEvent | None:
    """One frame (the text between blank lines) exactly as Property 12 has it: ``id: N``,
    ``event: E``, one ``data:`` line of JSON; None for a comment (the heartbeat, or the
    note that ends a paused stream)."""
    if frame.startswith(":"):
        assert "\n" not in frame, frame
        return None
    lines = frame.split("\n")
    assert len(lines) == 3, frame
    assert lines[0].startswith("id: "), frame
    assert lines[1].startswith("event: "), frame
    assert lines[2].startswith("data: "), frame
    return SseEvent(
        id=int(lines[0].removeprefix("id: ")),
        event=lines[1].removeprefix("event: "),
        data=json.loads(lines[2].removeprefix("data: ")),
    )


def sse_parse(text: str) -> list[SseEvent]:
    """The whole body: every frame well-formed, ids 1, 2, 3, …"""
    assert text.endswith("\n\n"), text[-200:]
    events = [e for f in text.split("\n\n")[:-1] if (e := sse_frame_parse(f)) is not None]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    return events


def sse_events_incrementally(response: httpx.Response) -> Iterator[SseEvent]:
    """The events of a streamed response as they arrive."""
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            event = sse_frame_parse(frame)
            if event is not None:
                yield event


# --- Property 9: no connection left open ---------------------------------------------------


def established_on(port: int) -> list[str]:
    """ESTABLISHED TCP connections with ``port`` at either end, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            ports = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
            if state == "01" and port in ports:
                found.append(line.strip())
    return found


def assert_no_connection_left(port: int, *, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while open_ := established_on(port):
        assert time.monotonic() < deadline, f"still ESTABLISHED on port {port}: {open_}"
        time.sleep(0.05)
