"""The project's own endpoints: who the caller is, and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.views import AuthenticatedApi
from skymarshal_api.web.errors import InvalidRequest
from skymarshal_api.web.schema import (
    AUTHENTICATED_ERRORS,
    INTERNAL_ERROR_RESPONSE,
    error_response,
)
from skymarshal_api.web.serializers import IdentityResponseSerializer


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
