"""GET /api/v1/health."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from health.checks import health_report_get
from health.serializers import HealthResponseSerializer
from skymarshal_api.web.schema import EXAMPLE_TIMESTAMP, INTERNAL_ERROR_RESPONSE
from skymarshal_api.web.schema_annotations import extend_schema


def _health_example(name: str, status: str, dynamodb: dict[str, Any]) -> OpenApiExample:
    return OpenApiExample(
        name,
        value={
            "status": status,
            "version": "0.1.0",
            "timestamp": EXAMPLE_TIMESTAMP,
            "checks": {
                "agentcore": {"status": "healthy", "latency_ms": 4.9, "message": "Healthy"},
                "dynamodb": dynamodb,
            },
        },
    )


class HealthApi(APIView):
    """Unauthenticated status of the API and what it depends on; never invokes the runtime."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="health_get",
        summary="Service health",
        description=(
            "healthy: every check passed. degraded: the API works but a dependency is busy or "
            "slow (HTTP 200). unhealthy: a dependency is unreachable (HTTP 503). Results are "
            "cached for a few seconds."
        ),
        responses={
            200: OpenApiResponse(
                HealthResponseSerializer,
                description="healthy or degraded.",
                examples=[
                    _health_example(
                        "Healthy",
                        "healthy",
                        {"status": "healthy", "latency_ms": 10.3, "message": "table ACTIVE"},
                    )
                ],
            ),
            503: OpenApiResponse(
                HealthResponseSerializer,
                description="unhealthy: a dependency is unreachable (the same body).",
                examples=[
                    _health_example(
                        "DynamoDB unreachable",
                        "unhealthy",
                        {
                            "status": "unhealthy",
                            "latency_ms": 2003.7,
                            "message": "the sessions table is not reachable",
                        },
                    )
                ],
            ),
            **INTERNAL_ERROR_RESPONSE,
        },
        auth=[],
    )
    def get(self, request: Request) -> Response:
        report = health_report_get()
        status = 503 if report.status == "unhealthy" else 200
        response = Response(HealthResponseSerializer(report.as_dict()).data, status=status)
        response["Cache-Control"] = "no-store"
        return response
