"""Per-principal rate limits, shared by every process and Lambda container.

A fixed window of RATE_LIMIT_WINDOW_SECONDS per principal and scope, counted in DynamoDB by
RATE_LIMIT_COUNTER (the sessions app's counter: this package imports no app) with one
conditional UpdateItem that only adds while the sum stays within the limit, so the requests
accepted in a window never exceed it, however many containers serve them.

A process counts in leases: one UpdateItem counts limit / RATE_LIMIT_LEASE_DIVISOR requests
(at least 1) at once, and the process spends them on its next requests of that principal,
scope and window without a storage call. When a whole lease no longer fits, the process
asks for one request's worth. What a lease counts but its process does not spend is lost
with the window: a principal served by P processes may be refused up to P x (lease - 1)
requests short of its limit, never admitted beyond it. X-RateLimit-Remaining is the limit
less what DynamoDB has counted, plus what this process still holds.

If DynamoDB cannot be reached the request is let through (and logged): the limit protects
the runtime from a runaway client, not from our own storage outage.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

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


@dataclass
class _Lease:
    """Requests of one principal, scope and window counted in DynamoDB, not yet spent."""

    left: int
    counted: int  # the window's count in DynamoDB when the lease was taken


_leases: dict[tuple[str, int], _Lease] = {}
_leases_lock = threading.Lock()


def rate_limit_leases_clear() -> None:
    """Forget every lease (a process restored from a snapshot holds none of its own)."""
    with _leases_lock:
        _leases.clear()


def _lease_spend(key: str, window_start: int, limit: int) -> int | None:
    """Spend one request of this process's lease: the remaining count to report, or None
    when it holds none."""
    with _leases_lock:
        lease = _leases.get((key, window_start))
        if lease is None or lease.left == 0:
            return None
        lease.left -= 1
        return max(0, limit - lease.counted + lease.left)


def _lease_keep(key: str, window_start: int, limit: int, size: int, counted: int) -> int:
    """Keep a lease of ``size`` just counted (one request of it spent now): the remaining
    count to report."""
    with _leases_lock:
        for stale in [k for k in _leases if k[1] < window_start]:
            del _leases[stale]
        lease = _leases.setdefault((key, window_start), _Lease(left=0, counted=counted))
        lease.left += size - 1
        lease.counted = max(lease.counted, counted)
        return max(0, limit - lease.counted + lease.left)


def rate_limit_lease_size(limit: int) -> int:
    return max(1, limit // int(settings.RATE_LIMIT_LEASE_DIVISOR))


def rate_limit_for(scope: str) -> int:
    if scope == "invoke":
        return int(settings.RATE_LIMIT_INVOKE_PER_WINDOW)
    return int(settings.RATE_LIMIT_DEFAULT_PER_WINDOW)


def rate_limit_consume(
    *, principal_arn: str, scope: str, now: float | None = None
) -> RateLimitState:
    """Count one request of ``principal_arn`` in ``scope``; raises RateLimited (429, with
    Retry-After and the X-RateLimit headers) when the window's limit is used up."""
    now = time.time() if now is None else now
    window = int(settings.RATE_LIMIT_WINDOW_SECONDS)
    window_start = int(now // window) * window
    reset_seconds = max(1, math.ceil(window_start + window - now))
    limit = rate_limit_for(scope)
    key = f"{scope}#{principal_arn}"
    remaining = _lease_spend(key, window_start, limit)
    if remaining is not None:
        return RateLimitState(limit=limit, remaining=remaining, reset_seconds=reset_seconds)
    count: int | None = None
    lease = rate_limit_lease_size(limit)
    size = lease
    try:
        with timed("persistence"):
            # A whole lease, else (near the limit) one request's worth.
            for size in (lease, 1) if lease > 1 else (1,):
                count = _counter(settings.RATE_LIMIT_COUNTER)(
                    key=key,
                    window_start=window_start,
                    limit=limit,
                    expires_at=window_start + window + 60,
                    amount=size,
                )
                if count is not None:
                    break
    except StorageUnavailable as exc:
        logger.warning("Rate limit not enforced for this request: %s", exc.message)
        return RateLimitState(limit=limit, remaining=limit, reset_seconds=reset_seconds)
    if count is None:
        rate_limit_rejection_record(scope)
        state = RateLimitState(limit=limit, remaining=0, reset_seconds=reset_seconds)
        raise RateLimited(
            f"Rate limit of {limit} requests per {window} s exceeded; retry in {reset_seconds} s.",
            details={"limit": limit, "window_seconds": window, "retry_after": reset_seconds},
            headers={"Retry-After": str(reset_seconds), **state.headers()},
        )
    remaining = _lease_keep(key, window_start, limit, size, count)
    return RateLimitState(limit=limit, remaining=remaining, reset_seconds=reset_seconds)
