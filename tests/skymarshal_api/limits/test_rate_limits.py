"""Per-principal rate limits shared by every app process (Property 10), counted in
DynamoDB Local, and CORS headers on the 429s."""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from scripts.stack import Server
from skymarshal_api.limits.rate_limits import rate_limit_consume, rate_limit_leases_clear
from skymarshal_api.web.errors import RateLimited
from tests.conftest import ApiFactory
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_send

LIMIT = 10
WINDOW = 20
OTHER_KEY = "AKIAOTHERCALLER00001"
# The apps are shared by the module; each test spends the budget of callers of its own.
CALLERS = {f"AKIACALLER{n:010d}": f"secret-{n}" for n in range(6)}
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


def test_health_is_not_rate_limited(two_apps: list[Server]) -> None:
    url = f"{two_apps[0].http_url}/api/v1/health"
    assert all(httpx.get(url, timeout=10).status_code == 200 for _ in range(LIMIT + 2))


# --- leases: one UpdateItem counts several requests of a process -----------------------------


def _counted(key: str, window_start: int) -> int:
    from sessions.models import RATE_LIMIT_KEY_PREFIX, RateLimitCounter

    return int(RateLimitCounter.get(f"{RATE_LIMIT_KEY_PREFIX}{key}", window_start).hits)


def test_a_lease_counts_several_requests_in_one_write_and_never_exceeds_the_limit(
    settings: Any, sessions_table: str
) -> None:
    from skymarshal_api.limits import rate_limits

    settings.RATE_LIMIT_DEFAULT_PER_WINDOW = 10
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    settings.RATE_LIMIT_LEASE_DIVISOR = 3  # leases of 3 requests
    principal = "arn:aws:iam::000000000000:user/leased"
    now = 120.0  # the window [120, 180)
    rate_limit_leases_clear()
    try:
        first = rate_limit_consume(principal_arn=principal, scope="default", now=now)
        # One write counted a lease of 3: two more requests cost no storage call.
        assert _counted(f"default#{principal}", 120) == 3
        assert first.remaining == 9
        remaining = [
            rate_limit_consume(principal_arn=principal, scope="default", now=now).remaining
            for _ in range(2)
        ]
        assert remaining == [8, 7]
        assert _counted(f"default#{principal}", 120) == 3

        # Another process (its leases forgotten here) takes the next lease: 6 counted.
        rate_limit_leases_clear()
        assert rate_limit_consume(principal_arn=principal, scope="default", now=now)
        assert _counted(f"default#{principal}", 120) == 6
        rate_limit_leases_clear()  # ...and this one spends 3 more
        for _ in range(3):
            rate_limit_consume(principal_arn=principal, scope="default", now=now)
        assert _counted(f"default#{principal}", 120) == 9
        # A lease of 3 no longer fits: one request's worth does, then nothing.
        last = rate_limit_consume(principal_arn=principal, scope="default", now=now)
        assert last.remaining == 0
        assert _counted(f"default#{principal}", 120) == 10
        with pytest.raises(RateLimited):
            rate_limit_consume(principal_arn=principal, scope="default", now=now)
        assert _counted(f"default#{principal}", 120) == 10
        # The next window starts a new count, and the old window's lease is dropped.
        assert rate_limit_consume(principal_arn=principal, scope="default", now=180.0)
        assert _counted(f"default#{principal}", 180) == 3
        assert all(window == 180 for _, window in rate_limits._leases)
    finally:
        rate_limit_leases_clear()


def test_a_divisor_of_the_limit_or_more_counts_every_request(
    settings: Any, sessions_table: str
) -> None:
    settings.RATE_LIMIT_DEFAULT_PER_WINDOW = 4
    settings.RATE_LIMIT_LEASE_DIVISOR = 50
    principal = "arn:aws:iam::000000000000:user/exact"
    rate_limit_leases_clear()
    try:
        for n in range(1, 5):
            rate_limit_consume(principal_arn=principal, scope="default", now=60.0)
            assert _counted(f"default#{principal}", 60) == n
        with pytest.raises(RateLimited):
            rate_limit_consume(principal_arn=principal, scope="default", now=60.0)
    finally:
        rate_limit_leases_clear()
