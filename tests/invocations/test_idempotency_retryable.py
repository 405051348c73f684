"""An Idempotency-Key keeps only final answers: a run that failed because the runtime
could not be reached (502 CONNECTION_FAILED) or was busy (503 RUNTIME_UNAVAILABLE) is not
the key's answer, so a retry with the same key runs again; once a run has a final
answer, the key replays it."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.stack import Server, free_port, start_local_runtime
from tests.conftest import ApiFactory
from tests.invocations.live import BASE_ENV, PROMPT, assert_error
from tests.signing import botocore_headers


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app(port: int, api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    """An API whose runtime port has nothing listening until a test starts one there."""
    return api_server_factory(
        AGENTCORE_WS_URL=f"ws://127.0.0.1:{port}/ws",
        SESSION_TABLE_NAME=module_sessions_table,
        RUN_POLL_SECONDS="0.05",
        **BASE_ENV,
    )


def _post(app: Server, path: str, key: str, document: dict[str, Any]) -> httpx.Response:
    body = json.dumps(document).encode()
    url = f"{app.http_url}/api/v1/{path}"
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    signed = botocore_headers("POST", url, body=body, headers=headers)
    return httpx.post(url, content=body, headers={**headers, **signed}, timeout=60)


def _final(app: Server, request_id: str) -> dict[str, Any]:
    url = f"{app.http_url}/api/v1/invocations/{request_id}/wait?timeout=20"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = httpx.get(url, headers=botocore_headers("GET", url), timeout=30).json()
        if body["status"] not in ("queued", "running"):
            return dict(body)
    raise AssertionError(f"{request_id} did not end")


def test_invoke_retried_with_its_key_runs_again_after_502_and_503(
    app: Server, port: int, log_dir: Path
) -> None:
    key = str(uuid.uuid4())
    document = {"prompt": PROMPT}

    unreachable = _post(app, "invoke", key, document)
    assert_error(unreachable, 502, "CONNECTION_FAILED")

    busy_runtime = start_local_runtime("--fault", "busy", port=port, log_dir=log_dir)
    try:
        busy = _post(app, "invoke", key, document)
    finally:
        busy_runtime.stop()
    assert_error(busy, 503, "RUNTIME_UNAVAILABLE")
    assert busy.headers.get("Idempotent-Replayed") is None  # it ran again
    assert busy.headers["Retry-After"] == "1"

    runtime = start_local_runtime("--agent-latency-ms", "0", port=port, log_dir=log_dir)
    try:
        succeeded = _post(app, "invoke", key, document)
        replayed = _post(app, "invoke", key, document)
    finally:
        runtime.stop()
    assert succeeded.status_code == 200, succeeded.text
    assert succeeded.headers.get("Idempotent-Replayed") is None
    # A final answer is kept: the key replays it, with no new run.
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["request_id"] == succeeded.json()["request_id"]
    ids = {
        unreachable.headers["X-Request-ID"],
        busy.headers["X-Request-ID"],
        succeeded.json()["request_id"],
    }
    assert len(ids) == 3


def test_a_background_run_failed_retryably_runs_again_with_its_key(
    app: Server, port: int, log_dir: Path
) -> None:
    key = str(uuid.uuid4())
    document = {"prompt": PROMPT}

    first = _post(app, "invocations", key, document)
    assert first.status_code == 202, first.text
    ended = _final(app, first.json()["request_id"])
    assert ended["status"] == "failed"
    assert ended["error"]["error_code"] == "CONNECTION_FAILED"

    runtime = start_local_runtime("--agent-latency-ms", "0", port=port, log_dir=log_dir)
    try:
        second = _post(app, "invocations", key, document)
        assert second.status_code == 202, second.text
        assert second.headers.get("Idempotent-Replayed") is None
        assert second.json()["request_id"] != first.json()["request_id"]
        assert _final(app, second.json()["request_id"])["status"] == "succeeded"
        third = _post(app, "invocations", key, document)
    finally:
        runtime.stop()
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.json()["request_id"] == second.json()["request_id"]
