"""Per-principal rate limits, shared by every process and Lambda container.

A fixed window of RATE_LIMIT_WINDOW_SECONDS per principal and scope, counted with a
conditional UpdateItem in DynamoDB by RATE_LIMIT_COUNTER (the sessions app's counter: this
package imports no app): the count only grows while it stays within the limit, so the
requests accepted in a window never exceed it, however many containers serve them. If
DynamoDB cannot be reached the request is let through (and logged): the limit protects the
runtime from a runaway client, not from our own storage outage.

A busy caller is not counted one request at a time. A process that has served ``k`` of a
caller's requests in the current window counts the next ``min(k, limit // 20)`` at once
(a lease) and serves them without a table call: 1, 1, 2, 4, 8... up to 5% of the limit.
The lease is taken only while the window has room for all of it, and the caller's last
requests in a window are counted one by one; once the window's count has reached the
limit (it never falls back), the process refuses the caller until the window ends without
asking the table again. What a lease costs: the requests a process
has counted but not served when the window ends are lost to the caller for that window,
at most 5% of the limit per process, and only from a process that served at least as
many. With the defaults (100 invocations, 600 other requests a minute) an invocation is
counted in leases of up to 5 and a read in leases of up to 30; a limit under 40 is
always counted one request at a time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import cast

from django.conf import settings
from django.utils.module_loading import import_string

from skymarshal_api.telemetry.observation import rate_limit_rejection_record
from skymarshal_api.telemetry.timing import timed
from skymarshal_api.web.errors import RateLimited, StorageUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


CountFunction = Callable[..., int | None]


@cache
def _counter(path: str) -> CountFunction:
    counter: CountFunction = import_string(path)
    return counter


def rate_limit_counter_load() -> None:
    """Import the counter RATE_LIMIT_COUNTER names now, not in a first request (before a
    SnapStart snapshot)."""
    _counter(settings.RATE_LIMIT_COUNTER)


LEASE_SHARE = 20  # a lease is at most 1/LEASE_SHARE of the window's limit


@dataclass
class _Lease:
    """What this process knows of one caller's window: requests it served, requests it
    counted and has not served yet, and the window's count when it last counted."""

    served: int = 0
    left: int = 0
    count: int = 0
    tight: bool = False  # a lease did not fit: the rest is counted one by one
    full: bool = False  # the window's count reached the limit (it never falls back)


_leases: dict[tuple[str, int], _Lease] = {}
_leases_lock = threading.Lock()
_newest_window = [0]  # the latest window a lease was made for (older ones are dropped)


def _lease_take(key: str, window_start: int) -> tuple[_Lease, bool]:
    """Serve one request from the process's lease if any is left: a copy of the lease,
    and whether it served the request; leases of earlier windows are dropped."""
    with _leases_lock:
        lease = _leases.get((key, window_start))
        if lease is None:
            if window_start > _newest_window[0]:  # once per window, not per caller
                _newest_window[0] = window_start
                for stale in [k for k in _leases if k[1] < window_start]:
                    del _leases[stale]
            lease = _leases[(key, window_start)] = _Lease()
        if lease.left:
            lease.left -= 1
            lease.served += 1
            return replace(lease), True
        return replace(lease), False


def _lease_size(lease: _Lease, limit: int) -> int:
    return 1 if lease.tight else max(1, min(lease.served, limit // LEASE_SHARE))


def _lease_record(key: str, window_start: int, amount: int, count: int | None) -> _Lease:
    """``amount`` requests counted (``count`` is the window's count then), one of them
    served now; or, with ``count`` None, the window full."""
    with _leases_lock:
        lease = _leases.setdefault((key, window_start), _Lease())
        if count is None:
            lease.full = True
        else:
            lease.served += 1
            lease.left += amount - 1
            lease.count = count
        return replace(lease)


def rate_limit_leases_clear() -> None:
    """Forget every lease (after a SnapStart restore, or between tests)."""
    with _leases_lock:
        _leases.clear()
        _newest_window[0] = 0


def rate_limit_for(scope: str) -> int:
    if scope == "invoke":
        return int(settings.RATE_LIMIT_INVOKE_PER_WINDOW)
    return int(settings.RATE_LIMIT_DEFAULT_PER_WINDOW)


def rate_limit_consume(
    *, principal_arn: str, scope: str, now: float | None = None
) -> RateLimitState:
    """Count one request of ``principal_arn`` in ``scope``; raises RateLimited (429, with
    Retry-After and the X-RateLimit headers) when the window's limit is used up."""
    # With the table, a request is always counted or refused, never left uncounted.
    return cast(RateLimitState, _consume(principal_arn, scope, now, table=True))


def rate_limit_consume_local(
    *, principal_arn: str, scope: str, now: float | None = None
) -> RateLimitState | None:
    """``rate_limit_consume`` without a table call: the state when this process's lease
    serves the request, RateLimited when this process knows the window full, and None
    (nothing counted) when counting it needs the table."""
    return _consume(principal_arn, scope, now, table=False)


def _consume(
    principal_arn: str, scope: str, now: float | None, *, table: bool
) -> RateLimitState | None:
    now = time.time() if now is None else now
    window = int(settings.RATE_LIMIT_WINDOW_SECONDS)
    window_start = int(now // window) * window
    reset_seconds = max(1, math.ceil(window_start + window - now))
    limit = rate_limit_for(scope)
    key = f"{scope}#{principal_arn}"
    lease, served = _lease_take(key, window_start)
    if served:
        return _state(limit, lease, reset_seconds)
    if not table and not lease.full:
        return None
    count: int | None = None
    if not lease.full:
        amount = _lease_size(lease, limit)
        try:
            with timed("persistence"):
                count = _count(key, window_start, limit, window, amount)
                if count is None and amount > 1:  # no room for the lease: just this one
                    with _leases_lock:
                        _leases.setdefault((key, window_start), _Lease()).tight = True
                    amount = 1
                    count = _count(key, window_start, limit, window, amount)
        except StorageUnavailable as exc:
            logger.warning("Rate limit not enforced for this request: %s", exc.message)
            return RateLimitState(limit=limit, remaining=limit, reset_seconds=reset_seconds)
        lease = _lease_record(key, window_start, amount, count)
    if count is None:
        rate_limit_rejection_record(scope)
        state = RateLimitState(limit=limit, remaining=0, reset_seconds=reset_seconds)
        raise RateLimited(
            f"Rate limit of {limit} requests per {window} s exceeded; retry in {reset_seconds} s.",
            details={"limit": limit, "window_seconds": window, "retry_after": reset_seconds},
            headers={"Retry-After": str(reset_seconds), **state.headers()},
        )
    return _state(limit, lease, reset_seconds)


def _count(key: str, window_start: int, limit: int, window: int, amount: int) -> int | None:
    counted: int | None = _counter(settings.RATE_LIMIT_COUNTER)(
        key=key,
        window_start=window_start,
        limit=limit,
        expires_at=window_start + window + 60,
        amount=amount,
    )
    return counted


def _state(limit: int, lease: _Lease, reset_seconds: int) -> RateLimitState:
    """The headers' state: what the window has left as far as this process knows (its
    count when it last counted, less what it has leased and not served)."""
    return RateLimitState(
        limit=limit,
        remaining=max(0, limit - (lease.count - lease.left)),
        reset_seconds=reset_seconds,
    )
