"""Writes of run webhooks to the sessions table: a caller's signing secrets (created and
rotated), a run's deliveries (created once per event, held by one sender at a time, their
attempts recorded), and the sweeper's notes of when each is due."""

from __future__ import annotations

import base64
import secrets as random_secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError
from django.conf import settings
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from sessions.models import (
    WEBHOOK_DUE_CURSOR_KEY,
    SweepCursor,
    WebhookDelivery,
    WebhookDue,
    WebhookSecret,
    webhook_due_key,
)
from sessions.services import conditional_write, storage_errors, storage_unavailable
from sessions.webhook_selectors import (
    DeliveryRecord,
    SigningSecret,
    WebhookDueEntry,
    delivery_key,
    delivery_record,
    secret_box,
    webhook_secrets_key,
    webhook_secrets_valid,
)
from skymarshal_api.web.errors import Conflict, TooManyWebhookSecrets

# Standard Webhooks: a secret is base64 of 24 to 64 random bytes, prefixed whsec_.
_SECRET_BYTES = 32
# How many of a caller's secrets may be valid at once (the newest and those rotated out in
# the last WEBHOOK_SECRET_OVERLAP_HOURS): each signs every delivery.
MAX_VALID_SECRETS = 5


@dataclass(frozen=True)
class SecretCreated:
    secret: SigningSecret
    rotated: list[SigningSecret]  # the secrets that were current, now expiring


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _ttl(epoch_ms: int, days: float) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC) + timedelta(days=days)


