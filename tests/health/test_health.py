"""GET /api/v1/health: each health state, observed on a running API server."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from scripts.stack import Server, free_port
from tests.conftest import ApiFactory, RuntimeFactory

pytestmark = pytest.mark.slow

HEALTH = "/api/v1/health"


def _health(api: Server) -> httpx.Response:
    return httpx.get(f"{api.http_url}{HEALTH}", timeout=15)


@pytest.fixture
def table(sessions_table: str) -> str:
    return sessions_table


def test_healthy_when_runtime_and_table_answer(api_server_factory: ApiFactory, table: str) -> None:
    response = _health(api_server_factory(SESSION_TABLE_NAME=table))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["timestamp"].endswith("Z")
    for name in ("agentcore", "dynamodb"):
        assert body["checks"][name]["status"] == "healthy"
        assert body["checks"][name]["latency_ms"] >= 0
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-ID"]


def test_unhealthy_within_seconds_of_the_runtime_stopping(
    api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory, table: str
) -> None:
    runtime = local_runtime_factory()
    api = api_server_factory(runtime=runtime, SESSION_TABLE_NAME=table, HEALTH_CACHE_SECONDS="1")
    assert _health(api).json()["status"] == "healthy"

    runtime.stop()
    started = time.monotonic()
    while (response := _health(api)).status_code != 503:
        assert time.monotonic() - started < 5, response.json()
        time.sleep(0.2)
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["agentcore"]["status"] == "unhealthy"
    assert body["checks"]["dynamodb"]["status"] == "healthy"


def test_degraded_when_the_runtime_is_busy(
    api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory, table: str
) -> None:
    runtime = local_runtime_factory("--fault", "busy")
    response = _health(api_server_factory(runtime=runtime, SESSION_TABLE_NAME=table))
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["agentcore"]["status"] == "degraded"


def test_health_never_invokes_the_runtime(
    api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory, table: str
) -> None:
    # A runtime that drops every WebSocket still answers /ping: health stays healthy.
    runtime = local_runtime_factory("--fault", "refuse", "--log-level", "debug")
    api = api_server_factory(runtime=runtime, SESSION_TABLE_NAME=table)
    assert _health(api).json()["status"] == "healthy"
    log = runtime.log_tail(200)
    assert "/ping" in log
    assert "/ws" not in log
    assert "/invocations" not in log


def test_unhealthy_when_dynamodb_is_unreachable(api_server_factory: ApiFactory) -> None:
    api = api_server_factory(
        DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", DYNAMODB_MAX_RETRY_ATTEMPTS="0"
    )
    response = _health(api)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["dynamodb"]["status"] == "unhealthy"
    assert body["checks"]["agentcore"]["status"] == "healthy"


def test_unhealthy_when_the_table_is_missing(api_server_factory: ApiFactory) -> None:
    api = api_server_factory(SESSION_TABLE_NAME=f"missing-{uuid.uuid4().hex}")
    response = _health(api)
    assert response.status_code == 503
    assert response.json()["checks"]["dynamodb"]["status"] == "unhealthy"


def test_results_are_cached(
    api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory, table: str
) -> None:
    runtime = local_runtime_factory()
    api = api_server_factory(runtime=runtime, SESSION_TABLE_NAME=table, HEALTH_CACHE_SECONDS="60")
    first = _health(api).json()
    runtime.stop()
    second = _health(api).json()
    assert second["status"] == "healthy"
    assert second["timestamp"] == first["timestamp"]


def test_health_needs_no_credentials_and_refuses_writes(
    api_server_factory: ApiFactory, table: str
) -> None:
    api = api_server_factory(SESSION_TABLE_NAME=table)
    response = httpx.post(f"{api.http_url}{HEALTH}", json={}, timeout=10)
    assert response.status_code == 405
    body: dict[str, Any] = response.json()
    assert body["status"] == "error"
    assert body["error_code"] == "METHOD_NOT_ALLOWED"
    assert body["request_id"] == response.headers["X-Request-ID"]


# --- bounded checks: dependencies that accept connections and never answer ------------------

CHECK_TIMEOUT = 1.0
# The answer's bound: HEALTH_CHECK_TIMEOUT_SECONDS, the health module's 0.5 s margin, and
# room for a loaded machine (4 callers on one worker, 2 shared cores). Unbounded, the
ANSWER_BOUND = CHECK_TIMEOUT + 0.5 + 1.5


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for connection in held:
        connection.close()
    listener.close()


def _timed_health(api: Server) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = _health(api)
    return time.monotonic() - started, response


def test_a_dynamodb_that_never_answers_is_unhealthy_within_the_bound(
    api_server_factory: ApiFactory, silent_port: int
) -> None:
    api = api_server_factory(
        DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{silent_port}",
        HEALTH_CHECK_TIMEOUT_SECONDS=str(CHECK_TIMEOUT),
    )

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _timed_health(api), range(4)))

    for elapsed, response in answers:
        print(f"/health answered {response.status_code} in {elapsed:.2f} s")
        assert elapsed < ANSWER_BOUND, elapsed
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["dynamodb"]["status"] == "unhealthy"
        assert checks["agentcore"]["status"] == "healthy"
    # A second round while the first probe may still be running: bounded as well.
    elapsed, response = _timed_health(api)
    assert elapsed < ANSWER_BOUND, elapsed
    assert response.json()["checks"]["dynamodb"]["status"] == "unhealthy"


def test_a_runtime_ping_that_never_answers_is_unhealthy_within_the_bound(
    api_server_factory: ApiFactory, silent_port: int, table: str
) -> None:
    api = api_server_factory(
        AGENTCORE_WS_URL=f"ws://127.0.0.1:{silent_port}/ws",
        SESSION_TABLE_NAME=table,
        HEALTH_CHECK_TIMEOUT_SECONDS=str(CHECK_TIMEOUT),
    )

    elapsed, response = _timed_health(api)

    assert elapsed < ANSWER_BOUND, elapsed
    assert response.status_code == 503
    assert response.json()["checks"]["agentcore"]["status"] == "unhealthy"
    assert response.json()["checks"]["dynamodb"]["status"] == "healthy"
