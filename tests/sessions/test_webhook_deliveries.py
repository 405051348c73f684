"""A run's webhook deliveries in the sessions table (DynamoDB Local): recorded once per
event, held by one sender at a time, their attempts and next attempt recorded (and filed
for the sweeper), redelivered up to a limit."""

from __future__ import annotations

import uuid

from sessions.models import SWEEP_BUCKET_MS
from sessions.webhook_selectors import webhook_deliveries_of, webhook_due_in
from sessions.webhook_services import (
    webhook_attempt_record,
    webhook_delivery_claim,
    webhook_delivery_create,
    webhook_redelivery_schedule,
)

OWNER = "arn:aws:iam::000000000000:user/webhook-deliveries"
NOW = 1_800_000_000_000


def _create(request_id: str, *, now_ms: int = NOW) -> bool:
    return webhook_delivery_create(
        request_id=request_id,
        slot=2,
        delivery_id=f"msg_{request_id.replace('-', '')}",
        owner=OWNER,
        event="run.succeeded",
        url="https://hooks.example.com/x",
        occurred_at=now_ms - 5,
        now_ms=now_ms,
    )


def test_a_delivery_is_recorded_once_and_filed_due_now(sessions_table: str) -> None:
    request_id = str(uuid.uuid4())
    assert _create(request_id) is True
    assert _create(request_id, now_ms=NOW + 1000) is False  # the sweeper, later: no second
    [delivery] = webhook_deliveries_of(request_id)
    assert (delivery.status, delivery.next_attempt_at, delivery.attempts) == ("pending", NOW, [])
    due = [e for e in webhook_due_in(NOW // SWEEP_BUCKET_MS) if e.request_id == request_id]
    assert [(e.slot, e.due_at) for e in due] == [(2, NOW)]


def test_one_sender_holds_a_delivery_and_records_its_attempt(sessions_table: str) -> None:
    request_id = str(uuid.uuid4())
    _create(request_id)
    assert webhook_delivery_claim(request_id, 2, now_ms=NOW - 1, hold_ms=1000) is None  # not due
    claimed = webhook_delivery_claim(request_id, 2, now_ms=NOW, hold_ms=1000)
    assert claimed is not None
    assert webhook_delivery_claim(request_id, 2, now_ms=NOW + 10, hold_ms=1000) is None  # held

    retry_at = NOW + 5 * 60_000
    attempt = {
        "attempted_at": NOW,
        "status_code": 503,
        "latency_ms": 40,
        "error": None,
        "redelivery": False,
    }
    assert webhook_attempt_record(
        claimed, attempt=attempt, status="pending", next_attempt_at=retry_at, scheduled_attempts=1
    )
    [delivery] = webhook_deliveries_of(request_id)
    assert delivery.attempts == [attempt]
    assert (delivery.next_attempt_at, delivery.scheduled_attempts) == (retry_at, 1)
    assert delivery.claimed_until is None
    due = [e for e in webhook_due_in(retry_at // SWEEP_BUCKET_MS) if e.request_id == request_id]
    assert [e.due_at for e in due] == [retry_at]
    # A sender whose hold lapsed and was taken over records nothing.
    assert not webhook_attempt_record(
        claimed, attempt=attempt, status="failed", next_attempt_at=None, scheduled_attempts=2
    )
    assert webhook_deliveries_of(request_id)[0].status == "pending"


def test_a_redelivery_is_due_now_and_limited(sessions_table: str) -> None:
    request_id = str(uuid.uuid4())
    _create(request_id)
    claimed = webhook_delivery_claim(request_id, 2, now_ms=NOW, hold_ms=1000)
    assert claimed is not None
    attempt = {"attempted_at": NOW, "status_code": 200, "latency_ms": 9, "error": None}
    webhook_attempt_record(
        claimed, attempt=attempt, status="delivered", next_attempt_at=None, scheduled_attempts=1
    )
    [delivered] = webhook_deliveries_of(request_id)
    scheduled = webhook_redelivery_schedule(delivered, now_ms=NOW + 60_000, max_attempts=2)
    assert scheduled is not None
    assert (scheduled.status, scheduled.next_attempt_at, scheduled.redelivery) == (
        "pending",
        NOW + 60_000,
        True,
    )
    assert scheduled.delivery_id == delivered.delivery_id
    assert webhook_redelivery_schedule(delivered, now_ms=NOW + 60_000, max_attempts=1) is None