def webhook_secret_create(*, owner: str, now_ms: int) -> SecretCreated:
    """A new signing secret for ``owner``; the secrets that were current stay valid for
    WEBHOOK_SECRET_OVERLAP_HOURS more (deliveries are signed with every valid secret).
    Raises TooManyWebhookSecrets, StorageUnavailable."""
    valid = webhook_secrets_valid(owner, now_ms=now_ms)
    if len(valid) >= MAX_VALID_SECRETS:
        oldest = min(secret.expires_at or now_ms for secret in valid)
        raise TooManyWebhookSecrets(
            details={"valid_secrets": len(valid), "next_expiry_at": _iso(oldest)}
        )
    expires_at = now_ms + int(settings.WEBHOOK_SECRET_OVERLAP_HOURS * 3_600_000)
    current = [secret for secret in valid if secret.expires_at is None]
    text = "whsec_" + base64.b64encode(random_secrets.token_bytes(_SECRET_BYTES)).decode()
    created = SigningSecret(
        secret_id=str(uuid.uuid4()), created_at=now_ms, expires_at=None, secret=text
    )
    timestamp = now_ms
    for _ in range(4):
        try:
            with TransactWrite(connection=WebhookSecret._get_connection().connection) as write:
                write.save(
                    WebhookSecret(
                        webhook_secrets_key(owner),
                        timestamp,
                        secret_id=created.secret_id,
                        owner=owner,
                        secret_token=secret_box().encrypt(text.encode()).decode(),
                        created_at=now_ms,
                    ),
                    condition=WebhookSecret.session_id.does_not_exist(),
                )
                for old in current:
                    write.update(
                        WebhookSecret(webhook_secrets_key(owner), old.created_at),
                        actions=[
                            WebhookSecret.expires_at.set(expires_at),
                            WebhookSecret.ttl.set(_ttl(expires_at, 1)),
                        ],
                        condition=WebhookSecret.expires_at.does_not_exist(),
                    )
        except TransactWriteError as exc:
            codes = [reason.code if reason else None for reason in exc.cancellation_reasons or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                timestamp += 1  # another secret took this millisecond
                continue
            if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
                raise Conflict(
                    "Another signing secret was created at the same time; retry."
                ) from exc
            raise storage_unavailable("create the webhook signing secret", exc) from exc
        except (PynamoDBException, BotoCoreError) as exc:
            raise storage_unavailable("create the webhook signing secret", exc) from exc
        created = SigningSecret(
            secret_id=created.secret_id, created_at=timestamp, expires_at=None, secret=text
        )
        rotated = [
            SigningSecret(
                secret_id=old.secret_id,
                created_at=old.created_at,
                expires_at=expires_at,
                secret=old.secret,
            )
            for old in current
        ]
        return SecretCreated(secret=created, rotated=rotated)
    raise Conflict("Another signing secret was created at the same time; retry.")


def _due_item(request_id: str, slot: int, delivery_id: str, due_at: int) -> WebhookDue:
    bucket, sort = webhook_due_key(delivery_id, due_at)
    return WebhookDue(
        bucket, sort, request_id=request_id, slot=slot, due_at=due_at, ttl=_ttl(due_at, 7)
    )


def webhook_delivery_create(
    *,
    request_id: str,
    slot: int,
    delivery_id: str,
    owner: str,
    event: str,
    url: str,
    occurred_at: int,
    now_ms: int,
) -> bool:
    """Record a delivery of the run, due now, with its note for the sweeper, in one
    transaction: True when created, False when the run already had it. Raises
    StorageUnavailable."""
    with (
        conditional_write("record the webhook delivery") as checked,
        TransactWrite(connection=WebhookDelivery._get_connection().connection) as write,
    ):
        write.save(
            WebhookDelivery(
                delivery_key(request_id),
                slot,
                delivery_id=delivery_id,
                request_id=request_id,
                owner=owner,
                event=event,
                url=url,
                status="pending",
                created_at=now_ms,
                occurred_at=occurred_at,
                next_attempt_at=now_ms,
                scheduled_attempts=0,
                attempts=[],
                ttl=_ttl(now_ms, settings.SESSION_TTL_DAYS),
            ),
            condition=WebhookDelivery.session_id.does_not_exist(),
        )
        write.save(_due_item(request_id, slot, delivery_id, now_ms))
    return checked.held


def webhook_delivery_claim(
    request_id: str, slot: int, *, now_ms: int, hold_ms: int
) -> DeliveryRecord | None:
    """Hold a due delivery for one attempt until ``now_ms + hold_ms``: the delivery, or
    None when it is not due, has ended, or another sender holds it. Raises
    StorageUnavailable."""
    item = WebhookDelivery(delivery_key(request_id), slot)
    with conditional_write("claim the webhook delivery") as checked:
        item.update(
            actions=[WebhookDelivery.claimed_until.set(now_ms + hold_ms)],
            condition=(WebhookDelivery.status == "pending")
            & (WebhookDelivery.next_attempt_at <= now_ms)
            & (
                WebhookDelivery.claimed_until.does_not_exist()
                | (WebhookDelivery.claimed_until < now_ms)
            ),
        )
    if not checked.held:
        return None
    return delivery_record(item)


def webhook_attempt_record(
    claimed: DeliveryRecord,
    *,
    attempt: dict[str, Any],
    status: str,
    next_attempt_at: int | None,
    scheduled_attempts: int,
) -> bool:
    """Record an attempt of a delivery this sender holds, its new status, and, when it is
    to be tried again, when (filed for the sweeper too); the hold ends. False when the hold
    had lapsed and another sender took the delivery (its record wins). Raises
    StorageUnavailable."""
    actions: list[Action] = [
        WebhookDelivery.attempts.set(WebhookDelivery.attempts.append([attempt])),
        WebhookDelivery.status.set(status),
        WebhookDelivery.scheduled_attempts.set(scheduled_attempts),
        WebhookDelivery.claimed_until.remove(),
        WebhookDelivery.redelivery.remove(),
        WebhookDelivery.next_attempt_at.set(next_attempt_at)
        if next_attempt_at is not None
        else WebhookDelivery.next_attempt_at.remove(),
    ]
    with (
        conditional_write("record the webhook attempt") as checked,
        TransactWrite(connection=WebhookDelivery._get_connection().connection) as write,
    ):
        if next_attempt_at is not None:
            write.save(
                _due_item(claimed.request_id, claimed.slot, claimed.delivery_id, next_attempt_at)
            )
        write.update(
            WebhookDelivery(delivery_key(claimed.request_id), claimed.slot),
            actions=actions,
            condition=WebhookDelivery.claimed_until == claimed.claimed_until,
        )
    return checked.held


def webhook_redelivery_schedule(
    delivery: DeliveryRecord, *, now_ms: int, max_attempts: int
) -> DeliveryRecord | None:
    """Make the delivery due now again, with the same webhook-id: a delivery that had ended
    gets one more attempt (no retries after it); a pending one is tried now, then its
    schedule goes on. None when it has ``max_attempts`` attempts already. Raises
    StorageUnavailable."""
    actions: list[Action] = [
        WebhookDelivery.status.set("pending"),
        WebhookDelivery.next_attempt_at.set(now_ms),
    ]
    if delivery.status != "pending":
        actions.append(WebhookDelivery.redelivery.set(True))
    item = WebhookDelivery(delivery_key(delivery.request_id), delivery.slot)
    with (
        conditional_write("schedule the redelivery") as checked,
        TransactWrite(connection=WebhookDelivery._get_connection().connection) as write,
    ):
        write.save(_due_item(delivery.request_id, delivery.slot, delivery.delivery_id, now_ms))
        write.update(
            item,
            actions=actions,
            condition=WebhookDelivery.session_id.exists()
            & (
                WebhookDelivery.attempts.does_not_exist()
                | (size(WebhookDelivery.attempts) < max_attempts)
            ),
        )
    if not checked.held:
        return None
    with storage_errors("read the webhook delivery"):
        return delivery_record(
            WebhookDelivery.get(
                delivery_key(delivery.request_id), delivery.slot, consistent_read=True
            )
        )


def webhook_due_forget(entry: WebhookDueEntry) -> None:
    """Drop a due note the sweeper has dealt with. Raises StorageUnavailable."""
    with storage_errors("forget the due webhook delivery"):
        WebhookDue(entry.bucket, entry.sort).delete()


def webhook_due_cursor_set(minute: int) -> None:
    """Record that every delivery due before ``minute`` has been dealt with. Raises
    StorageUnavailable."""
    with storage_errors("record the webhook sweep"):
        SweepCursor(WEBHOOK_DUE_CURSOR_KEY, 0, minute=minute).save()
