"""The client tests' stack: DynamoDB Local, a local runtime whose agents take 300 ms (a run
of about 4 s, so a test can act while it runs) and API servers on it, started once for the
package; helpers that watch what the client sends and receives."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from botocore.credentials import Credentials

from scripts.stack import Server, start_local_runtime
from sessions.models import sessions_table_bind
from sessions.table import sessions_table_ensure
from skymarshal_api.web.errors import StorageUnavailable
from skymarshal_client import Client
from tests.conftest import _ApiServers
from tests.log_audit import SENT
from tests.signing import DEV_KEY, DEV_SECRET

AGENT_LATENCY_MS = 300


@dataclass
class ClientStack:
    runtime: Server
    api: Server
    table: str
    apis: _ApiServers


@pytest.fixture(scope="package")
def client_stack(log_dir: Path, dynamodb_local: Server) -> Iterator[ClientStack]:
    runtime = start_local_runtime("--agent-latency-ms", str(AGENT_LATENCY_MS), log_dir=log_dir)
    table = _table_create(dynamodb_local)
    apis = _ApiServers(log_dir, dynamodb_local, runtime)
    try:
        api = apis(SESSION_TABLE_NAME=table, RUN_POLL_SECONDS="0.05")
        yield ClientStack(runtime=runtime, api=api, table=table, apis=apis)
    finally:
        apis.stop_all()
        runtime.stop()


def _table_create(dynamodb: Server) -> str:
    """A sessions table of the package's own. On a loaded machine DynamoDB Local may answer
    CreateTable after botocore's read timeout, and botocore's retry then finds the table
    created (ResourceInUseException): ensuring it once more sees it exists."""
    name = f"sessions-client-{uuid.uuid4().hex[:12]}"
    sessions_table_bind(table_name=name, endpoint_url=dynamodb.http_url)
    try:
        try:
            sessions_table_ensure()
        except StorageUnavailable:
            sessions_table_ensure()
    finally:
        sessions_table_bind()
    return name


def dev_credentials() -> Credentials:
    SENT.credential_record(DEV_SECRET)
    return Credentials(DEV_KEY, DEV_SECRET)


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    at: float
    retry_after: str | None = None


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """An ordinary HTTP transport that also notes each request's method, path, status and
    time (what the tests check the client's retries and long-polls against)."""

    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self.lock:
            self.exchanges.append(
                Exchange(
                    request.method,
                    request.url.path,
                    response.status_code,
                    time.monotonic(),
                    response.headers.get("Retry-After"),
                )
            )
        return response

    def close(self) -> None:
        self.inner.close()


def client_for(url: str, **kwargs: object) -> Client:
    return Client(url, credentials=dev_credentials(), **kwargs)  # type: ignore[arg-type]
