"""Per-principal rate limits, shared by every process and Lambda container.

A fixed window of RATE_LIMIT_WINDOW_SECONDS per principal and scope, counted with one
conditional UpdateItem in DynamoDB by RATE_LIMIT_COUNTER (the sessions app's counter: this
package imports no app): the count is only incremented while it is below the limit, so the
requests accepted in a window never exceed it, however many containers serve them. If
DynamoDB cannot be reached the request is let through (and logged): the limit protects the
runtime from a runaway client, not from our own storage outage.
"""

from __future__ import annotations

import logging
import math
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
    try:
        with timed("persistence"):
            count = _counter(settings.RATE_LIMIT_COUNTER)(
                key=f"{scope}#{principal_arn}",
                window_start=window_start,
                limit=limit,
                expires_at=window_start + window + 60,
            )
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
    return RateLimitState(limit=limit, remaining=max(0, limit - count), reset_seconds=reset_seconds)
