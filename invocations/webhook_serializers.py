"""Output serializers of run webhooks: signing secrets, deliveries and their attempts, and
the payload every delivery sends."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from invocations.serializers import InvocationLinksSerializer, InvocationSerializer
from invocations.webhooks import WEBHOOK_EVENTS


class WebhookSecretSerializer(serializers.Serializer[Any]):
    secret_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When it stops signing deliveries (null: it is the newest)."
    )


class WebhookSecretCreatedSerializer(serializers.Serializer[Any]):
    secret_id = serializers.UUIDField()
    secret = serializers.CharField(
        help_text="The signing secret (whsec_ and base64), shown this once: verify each "
        "delivery's webhook-signature with it (any Standard Webhooks library does)."
    )
    created_at = serializers.DateTimeField()
    rotated = WebhookSecretSerializer(
        many=True,
        help_text="The secrets that were current until now: they go on signing deliveries "
        "(next to the new one) until their expires_at, 24 hours from now.",
    )


class WebhookRunLinksSerializer(InvocationLinksSerializer):
    self = serializers.CharField(
        required=False, help_text="GET: the invocation (absent for a run of /invoke)."
    )
    events = serializers.CharField(
        required=False, help_text="GET: its events (absent for a run of /invoke)."
    )
    wait = serializers.CharField(
        required=False, help_text="GET: long-poll until it ends (absent for a run of /invoke)."
    )


class WebhookRunSerializer(InvocationSerializer):
    """The run as GET /api/v1/invocations/{id} shows it (never its prompt)."""

    links = WebhookRunLinksSerializer()


class WebhookPayloadSerializer(serializers.Serializer[Any]):
    """The body of a delivery (Standard Webhooks' type, timestamp, data). Its fields are
    made in get_fields: one is named ``data``, which a class attribute cannot be (it is
    the serializer's output)."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "type": serializers.ChoiceField(choices=list(WEBHOOK_EVENTS), help_text="The event."),
            "timestamp": serializers.DateTimeField(help_text="When the event happened."),
            "data": WebhookRunSerializer(
                help_text="The run: for run.started as it was when it started, otherwise as "
                "it ended."
            ),
        }


class WebhookAttemptSerializer(serializers.Serializer[Any]):
    attempted_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The receiver's HTTP status (null: no answer; see error)."
    )
    latency_ms = serializers.IntegerField(help_text="From the start of the attempt to its answer.")
    error = serializers.CharField(
        allow_null=True,
        help_text="Why there was no answer: refused (the URL's address is not public), timed "
        "out (10 s), the connection or TLS failed.",
    )
    redelivery = serializers.BooleanField(help_text="Sent by POST …/redeliver.")


class WebhookDeliverySerializer(serializers.Serializer[Any]):
    delivery_id = serializers.CharField(
        help_text="The message's webhook-id header: the same on every attempt and redelivery."
    )
    event = serializers.ChoiceField(choices=list(WEBHOOK_EVENTS))
    url = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["pending", "delivered", "failed", "gone"],
        help_text="pending: an attempt is due at next_attempt_at; delivered: a 2xx answered; "
        "gone: a 410 answered (no more attempts); failed: the retry schedule ended.",
    )
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    attempts = WebhookAttemptSerializer(many=True, help_text="Oldest first.")
    payload = WebhookPayloadSerializer(
        allow_null=True,
        help_text="The body every attempt sends (null when the run no longer exists).",
    )


class WebhookDeliveryListSerializer(serializers.Serializer[Any]):
    request_id = serializers.UUIDField()
    deliveries = WebhookDeliverySerializer(many=True, help_text="run.started first, then the end.")
