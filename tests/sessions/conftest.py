"""The session endpoints' app and the sessions it serves (tests/sessions/session_apis.py),
shared by the package: one table, seeded once (519 interactions, about 8 s), and one API
server on it. The tests only read the seeded sessions; the one that writes does so as a
caller (READER) whose sessions no other test reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import Server
from sessions.models import sessions_table_bind
from tests.conftest import _ApiServers, sessions_table_create
from tests.sessions.session_apis import KEYS, Seeded, _seed


@pytest.fixture(scope="package")
def session_apis_table(dynamodb_local: Server) -> str:
    return sessions_table_create(dynamodb_local, "sessions-apis")


@pytest.fixture(scope="package")
def seeded(session_apis_table: str, dynamodb_local: Server) -> Seeded:
    sessions_table_bind(table_name=session_apis_table, endpoint_url=dynamodb_local.http_url)
    try:
        data = Seeded()
        _seed(data, int(time.time() * 1000))
    finally:
        sessions_table_bind()
    return data


@pytest.fixture(scope="package")
def api(
    log_dir: Path, dynamodb_local: Server, local_runtime: Server, session_apis_table: str
) -> Iterator[Server]:
    servers = _ApiServers(log_dir, dynamodb_local, local_runtime)
    yield servers(SESSION_TABLE_NAME=session_apis_table, SIGV4_LOCAL_KEYS=json.dumps(KEYS))
    servers.stop_all()
