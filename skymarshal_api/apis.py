"""Project-level endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skymarshal_api.authentication import principal_of
from skymarshal_api.health import health_report_get
from skymarshal_api.observability import request_principal_bind
from skymarshal_api.rate_limits import rate_limit_consume
from skymarshal_api.serializers import (
    ErrorResponseSerializer,
    HealthResponseSerializer,
    IdentityResponseSerializer,
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
        responses={200: HealthResponseSerializer, 503: HealthResponseSerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        report = health_report_get()
        status = 503 if report.status == "unhealthy" else 200
        response = Response(HealthResponseSerializer(report.as_dict()).data, status=status)
        response["Cache-Control"] = "no-store"
        return response


class AuthenticatedApi(APIView):
    """Base of every endpoint that needs a caller: the default authentication (SigV4 or
    API Gateway identity), then the caller's rate limit for ``rate_limit_scope``, whose
    X-RateLimit headers go on the response."""

    rate_limit_scope = "default"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal_arn = principal_of(request).arn
        request_principal_bind(principal_arn)
        state = rate_limit_consume(principal_arn=principal_arn, scope=self.rate_limit_scope)
        request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response


class IdentityApi(AuthenticatedApi):
    """Who the API takes the caller to be: a way to check credentials and signing."""

    @extend_schema(
        operation_id="identity_get",
        summary="The authenticated caller",
        responses={
            200: IdentityResponseSerializer,
            401: ErrorResponseSerializer,
            403: ErrorResponseSerializer,
            429: ErrorResponseSerializer,
        },
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        return Response(
            IdentityResponseSerializer(
                {
                    "principal": principal.arn,
                    "account_id": principal.account_id,
                    "caller": principal.caller,
                    "authenticated_by": principal.source,
                }
            ).data
        )
