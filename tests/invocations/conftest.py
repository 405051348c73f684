"""The invoke tests' stack, shared by the modules of this package (starting an API server
costs ~2.5 s and a runtime ~1 s; each fault mode needs both): runtimes and API servers are
started the first time a test asks for them and stopped when the package is done."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts.stack import Server
from sessions.models import sessions_table_bind
from sessions.services import sessions_table_ensure
from tests.conftest import _ApiServers
from tests.invocations.live import Stack


@pytest.fixture(scope="package")
def invoke_stack(log_dir: Path, dynamodb_local: Server, local_runtime: Server) -> Iterator[Stack]:
    table = f"sessions-invoke-{uuid.uuid4().hex[:12]}"
    sessions_table_bind(table_name=table, endpoint_url=dynamodb_local.http_url)
    try:
        sessions_table_ensure()
    finally:
        sessions_table_bind()
    apis = _ApiServers(log_dir, dynamodb_local, local_runtime)
    stack = Stack(log_dir=log_dir, apis=apis, default_runtime=local_runtime, table=table)
    try:
        yield stack
    finally:
        # Stopping is waiting (SIGTERM, then the exit): stop them all at once.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(Server.stop, [*apis.started, *stack.servers()]))
