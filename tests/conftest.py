"""Fixtures that start the real local servers on 127.0.0.1 and free ports, and stop them.

DynamoDB Local (in memory) and one well-behaved local runtime live for the whole session;
tests that need a runtime with a fault, or an API server with its own settings, start
their own through the factories, which stop whatever they started. API servers and
runtimes are forked from a process that has imported their libraries
(scripts/stack.py, servers_forked).
"""

from __future__ import annotations

import logging
import socket
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.nodeid import NodeId
from django.conf import LazySettings, settings
from django.utils.crypto import salted_hmac
from hypothesis import settings as hypothesis_settings

from scripts.stack import (
    Server,
    servers_forked,
    start_api,
    start_dynamodb_local,
    start_local_runtime,
)
from sessions.models import sessions_table_bind
from sessions.table import sessions_table_ensure
from skymarshal_api.telemetry.logs import PROMPT_HMAC_SALT, JsonFormatter
from tests.log_audit import (
    SENT,
    log_files_lines,
    log_leaks_find,
    prompt_hmac_fields,
    recorders_install,
)
from tests.xray_daemon import xray_daemon

servers_forked(True)

# Property tests are reproducible: the same examples on every run and every machine.
hypothesis_settings.register_profile("skymarshal", derandomize=True, deadline=None)
hypothesis_settings.load_profile("skymarshal")

RuntimeFactory = Callable[..., Server]
ApiFactory = Callable[..., Server]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a parallel run (a worker: xdist's --dist loadfile hands out whole files in this
    order, the same on every worker), the files holding a test marked ``slow`` come first,
    so the longest start early and the short ones fill the workers in at the end; each
    group keeps its order. A run in one process keeps the collection's order."""
    _unique_node_ids(items)
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)


def _unique_node_ids(items: list[pytest.Item]) -> None:
    """Every item its own node id. Schemathesis gives each operation of a schema-driven
    test the test's own id (``file::test``, the operation only in the item's name), and
    xdist schedules by node id: of items sharing one, a worker would run one and the others
    would silently not run. Such an item takes its name (``file::test[GET /path]``)."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1:
            parent = item.nodeid.rsplit("::", 1)[0]
            item._id = NodeId.parse(f"{parent}::{item.name}")
    seen = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, n in seen.items() if n > 1)
    if shared:
        raise pytest.UsageError(f"tests share node ids, a parallel run would skip them: {shared}")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(log_dir: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """The suite-wide check (tests/log_audit.py): once every test and server is done, no
    log line of any server, nor of the suite's own process, holds a prompt or a credential
    the suite sent.

    In a parallel run each worker checks its own servers' logs (they served its tests only,
    whose prompts its recorder saw); whether the recorder saw the prompts the servers logged
    is a question about the whole suite, which one worker may not answer (its tests may
    have sent no prompt over HTTP), so the workers count and the controller decides
    (``pytest_testnodedown``, ``pytest_sessionfinish``)."""
    in_process = logging.FileHandler(log_dir / "pytest-in-process.log", encoding="utf-8")
    in_process.setFormatter(JsonFormatter())
    watched = [logging.getLogger(), logging.getLogger("skymarshal_api.emf")]
    for logger in watched:
        logger.addHandler(in_process)
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorders_install(monkeypatch)
        yield
    for logger in watched:
        logger.removeHandler(in_process)
    in_process.close()
    leaks = log_leaks_find(log_files_lines(log_dir), SENT)
    assert not leaks, "\n".join(str(leak) for leak in leaks[:20])
    # The recorder saw the prompts that reached the servers: the fingerprints the servers
    # logged (keyed by this process's secret key, or by one the suite gave a server)
    # include those of prompts it recorded.
    logged = prompt_hmac_fields(log_files_lines(log_dir))
    keys = {settings.SECRET_KEY, *SENT.secret_keys}
    sent = {
        salted_hmac(
            PROMPT_HMAC_SALT,
            prompt.encode("utf-8", "surrogatepass"),
            secret=key,
            algorithm="sha256",
        ).hexdigest()
        for prompt in SENT.prompts
        for key in keys
    }
    workeroutput = getattr(request.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_FINGERPRINTS_KEY] = [len(logged), len(logged & sent)]
    else:
        assert not logged or logged & sent, RECORDER_MISSED


RECORDER_MISSED = "the servers logged prompts that the recorder never saw"
_FINGERPRINTS_KEY = "prompt_fingerprints_logged_and_recorded"
_workers_fingerprints: list[tuple[int, int]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller of a parallel run: a worker is done; keep its counts of the prompt
    fingerprints its servers logged and of those its recorder saw, and what it asked to
    print."""
    counts = node.workeroutput.get(_FINGERPRINTS_KEY)
    if counts is not None:
        _workers_fingerprints.append((int(counts[0]), int(counts[1])))
    _workers_sections.extend(node.workeroutput.get(_SECTIONS_KEY, []))


