"""Run webhooks over HTTP: POST /api/v1/webhook-secrets (a caller's signing secret, with
rotation), GET /api/v1/invocations/{id}/deliveries (a run's deliveries and attempts) and
POST …/deliveries/{delivery_id}/redeliver."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from invocations.apis import (
    _EXAMPLE_SUCCEEDED,
    _INVOCATION_ERRORS,
    _REQUEST_ID,
    _request_id_validate,
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
    InvocationNotFound,
    RedeliveryLimitReached,
    StorageUnavailable,
    TooManyWebhookSecrets,
)
from skymarshal_api.web.schema import AUTHENTICATED_ERRORS, INTERNAL_ERROR_RESPONSE, error_response

_EXAMPLE_SECRET_ID = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # noqa: S105 - an id
_EXAMPLE_ROTATED_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
_EXAMPLE_DELIVERY_ID = "msg_5f0c2d8e1b7a4c3f9e6d2a1b0c8e7f6a"
_EXAMPLE_INVOCATION = dict(_EXAMPLE_SUCCEEDED.value)
_EXAMPLE_URL = "https://hooks.example.com/skymarshal"


def _secret(secret: SigningSecret) -> dict[str, Any]:
    return {
        "secret_id": secret.secret_id,
        "created_at": iso_time(secret.created_at),
        "expires_at": iso_time(secret.expires_at),
    }


class WebhookSecretsApi(AuthenticatedApi):
    @extend_schema(
        operation_id="webhook_secret_create",
        summary="Create or rotate the caller's webhook signing secret",
        description=(
            "A new signing secret (`whsec_…`, shown only in this response) for the caller's "
            "run webhooks. Each delivery carries `webhook-id`, `webhook-timestamp` and "
            "`webhook-signature` (Standard Webhooks: `v1,<base64 HMAC-SHA256 of "
            "id.timestamp.body>`); verify them with any Standard Webhooks library. Calling it "
            "again rotates: the secrets that were current keep signing for 24 hours, next to "
            "the new one (`webhook-signature` then holds one signature per secret), so a "
            "receiver can switch secrets without losing a delivery. A run's webhook needs one "
            "(400 otherwise)."
        ),
        request=None,
        responses={
            201: OpenApiResponse(
                WebhookSecretCreatedSerializer,
                description="Created; keep `secret`: it is never shown again.",
                examples=[
                    OpenApiExample(
                        "A rotation",
                        value={
                            "secret_id": _EXAMPLE_SECRET_ID,
                            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5jn3h1XEWzM=",
                            "created_at": "2026-11-23T10:00:00.000+00:00",
                            "rotated": [
                                {
                                    "secret_id": _EXAMPLE_ROTATED_ID,
                                    "created_at": "2026-11-01T09:00:00.000+00:00",
                                    "expires_at": "2026-11-24T10:00:00.000+00:00",
                                }
                            ],
                        },
                    )
                ],
            ),
            **AUTHENTICATED_ERRORS,
            409: error_response(
                "TOO_MANY_WEBHOOK_SECRETS: 5 secrets are valid already (rotated ones stay "
                "valid for 24 hours).",
                TooManyWebhookSecrets(
                    details={"valid_secrets": 5, "next_expiry_at": "2026-11-24T08:00:00.000+00:00"}
                ),
            ),
            503: error_response(
                "STORAGE_UNAVAILABLE: DynamoDB did not answer; retry after Retry-After.",
                StorageUnavailable(
                    "Session storage could not create the webhook signing secret; retry "
                    "after Retry-After."
                ),
            ),
            **INTERNAL_ERROR_RESPONSE,
        },
    )
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


_EXAMPLE_DELIVERY = {
    "delivery_id": _EXAMPLE_DELIVERY_ID,
    "event": "run.succeeded",
    "url": _EXAMPLE_URL,
    "status": "delivered",
    "created_at": "2026-11-23T10:00:02.330+00:00",
    "next_attempt_at": None,
    "attempts": [
        {
            "attempted_at": "2026-11-23T10:00:02.341+00:00",
            "status_code": 503,
            "latency_ms": 87,
            "error": None,
            "redelivery": False,
        },
        {
            "attempted_at": "2026-11-23T10:00:07.802+00:00",
            "status_code": 200,
            "latency_ms": 64,
            "error": None,
            "redelivery": False,
        },
    ],
    "payload": {
        "type": "run.succeeded",
        "timestamp": "2026-11-23T10:00:02.310+00:00",
        "data": _EXAMPLE_INVOCATION,
    },
}
_DELIVERY_ID = OpenApiParameter(
    "delivery_id",
    {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
    OpenApiParameter.PATH,
    description="The delivery's id (its webhook-id), as GET …/deliveries lists it.",
    examples=[OpenApiExample("A delivery", _EXAMPLE_DELIVERY_ID)],
)
_DELIVERY_ERRORS = {
    **_INVOCATION_ERRORS,
    404: error_response(
        "INVOCATION_NOT_FOUND: no run with this id for the caller (of /invocations or of "
        "/invoke; another caller's is not found either).",
        InvocationNotFound(),
    ),
}


class InvocationDeliveriesApi(AuthenticatedApi):
    @extend_schema(
        operation_id="invocation_deliveries",
        summary="A run's webhook deliveries",
        description=(
            "The webhook deliveries of a run (of /invocations or of /invoke, by its "
            "request_id): one per event sent, each with its `webhook-id`, status, the "
            "payload every attempt sends, and every attempt (time, HTTP status, latency, "
            "error). A delivery is tried at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, "
            "10 h and 24 h (with jitter) until a 2xx; a 410 stops it."
        ),
        parameters=[_REQUEST_ID],
        responses={
            200: OpenApiResponse(
                WebhookDeliveryListSerializer,
                description="The run's deliveries (none when it has no webhook).",
                examples=[
                    OpenApiExample(
                        "Delivered on the second attempt",
                        value={
                            "request_id": _EXAMPLE_INVOCATION["request_id"],
                            "deliveries": [_EXAMPLE_DELIVERY],
                        },
                    )
                ],
            ),
            **_DELIVERY_ERRORS,
        },
    )
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
    @extend_schema(
        operation_id="invocation_delivery_redeliver",
        summary="Send a webhook delivery again",
        description=(
            "Sends the delivery again now, with the same `webhook-id` and body (a receiver "
            "that deduplicates on `webhook-id` sees it once): one more attempt for a "
            "delivery that had ended (delivered, gone or failed), the next attempt at once "
            "for one still pending. 202: the attempt follows at once; GET …/deliveries "
            "shows it."
        ),
        parameters=[_REQUEST_ID, _DELIVERY_ID],
        request=None,
        responses={
            202: OpenApiResponse(
                WebhookDeliverySerializer,
                description="Scheduled: due now.",
                examples=[
                    OpenApiExample(
                        "Due again",
                        value={
                            **_EXAMPLE_DELIVERY,
                            "status": "pending",
                            "next_attempt_at": "2026-11-23T11:00:00.000+00:00",
                        },
                    )
                ],
            ),
            **_INVOCATION_ERRORS,
            404: error_response(
                "INVOCATION_NOT_FOUND: no run with this id for the caller; "
                "DELIVERY_NOT_FOUND: the run has no delivery with this id.",
                InvocationNotFound(),
                DeliveryNotFound(),
            ),
            409: error_response(
                "REDELIVERY_LIMIT_REACHED: the delivery has had 50 attempts.",
                RedeliveryLimitReached(
                    "The delivery has had 50 attempts, the most a delivery may have.",
                    details={"attempts": 50},
                ),
            ),
        },
    )
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
