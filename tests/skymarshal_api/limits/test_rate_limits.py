"""Per-principal rate limits shared by every app process (Property 10), counted in
DynamoDB Local, and CORS headers on the 429s."""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_send

LIMIT = 10
WINDOW = 20
OTHER_KEY = "AKIAOTHERCALLER00001"
# The apps are shared by the module; each test spends the budget of callers of its own.
CALLERS = {f"AKIACALLER{n:010d}": f"secret-{n}" for n in range(8)}
KEYS = {
    DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL},
    OTHER_KEY: {"secret": "other-secret", "principal": "arn:aws:iam::000000000000:user/other"},
    **{
        key: {"secret": secret, "principal": f"arn:aws:iam::000000000000:user/{key}"}
        for key, secret in CALLERS.items()
    },
}


def _caller(n: int) -> dict[str, str]:
    key = f"AKIACALLER{n:010d}"
    return {"key": key, "secret": CALLERS[key]}


def _wait_for_a_fresh_window(needed_seconds: float = 6) -> None:
    """Start the burst early in a window, so that it cannot straddle two windows."""
    left = WINDOW - (time.time() % WINDOW)
    if left < needed_seconds:
        time.sleep(left + 0.2)


@pytest.fixture(scope="module")
def two_apps(module_api_server_factory: ApiFactory, module_sessions_table: str) -> list[Server]:
    env = {
        "SESSION_TABLE_NAME": module_sessions_table,
        "RATE_LIMIT_DEFAULT_PER_WINDOW": str(LIMIT),
        "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
        "SIGV4_LOCAL_KEYS": json.dumps(KEYS),
        "CORS_ALLOWED_ORIGINS": "https://ops.example.com",
    }
    return [module_api_server_factory(**env), module_api_server_factory(**env)]


def test_two_processes_share_one_limit(two_apps: list[Server]) -> None:
    _wait_for_a_fresh_window()
    urls = [f"{app.http_url}/api/v1/identity" for app in two_apps] * 15
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda url: botocore_send("GET", url, **_caller(0)), urls))

    accepted = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(accepted) == LIMIT
    assert len(limited) == len(urls) - LIMIT
    assert {r.request.url.port for r in accepted} == {app.port for app in two_apps}
    remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in accepted)
    assert remaining == list(range(LIMIT))
    for response in limited:
        body = response.json()
        assert body["error_code"] == "RATE_LIMITED"
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= WINDOW
        assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert int(response.headers["X-RateLimit-Reset"]) == retry_after
        assert body["details"]["retry_after"] == retry_after


def test_each_principal_has_its_own_limit(two_apps: list[Server]) -> None:
    _wait_for_a_fresh_window()
    url = f"{two_apps[0].http_url}/api/v1/identity"
    for _ in range(LIMIT):
        assert botocore_send("GET", url, **_caller(1)).status_code == 200
    assert botocore_send("GET", url, **_caller(1)).status_code == 429
    other = botocore_send("GET", url, key=OTHER_KEY, secret="other-secret")
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_the_limit_resets_with_the_next_window(two_apps: list[Server]) -> None:
    _wait_for_a_fresh_window()
    url = f"{two_apps[1].http_url}/api/v1/identity"
    for _ in range(LIMIT):
        botocore_send("GET", url, **_caller(2))
    limited = botocore_send("GET", url, **_caller(2))
    assert limited.status_code == 429
    time.sleep(math.ceil(float(limited.headers["Retry-After"])) + 0.5)
    assert botocore_send("GET", url, **_caller(2)).status_code == 200


def test_a_429_carries_cors_headers(two_apps: list[Server]) -> None:
    _wait_for_a_fresh_window()
    url = f"{two_apps[0].http_url}/api/v1/identity"
    origin = {"Origin": "https://ops.example.com"}
    for _ in range(LIMIT):
        botocore_send("GET", url, headers=origin, **_caller(3))
    response = botocore_send("GET", url, headers=origin, **_caller(3))
    assert response.status_code == 429
    assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example.com"
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    assert "retry-after" in exposed
    assert "x-ratelimit-remaining" in exposed


def test_quick_reads_are_counted_beside_the_read_and_refused_over_the_limit(
    two_apps: list[Server],
) -> None:
    """A run, a session and the session list are read while the caller's request is
    counted: the count is on the answer (X-RateLimit, and Server-Timing's ``ratelimit``),
    and a caller over the limit gets the 429 in place of what was read, a 404 included."""
    _wait_for_a_fresh_window(needed_seconds=10)
    base = f"{two_apps[0].http_url}/api/v1"
    unknown = "00000000-0000-4000-8000-000000000000"
    reads = [
        f"{base}/sessions",
        f"{base}/sessions/{unknown}",
        f"{base}/invocations/{unknown}",
    ]
    for n in range(LIMIT):
        response = botocore_send("GET", reads[n % len(reads)], **_caller(6))
        assert response.status_code in (200, 404), response.text
        assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1 - n)
        assert "ratelimit;dur=" in response.headers["Server-Timing"]
    for url in reads:
        response = botocore_send("GET", url, **_caller(6))
        assert response.status_code == 429, (url, response.text)
        body = response.json()
        assert body["error_code"] == "RATE_LIMITED"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert int(response.headers["Retry-After"]) >= 1
    # Another caller's reads are not held back by this one's.
    assert botocore_send("GET", reads[0], **_caller(7)).status_code == 200


def test_health_is_not_rate_limited(two_apps: list[Server]) -> None:
    url = f"{two_apps[0].http_url}/api/v1/health"
    assert all(httpx.get(url, timeout=10).status_code == 200 for _ in range(LIMIT + 2))
