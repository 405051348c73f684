"""Project-level endpoints."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skymarshal_api.authentication import principal_of
from skymarshal_api.errors import InvalidRequest
from skymarshal_api.health import health_report_get
from skymarshal_api.observability import request_principal_bind
from skymarshal_api.rate_limits import rate_limit_consume
from skymarshal_api.schema import (
    AUTHENTICATED_ERRORS,
    EXAMPLE_TIMESTAMP,
    INTERNAL_ERROR_RESPONSE,
    error_response,
)
from skymarshal_api.serializers import HealthResponseSerializer, IdentityResponseSerializer


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


class AuthenticatedApi(APIView):
    """Base of every endpoint that needs a caller: the default authentication (SigV4 or
    API Gateway identity), then the caller's rate limit for ``rate_limit_scope``, whose
    X-RateLimit headers go on the response."""

    rate_limit_scope = "default"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal = principal_of(request)
        request_principal_bind(principal.verified_arn)
        # Counted per owner: in IDENTITY_MODE=role, new session names add no allowance.
        state = rate_limit_consume(principal_arn=principal.arn, scope=self.rate_limit_scope)
        request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response


class IdentityApi(AuthenticatedApi):
    """Who the API takes the caller to be: a way to check credentials and signing, and which
    identity owns the caller's sessions and runs."""

    @extend_schema(
        operation_id="identity_get",
        summary="The authenticated caller",
        description=(
            "`principal` is the IAM principal whose signature was verified; `owner` is the "
            "identity that owns the sessions and runs this caller creates, and that every read "
            "and cancel of them is checked against. Under `identity_mode` `role` (the default) "
            "a role session is owned by its role, so everyone who can assume the role shares, "
            "except sessions of roles whose session names AWS sets (IAM Identity Center's "
            "`AWSReservedSSO_*`), which keep one owner per session; under `session` every "
            "session is its own owner."
        ),
        responses={
            200: OpenApiResponse(
                IdentityResponseSerializer,
                description="The caller.",
                examples=[
                    OpenApiExample(
                        "The development key",
                        value={
                            "principal": "arn:aws:iam::000000000000:user/skymarshal-developer",
                            "owner": "arn:aws:iam::000000000000:user/skymarshal-developer",
                            "identity_mode": "role",
                            "account_id": "000000000000",
                            "caller": "AKIASKYMARSHALLOCAL1",
                            "authenticated_by": "sigv4",
                        },
                    ),
                    OpenApiExample(
                        "A role session behind API Gateway",
                        value={
                            "principal": (
                                "arn:aws:sts::123456789012:assumed-role/ops-controller/"
                                "botocore-session-1764650000"
                            ),
                            "owner": "arn:aws:iam::123456789012:role/ops-controller",
                            "identity_mode": "role",
                            "account_id": "123456789012",
                            "caller": "AROAEXAMPLEROLEID:botocore-session-1764650000",
                            "authenticated_by": "api_gateway",
                        },
                    ),
                    OpenApiExample(
                        "An IAM Identity Center user behind API Gateway",
                        value={
                            "principal": (
                                "arn:aws:sts::123456789012:assumed-role/"
                                "AWSReservedSSO_OpsController_0123456789abcdef/jane.doe"
                            ),
                            "owner": (
                                "arn:aws:sts::123456789012:assumed-role/"
                                "AWSReservedSSO_OpsController_0123456789abcdef/jane.doe"
                            ),
                            "identity_mode": "role",
                            "account_id": "123456789012",
                            "caller": "AROAEXAMPLESSOROLE:jane.doe",
                            "authenticated_by": "api_gateway",
                        },
                    ),
                ],
            ),
            **AUTHENTICATED_ERRORS,
            **INTERNAL_ERROR_RESPONSE,
        },
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        return Response(
            IdentityResponseSerializer(
                {
                    "principal": principal.verified_arn,
                    "owner": principal.arn,
                    "identity_mode": settings.IDENTITY_MODE,
                    "account_id": principal.account_id,
                    "caller": principal.caller,
                    "authenticated_by": principal.source,
                }
            ).data
        )


_SCHEMA_MEDIA_TYPES = (
    "application/vnd.oai.openapi",
    "application/yaml",
    "application/vnd.oai.openapi+json",
    "application/json",
)


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema of this API (the same document as openapi.yaml). Its errors are
    JSON in the error shape, like every other error of the API (the view's own renderers
    would write them as YAML)."""

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # DRF's answer to a ?format= that no renderer has
            raise InvalidRequest(
                "format must be json or yaml (or leave it out and use the Accept header).",
                details={"fields": {"format": ["Must be json or yaml."]}},
            ) from None

    def handle_exception(self, exc: Exception) -> Response:
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="schema_get",
        summary="The OpenAPI schema",
        description=(
            "This document. YAML by default; JSON with `Accept: application/json` (or "
            "`application/vnd.oai.openapi+json`). No authentication."
        ),
        responses={
            **{
                (200, media_type): OpenApiResponse(
                    OpenApiTypes.OBJECT, description="The OpenAPI 3.0 document."
                )
                for media_type in _SCHEMA_MEDIA_TYPES
            },
            400: error_response(
                "INVALID_REQUEST: format is not json or yaml.",
                InvalidRequest(
                    "format must be json or yaml (or leave it out and use the Accept header).",
                    details={"fields": {"format": ["Must be json or yaml."]}},
                ),
            ),
            (500, "application/json"): INTERNAL_ERROR_RESPONSE[500],
        },
        auth=[],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)  # type: ignore[no-any-return,no-untyped-call]
