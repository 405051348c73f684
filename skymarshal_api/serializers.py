"""Serializers for the project-level endpoints and the shared error shape."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class ErrorResponseSerializer(serializers.Serializer[Any]):
    """The one shape of every error response."""

    status = serializers.ChoiceField(choices=["error"])
    request_id = serializers.UUIDField()
    error_code = serializers.CharField(help_text="Stable machine-readable code, e.g. TIMEOUT.")
    error_message = serializers.CharField(help_text="What went wrong and what to do about it.")
    details = serializers.DictField(allow_null=True, required=False)
    timestamp = serializers.DateTimeField()


class HealthCheckSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    latency_ms = serializers.FloatField()
    message = serializers.CharField()


class HealthChecksSerializer(serializers.Serializer[Any]):
    agentcore = HealthCheckSerializer()
    dynamodb = HealthCheckSerializer()


class HealthResponseSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    version = serializers.CharField()
    timestamp = serializers.DateTimeField()
    checks = HealthChecksSerializer()


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
