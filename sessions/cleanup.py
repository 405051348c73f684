"""Deleting expired sessions (manage.py sessions_cleanup)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException

from sessions.models import SessionInteraction
from skymarshal_api.web.errors import StorageUnavailable

logger = logging.getLogger(__name__)


def sessions_expired_delete(*, now: datetime | None = None) -> int:
    """Delete every item (interactions, session items, rate-limit counters) whose ttl has
    passed; the number deleted. A table scan: for DynamoDB Local and maintenance only (in
    AWS, TTL deletes them). Raises StorageUnavailable."""
    now = now or datetime.now(UTC)
    deleted = 0
    try:
        expired = SessionInteraction.scan(
            filter_condition=SessionInteraction.ttl.exists() & (SessionInteraction.ttl < now),
            attributes_to_get=["session_id", "timestamp"],
        )
        with SessionInteraction.batch_write() as batch:
            for item in expired:
                batch.delete(item)
                deleted += 1
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not delete expired items: {exc}") from exc
    return deleted
