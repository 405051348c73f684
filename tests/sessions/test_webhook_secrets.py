"""A caller's webhook signing secrets in the sessions table (DynamoDB Local): created,
rotated (the previous one signs for 24 hours more, then no longer), stored encrypted,
bounded in number; and a signature made with two of them verifies with each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import LazySettings
from standardwebhooks import Webhook, WebhookVerificationError

from invocations.webhooks import webhook_signature
from sessions.models import WebhookSecret
from sessions.webhook_selectors import webhook_secrets_key, webhook_secrets_valid
from sessions.webhook_services import MAX_VALID_SECRETS, webhook_secret_create
from skymarshal_api.web.errors import TooManyWebhookSecrets
from tests.log_audit import SENT

OWNER = "arn:aws:iam::000000000000:user/webhook-secrets"
DAY_MS = 24 * 3_600_000


def _created(**kwargs: Any) -> Any:
    created = webhook_secret_create(**kwargs)
    SENT.credential_record(created.secret.secret)
    return created


def test_a_rotation_keeps_the_previous_secret_for_24_hours(sessions_table: str) -> None:
    t0 = 1_800_000_000_000
    first = _created(owner=OWNER, now_ms=t0)
    assert first.rotated == []
    assert first.secret.secret.startswith("whsec_")
    assert [s.secret for s in webhook_secrets_valid(OWNER, now_ms=t0)] == [first.secret.secret]

    t1 = t0 + 60_000
    second = _created(owner=OWNER, now_ms=t1)
    [rotated] = second.rotated
    assert rotated.secret_id == first.secret.secret_id
    assert rotated.expires_at == t1 + DAY_MS

    during = webhook_secrets_valid(OWNER, now_ms=t1 + DAY_MS - 1)
    assert [s.secret for s in during] == [second.secret.secret, first.secret.secret]
    after = webhook_secrets_valid(OWNER, now_ms=t1 + DAY_MS)
    assert [s.secret for s in after] == [second.secret.secret]
    assert webhook_secrets_valid("arn:aws:iam::000000000000:user/someone-else", now_ms=t1) == []


def test_secrets_are_stored_encrypted_and_unreadable_with_another_secret_key(
    sessions_table: str, settings: LazySettings
) -> None:
    created = _created(owner=OWNER, now_ms=1_800_000_000_000)
    [item] = WebhookSecret.query(webhook_secrets_key(OWNER), consistent_read=True)
    raw = str(item.serialize())
    assert created.secret.secret not in raw
    assert created.secret.secret.removeprefix("whsec_") not in raw
    assert OWNER not in item.session_id  # the key is a digest of the owner

    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert webhook_secrets_valid(OWNER, now_ms=1_800_000_000_001) == []


def test_at_most_five_secrets_are_valid_at_once(sessions_table: str) -> None:
    t0 = 1_800_000_000_000
    for n in range(MAX_VALID_SECRETS):
        _created(owner=OWNER, now_ms=t0 + n)
    with pytest.raises(TooManyWebhookSecrets) as refused:
        _created(owner=OWNER, now_ms=t0 + 10)
    assert refused.value.status_code == 409
    # Once the rotated ones have expired, a new one may be made.
    _created(owner=OWNER, now_ms=t0 + 10 + DAY_MS)


def test_a_signature_with_two_secrets_verifies_with_each_and_nothing_else() -> None:
    old, new = "whsec_" + "A" * 43 + "=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5jn3h1XEWzM="
    now = datetime.now(UTC)
    body = '{"type":"run.succeeded"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook_signature(
            [new, old], msg_id="msg_1", timestamp=now, body=body
        ),
    }
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"type": "run.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "B" * 43 + "=").verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace("succeeded", "failed"), headers)
