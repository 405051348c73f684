"""Project-level endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skymarshal_api.health import health_report_get
from skymarshal_api.serializers import HealthResponseSerializer


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
        responses={200: HealthResponseSerializer, 503: HealthResponseSerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        report = health_report_get()
        status = 503 if report.status == "unhealthy" else 200
        response = Response(HealthResponseSerializer(report.as_dict()).data, status=status)
        response["Cache-Control"] = "no-store"
        return response