_SECTIONS_KEY = "terminal_sections"
_workers_sections: list[list[str]] = []


def terminal_section_print(config: pytest.Config, lines: list[str]) -> None:
    """Print lines in the run's output: at once in a serial run; in a parallel run, where a
    worker's own output is not shown, by the controller in its terminal summary."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault(_SECTIONS_KEY, []).append(list(lines))
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The controller of a parallel run prints what its workers asked to print."""
    for lines in _workers_sections:
        terminalreporter.write_line("")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller of a parallel run: the servers of all the workers logged prompt
    fingerprints, and none is of a prompt a recorder saw: the run fails."""
    logged = sum(counts[0] for counts in _workers_fingerprints)
    recorded = sum(counts[1] for counts in _workers_fingerprints)
    if logged and not recorded:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", f"no_secret_in_any_log: {RECORDER_MISSED}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def daemon() -> Iterator[socket.socket]:
    """A stand-in X-Ray daemon (a UDP socket on 127.0.0.1) for a module's traced servers."""
    with xray_daemon() as sock:
        yield sock


@pytest.fixture(scope="session")
def dynamodb_local(log_dir: Path) -> Iterator[Server]:
    server = start_dynamodb_local(log_dir=log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_runtime(log_dir: Path) -> Iterator[Server]:
    server = start_local_runtime(log_dir=log_dir)
    yield server
    server.stop()


@pytest.fixture
def local_runtime_factory(log_dir: Path) -> Iterator[RuntimeFactory]:
    """``local_runtime_factory("--fault", "busy")`` → a runtime started with those args."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = start_local_runtime(*args, log_dir=log_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def rate_limit_leases_forgotten() -> None:
    """Each test starts with no rate-limit lease in this process: a lease is per process
    and window, not per table, and one test's must not serve another's requests."""
    limits = sys.modules.get("skymarshal_api.limits.rate_limits")
    if limits is not None:
        limits.rate_limit_leases_clear()


@pytest.fixture
def table_name() -> str:
    return f"sessions-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def dynamodb_settings(settings: LazySettings, dynamodb_local: Server, table_name: str) -> Any:
    """Settings pointing the sessions models at DynamoDB Local and a table of this test's
    own (the table binding follows the settings change)."""
    settings.DYNAMODB_ENDPOINT_URL = dynamodb_local.http_url
    settings.SESSION_TABLE_NAME = table_name
    return settings


@pytest.fixture
def sessions_table(dynamodb_settings: Any) -> str:
    """This test's sessions table, created in DynamoDB Local."""
    sessions_table_ensure()
    return str(dynamodb_settings.SESSION_TABLE_NAME)


class _ApiServers:
    """Starts API servers under gunicorn, wired to DynamoDB Local and a runtime (the
    session's unless given), with extra environment; stops them all on ``stop_all``."""

    def __init__(self, log_dir: Path, dynamodb: Server, runtime: Server) -> None:
        self.log_dir, self.dynamodb, self.runtime = log_dir, dynamodb, runtime
        self.started: list[Server] = []

    def __call__(self, *, runtime: Server | None = None, **env: str) -> Server:
        runtime = runtime or self.runtime
        server = start_api(
            env={
                "SKYMARSHAL_ENV": "test",
                "AGENTCORE_MODE": "local",
                "AGENTCORE_WS_URL": runtime.ws_url,
                "DYNAMODB_ENDPOINT_URL": self.dynamodb.http_url,
                "HEALTH_CACHE_SECONDS": "0",
                **env,
            },
            log_dir=self.log_dir,
            workers=1,
        )
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def api_server_factory(
    log_dir: Path, dynamodb_local: Server, local_runtime: Server
) -> Iterator[ApiFactory]:
    """``api_server_factory(runtime=…, **env)`` → an API server for this test."""
    servers = _ApiServers(log_dir, dynamodb_local, local_runtime)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def module_api_server_factory(
    log_dir: Path, dynamodb_local: Server, local_runtime: Server
) -> Iterator[ApiFactory]:
    """Like ``api_server_factory``, for servers that a whole test module shares."""
    servers = _ApiServers(log_dir, dynamodb_local, local_runtime)
    yield servers
    servers.stop_all()


def sessions_table_create(dynamodb: Server, prefix: str) -> str:
    """A new sessions table in ``dynamodb`` (the app's own binding is left as it was)."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    sessions_table_bind(table_name=name, endpoint_url=dynamodb.http_url)
    try:
        sessions_table_ensure()
    finally:
        sessions_table_bind()
    return name


@pytest.fixture(scope="module")
def module_sessions_table(dynamodb_local: Server) -> str:
    """A sessions table that a whole test module shares (for its API servers)."""
    return sessions_table_create(dynamodb_local, "sessions-module")
