"""Reads of run webhooks from the sessions table: a caller's signing secrets, a run's
deliveries, and the deliveries due for the sweeper."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from sessions.models import (
    DELIVERY_KEY_PREFIX,
    WEBHOOK_DUE_CURSOR_KEY,
    WEBHOOK_DUE_KEY_PREFIX,
    WEBHOOK_SECRET_KEY_PREFIX,
    SweepCursor,
    WebhookDelivery,
    WebhookDue,
    WebhookSecret,
)
from sessions.services import item_find, storage_errors

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


def secret_box() -> Fernet:
    """The key that encrypts signing secrets at rest: derived from SECRET_KEY (as the replay
    log's is, with a label of its own), so neither the table nor a backup shows them.
    (cryptography is imported here, when a secret is used, not in a start-up.)"""
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(f"skymarshal.webhooks.secrets:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def webhook_secrets_key(owner: str) -> str:
    return f"{WEBHOOK_SECRET_KEY_PREFIX}{hashlib.sha256(owner.encode()).hexdigest()}"


def delivery_key(request_id: str) -> str:
    return f"{DELIVERY_KEY_PREFIX}{request_id}"


@dataclass(frozen=True)
class SigningSecret:
    secret_id: str
    created_at: int
    expires_at: int | None
    secret: str  # whsec_…; never logged, never shown again after its creation


def webhook_secrets_valid(owner: str, *, now_ms: int) -> list[SigningSecret]:
    """The caller's signing secrets still valid at ``now_ms``, newest first; a secret that
    does not decrypt (SECRET_KEY changed) is left out. Raises StorageUnavailable."""
    with storage_errors("read the webhook signing secrets"):
        items = list(
            WebhookSecret.query(
                webhook_secrets_key(owner), consistent_read=True, scan_index_forward=False
            )
        )
    from cryptography.fernet import InvalidToken

    secrets = []
    box = secret_box()
    for item in items:
        expires_at = int(item.expires_at) if item.expires_at is not None else None
        if item.owner != owner or (expires_at is not None and expires_at <= now_ms):
            continue
        try:
            secret = box.decrypt(item.secret_token.encode()).decode()
        except InvalidToken:
            continue
        secrets.append(
            SigningSecret(
                secret_id=item.secret_id,
                created_at=int(item.created_at),
                expires_at=expires_at,
                secret=secret,
            )
        )
    return secrets


@dataclass(frozen=True)
class DeliveryRecord:
    request_id: str
    slot: int
    delivery_id: str
    owner: str
    event: str
    url: str
    status: str
    created_at: int
    occurred_at: int
    next_attempt_at: int | None
    scheduled_attempts: int
    redelivery: bool
    claimed_until: int | None
    attempts: list[dict[str, Any]]


def _plain(value: Any) -> Any:
    """A PynamoDB MapAttribute (or a list of them) as plain dicts and numbers."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def delivery_record(item: WebhookDelivery) -> DeliveryRecord:
    return DeliveryRecord(
        request_id=item.request_id,
        slot=int(item.timestamp),
        delivery_id=item.delivery_id,
        owner=item.owner,
        event=item.event,
        url=item.url,
        status=item.status,
        created_at=int(item.created_at),
        occurred_at=int(item.occurred_at),
        next_attempt_at=int(item.next_attempt_at) if item.next_attempt_at is not None else None,
        scheduled_attempts=int(item.scheduled_attempts or 0),
        redelivery=bool(item.redelivery),
        claimed_until=int(item.claimed_until) if item.claimed_until is not None else None,
        attempts=[_plain(attempt) for attempt in item.attempts or []],
    )


def webhook_deliveries_of(request_id: str) -> list[DeliveryRecord]:
    """The run's deliveries, by slot (run.started first). Raises StorageUnavailable."""
    with storage_errors("read the webhook deliveries"):
        items = WebhookDelivery.query(delivery_key(request_id), consistent_read=True)
        return [delivery_record(item) for item in items]


def webhook_delivery_find(request_id: str, slot: int) -> DeliveryRecord | None:
    """One delivery of the run; None when there is none. Raises StorageUnavailable."""
    item = item_find(
        WebhookDelivery, delivery_key(request_id), slot, action="read the webhook delivery"
    )
    return None if item is None else delivery_record(item)


@dataclass(frozen=True)
class WebhookDueEntry:
    bucket: str
    sort: int
    request_id: str
    slot: int
    due_at: int


def webhook_due_in(minute: int) -> list[WebhookDueEntry]:
    """The delivery attempts filed under ``minute`` (epoch minutes). Raises
    StorageUnavailable."""
    with storage_errors("read the due webhook deliveries"):
        return [
            WebhookDueEntry(
                bucket=item.session_id,
                sort=int(item.timestamp),
                request_id=item.request_id,
                slot=int(item.slot),
                due_at=int(item.due_at),
            )
            for item in WebhookDue.query(f"{WEBHOOK_DUE_KEY_PREFIX}{minute}", consistent_read=True)
        ]


def webhook_due_cursor_get() -> int | None:
    """The first minute of due deliveries not yet swept; None before the first sweep.
    Raises StorageUnavailable."""
    cursor = item_find(SweepCursor, WEBHOOK_DUE_CURSOR_KEY, 0, action="read the webhook sweep")
    return None if cursor is None else int(cursor.minute)
