"""OpenAPI descriptions of the API's authentication, for drf-spectacular.

Every authenticated operation takes an AWS SigV4 signature (service ``execute-api``);
behind API Gateway the IAM authorizer checks it, locally the app does. That is the one
security scheme of the public contract.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SIGV4_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": (
        "AWS Signature Version 4 for service `execute-api` (API Gateway IAM "
        "authorization): sign with awscurl, botocore's SigV4Auth or requests-aws4auth. "
        "The caller is the signing IAM principal."
    ),
}


class SigV4Scheme(OpenApiAuthenticationExtension):
    target_class = "skymarshal_api.authentication.SigV4Authentication"
    name = "sigv4"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return SIGV4_SCHEME


class _SameContract(OpenApiAuthenticationExtension):
    """An authentication class that adds nothing to the schema: the API Gateway identity
    is SigV4 checked by API Gateway, AUTH_MODE=none is a local convenience and staff
    sessions exist only on a developer's machine. (Registering them under the name
    ``sigv4`` as well would make drf-spectacular see conflicting components.)"""

    name: list[str] = []  # noqa: RUF012 - drf-spectacular's own attribute

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return []

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return []


class ApiGatewayIamScheme(_SameContract):
    target_class = "skymarshal_api.authentication.ApiGatewayIamAuthentication"


class LocalNoAuthScheme(_SameContract):
    target_class = "skymarshal_api.authentication.LocalNoAuthentication"


class StaffSessionScheme(_SameContract):
    target_class = "skymarshal_api.authentication.StaffSessionAuthentication"
