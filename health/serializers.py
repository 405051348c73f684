"""The health report's shape."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


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
