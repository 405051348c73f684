"""A busy caller's requests counted in leases, in DynamoDB Local: never more accepted than
the limit, fewer table calls than requests, and what a process's unused lease costs."""

from __future__ import annotations

from typing import Any

import pytest

from sessions.counters import rate_limit_counter_increment
from sessions.models import RATE_LIMIT_KEY_PREFIX, RateLimitCounter
from skymarshal_api.limits.rate_limits import (
    LEASE_SHARE,
    rate_limit_consume,
    rate_limit_consume_local,
    rate_limit_leases_clear,
)
from skymarshal_api.web.errors import RateLimited

PRINCIPAL = "arn:aws:iam::000000000000:user/busy"
WINDOW = 3600
NOW = 1_800_000_000.0  # one moment, well inside its window: no test straddles two

calls: list[int] = []


def counting_counter(**count: Any) -> int | None:
    """The real counter, with the amount of each call kept (RATE_LIMIT_COUNTER's boundary)."""
    calls.append(count["amount"])
    return rate_limit_counter_increment(**count)


@pytest.fixture
def limits(settings: Any, sessions_table: str) -> Any:
    settings.RATE_LIMIT_COUNTER = f"{__name__}.counting_counter"
    settings.RATE_LIMIT_WINDOW_SECONDS = WINDOW
    calls.clear()
    return settings


def _burst(requests: int, *, now: float = NOW) -> tuple[list[int], int]:
    """The X-RateLimit-Remaining of each accepted request, and how many were refused."""
    remaining, refusals = [], []
    for _ in range(requests):
        try:
            state = rate_limit_consume(principal_arn=PRINCIPAL, scope="default", now=now)
        except RateLimited as exc:
            refusals.append(exc.headers["X-RateLimit-Remaining"])
        else:
            remaining.append(state.remaining)
    assert set(refusals) <= {"0"}
    return remaining, len(refusals)


def _stored(now: float = NOW) -> int:
    window_start = int(now // WINDOW) * WINDOW
    counter = RateLimitCounter.get(f"{RATE_LIMIT_KEY_PREFIX}default#{PRINCIPAL}", window_start)
    return int(counter.hits)


def test_a_busy_caller_is_counted_in_leases_and_never_past_the_limit(limits: Any) -> None:
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 200
    remaining, refused = _burst(230)

    assert len(remaining) == 200
    assert refused == 30
    assert remaining == list(range(199, -1, -1))  # one process: what it says is exact
    assert _stored() == 200
    # Leases grow with what the process served, up to 5% of the limit (10), while they
    # fit (196 + 10 does not): then one by one to the limit, where the window is full and
    # the refused requests make no table call. 29 calls for 230 requests.
    assert calls == [1, 1, 2, 4, 8, *[10] * 18, 10, 1, 1, 1, 1, 1]


def test_a_limit_under_the_lease_share_is_counted_one_request_at_a_time(limits: Any) -> None:
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 2 * LEASE_SHARE - 1
    remaining, refused = _burst(45)

    assert remaining == list(range(2 * LEASE_SHARE - 2, -1, -1))
    assert refused == 45 - (2 * LEASE_SHARE - 1)
    assert calls == [1] * (2 * LEASE_SHARE)  # each request, and the first one refused


def test_a_lease_that_does_not_fit_the_window_counts_the_last_requests_one_by_one(
    limits: Any,
) -> None:
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 100  # leases of up to 5
    _burst(40)
    # Another process takes most of the window meanwhile: 3 left.
    window_start = int(NOW // WINDOW) * WINDOW
    assert (
        rate_limit_counter_increment(
            key=f"default#{PRINCIPAL}",
            window_start=window_start,
            limit=100,
            expires_at=window_start + WINDOW,
            amount=100 - _stored() - 3,
        )
        == 97
    )
    calls.clear()
    remaining, refused = _burst(10)

    assert _stored() == 100
    # Whatever this process had leased and not served, then the 3 one at a time.
    assert 3 <= len(remaining) <= 3 + 100 // LEASE_SHARE - 1
    assert refused == 10 - len(remaining)
    assert calls[-1] == 1


def test_what_a_process_leaves_unserved_is_at_most_its_lease(limits: Any) -> None:
    """A process that goes away (or whose window ends) with leased requests unserved:
    the caller loses those, never more than one lease."""
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 400  # leases of up to 20
    first, _ = _burst(57)
    rate_limit_leases_clear()  # the process is gone; a new one serves the caller
    second, refused = _burst(400)

    accepted = len(first) + len(second)
    assert _stored() == 400
    assert 400 - 400 // LEASE_SHARE < accepted <= 400
    assert refused == 57 + 400 - accepted


def test_leases_are_per_window(limits: Any) -> None:
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 200
    _burst(20)
    calls.clear()
    remaining, _ = _burst(1, now=NOW + WINDOW)

    assert calls == [1]  # a new window: nothing served in it yet
    assert remaining == [199]
    assert _stored(NOW + WINDOW) == 1


def test_a_read_counted_from_the_lease_without_the_table(limits: Any) -> None:
    """rate_limit_consume_local (a quick read's count): the lease's requests with no table
    call; None, with nothing counted, when the table is needed; the 429 once this process
    knows the window full."""
    limits.RATE_LIMIT_DEFAULT_PER_WINDOW = 200

    def local() -> int | None:
        state = rate_limit_consume_local(principal_arn=PRINCIPAL, scope="default", now=NOW)
        return None if state is None else state.remaining

    assert local() is None
    assert calls == []
    remaining, _ = _burst(5)  # leases of 1, 1, 2 (one left), then 4: three left
    assert calls == [1, 1, 2, 4]
    last = remaining[-1]
    assert [local(), local(), local(), local()] == [last - 1, last - 2, last - 3, None]
    assert calls == [1, 1, 2, 4]
    assert _stored() == 8

    _burst(200)  # to the limit, and refused past it
    made = len(calls)
    with pytest.raises(RateLimited):
        local()
    assert len(calls) == made
