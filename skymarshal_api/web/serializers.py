"""Serializers for the project-level endpoints and the shared error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# API Gateway's $context.requestTime, the only request time its gateway responses can carry.
GATEWAY_TIME_PATTERN = r"^[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$"


@extend_schema_field(
    {
        "type": "string",
        "description": (
            "When the error happened: ISO 8601 UTC with milliseconds "
            "(2026-11-23T10:00:00.000Z) from the API; in API Gateway's own errors "
            "(details.source api_gateway) the request's time as API Gateway writes it "
            "(23/Nov/2026:10:00:00 +0000)."
        ),
        "anyOf": [{"format": "date-time"}, {"pattern": GATEWAY_TIME_PATTERN}],
    }
)
class ErrorTimestampField(serializers.CharField):
    pass


class ErrorResponseSerializer(serializers.Serializer[Any]):
    """The one shape of every error response."""

    status = serializers.ChoiceField(choices=["error"])
    request_id = serializers.UUIDField()
    error_code = serializers.CharField(help_text="Stable machine-readable code, e.g. TIMEOUT.")
    error_message = serializers.CharField(help_text="What went wrong and what to do about it.")
    details = serializers.DictField(allow_null=True, required=False)
    timestamp = ErrorTimestampField()


class IdentityResponseSerializer(serializers.Serializer[Any]):
    principal = serializers.CharField(
        help_text="The IAM principal ARN whose signature was verified (for a role, the session)."
    )
    owner = serializers.CharField(
        help_text=(
            "The identity that owns this caller's sessions and runs, checked on every read and "
            "cancel: under identity_mode role, a role session's role "
            "(arn:aws:iam::ACCOUNT:role/NAME, without the role's path), unless AWS sets the "
            "role's session names (IAM Identity Center); else the principal itself."
        )
    )
    identity_mode = serializers.ChoiceField(
        choices=["role", "session"], help_text="IDENTITY_MODE: what identifies an owner."
    )
    account_id = serializers.CharField(allow_null=True)
    caller = serializers.CharField(allow_null=True, help_text="Access key id or caller id.")
    authenticated_by = serializers.ChoiceField(
        choices=["api_gateway", "sigv4", "staff", "local"],
        help_text="What established the identity.",
    )
