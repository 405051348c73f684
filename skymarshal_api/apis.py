"""The project's own endpoints: who the caller is, and the OpenAPI schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response

from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.views import AuthenticatedApi
from skymarshal_api.web.schema import (
    AUTHENTICATED_ERRORS,
    INTERNAL_ERROR_RESPONSE,
)
from skymarshal_api.web.schema_annotations import extend_schema
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
