"""Run webhooks over HTTP: POST /api/v1/webhook-secrets (a caller's signing secret, with
rotation), GET /api/v1/invocations/{id}/deliveries (a run's deliveries and attempts) and
POST …/deliveries/{delivery_id}/redeliver."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from invocations.apis import _request_id_validate
from invocations.openapi import (
    INVOCATION_DELIVERIES_GET,
    INVOCATION_REDELIVER_POST,
    WEBHOOK_SECRETS_POST,
)
from invocations.representation import iso_time
from invocations.webhook_serializers import (
    WebhookDeliveryListSerializer,
    WebhookDeliverySerializer,
    WebhookSecretCreatedSerializer,
)
from invocations.webhooks import (
    webhook_deliveries_list,
    webhook_payload,
    webhook_redeliver,
    webhook_secret_issue,
)
from sessions.run_selectors import RunRecord, run_find
from sessions.webhook_selectors import DeliveryRecord, SigningSecret
from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.views import AuthenticatedApi
from skymarshal_api.web.errors import (
    DeliveryNotFound,
)


def _secret(secret: SigningSecret) -> dict[str, Any]:
    return {
        "secret_id": secret.secret_id,
        "created_at": iso_time(secret.created_at),
        "expires_at": iso_time(secret.expires_at),
    }


class WebhookSecretsApi(AuthenticatedApi):
    @WEBHOOK_SECRETS_POST
    def post(self, request: Request) -> Response:
        created = webhook_secret_issue(principal_arn=principal_of(request).arn)
        body = {
            **_secret(created.secret),
            "secret": created.secret.secret,
            "rotated": [_secret(secret) for secret in created.rotated],
        }
        body.pop("expires_at")
        response = Response(WebhookSecretCreatedSerializer(body).data, status=201)
        response["Cache-Control"] = "no-store"
        return response


def delivery_representation(delivery: DeliveryRecord, run: RunRecord | None) -> dict[str, Any]:
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "url": delivery.url,
        "status": delivery.status,
        "created_at": iso_time(delivery.created_at),
        "next_attempt_at": iso_time(delivery.next_attempt_at),
        "attempts": [
            {
                "attempted_at": iso_time(int(attempt["attempted_at"])),
                "status_code": attempt.get("status_code"),
                "latency_ms": attempt.get("latency_ms"),
                "error": attempt.get("error"),
                "redelivery": bool(attempt.get("redelivery")),
            }
            for attempt in delivery.attempts
        ],
        "payload": json.loads(webhook_payload(run, delivery)) if run is not None else None,
    }


class InvocationDeliveriesApi(AuthenticatedApi):
    @INVOCATION_DELIVERIES_GET
    def get(self, request: Request, request_id: str) -> Response:
        _request_id_validate(request_id)
        deliveries = webhook_deliveries_list(
            request_id=request_id, principal_arn=principal_of(request).arn
        )
        run = run_find(request_id)
        body = {
            "request_id": request_id,
            "deliveries": [delivery_representation(d, run) for d in deliveries],
        }
        return Response(WebhookDeliveryListSerializer(body).data)


class InvocationRedeliverApi(AuthenticatedApi):
    @INVOCATION_REDELIVER_POST
    def post(self, request: Request, request_id: str, delivery_id: str) -> Response:
        _request_id_validate(request_id)
        if not delivery_id.startswith("msg_") or len(delivery_id) != 36:
            raise DeliveryNotFound()
        delivery = webhook_redeliver(
            request_id=request_id,
            delivery_id=delivery_id,
            principal_arn=principal_of(request).arn,
        )
        return Response(
            WebhookDeliverySerializer(delivery_representation(delivery, run_find(request_id))).data,
            status=202,
        )
