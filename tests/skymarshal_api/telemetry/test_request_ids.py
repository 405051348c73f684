"""Property 14: concurrent requests get distinct UUID v4 request ids, in the header and,
for errors, in the body; a client cannot choose its own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.stack import Server
from skymarshal_api.web.validation import is_uuid4
from tests.conftest import ApiFactory

PATHS = ["/api/v1/health", "/api/v1/identity", "/api/v1/nowhere", "/api/v1/sessions"]


@pytest.fixture(scope="module")
def api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    return module_api_server_factory(SESSION_TABLE_NAME=module_sessions_table)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(paths=st.lists(st.sampled_from(PATHS), min_size=2, max_size=40))
def test_concurrent_requests_get_distinct_uuid4_request_ids(api: Server, paths: list[str]) -> None:
    with httpx.Client(base_url=api.http_url, timeout=15) as client, ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda path: client.get(path, headers={"X-Request-ID": "chosen"}), paths)
        )
    ids = [response.headers["X-Request-ID"] for response in responses]
    assert len(set(ids)) == len(ids)
    assert all(is_uuid4(request_id) for request_id in ids)
    for response in responses:
        if response.status_code >= 400:
            assert response.json()["request_id"] == response.headers["X-Request-ID"]
