"""The invoke tests' stack, shared by the modules of this package (starting an API server
costs ~2.5 s and a runtime ~1 s; each fault mode needs both): runtimes and API servers are
started the first time a test asks for them and stopped when the package is done; and the
clients of the background-run tests (tests/invocations/runs.py), on apps of that stack."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts.stack import Server
from tests.conftest import _ApiServers, sessions_table_create
from tests.invocations.live import Stack
from tests.invocations.runs import RUN_ENV, SLOW, Runs


@pytest.fixture(scope="package")
def invoke_stack(log_dir: Path, dynamodb_local: Server, local_runtime: Server) -> Iterator[Stack]:
    table = sessions_table_create(dynamodb_local, "sessions-invoke")
    apis = _ApiServers(log_dir, dynamodb_local, local_runtime)
    stack = Stack(log_dir=log_dir, apis=apis, default_runtime=local_runtime, table=table)
    try:
        yield stack
    finally:
        # Stopping is waiting (SIGTERM, then the exit): stop them all at once.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(Server.stop, [*apis.started, *stack.servers()]))


@pytest.fixture(scope="module")
def runs(invoke_stack: Stack) -> Runs:
    return Runs(invoke_stack.app(**RUN_ENV))


@pytest.fixture(scope="module")
def slow_runs(invoke_stack: Stack) -> Runs:
    return Runs(invoke_stack.app(*SLOW, **RUN_ENV))
