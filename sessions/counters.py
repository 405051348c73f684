"""The rate limits' counters: one conditional UpdateItem per count (RATE_LIMIT_COUNTER names
this module's function)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException, UpdateError

from sessions.models import RATE_LIMIT_KEY_PREFIX, RateLimitCounter
from sessions.services import aws_error_code
from skymarshal_api.web.errors import StorageUnavailable

logger = logging.getLogger(__name__)


def rate_limit_counter_increment(
    *, key: str, window_start: int, limit: int, expires_at: int, amount: int = 1
) -> int | None:
    """Count ``amount`` requests against ``key``'s window, atomically, unless that would
    take the window past ``limit``: the new count, or None when it would.

    Raises StorageUnavailable when DynamoDB fails (after botocore's retries).
    """
    counter = RateLimitCounter(f"{RATE_LIMIT_KEY_PREFIX}{key}", window_start)
    try:
        counter.update(
            actions=[
                RateLimitCounter.hits.add(amount),
                RateLimitCounter.ttl.set(datetime.fromtimestamp(expires_at, UTC)),
            ],
            condition=RateLimitCounter.hits.does_not_exist()
            | (RateLimitCounter.hits <= limit - amount),
        )
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise StorageUnavailable(
            f"Could not count the request: {exc.msg}",
            details={"aws_error_code": aws_error_code(exc)},
        ) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not count the request: {exc}") from exc
    return int(counter.hits)
