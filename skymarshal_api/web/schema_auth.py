"""The schema's authentication scheme, as drf-spectacular extensions of the authentication
classes. Imported with the schema's views (skymarshal_api/docs_urls.py), never on a request
of the API's own: drf-spectacular's extensions module imports its schema machinery (and
Django's test client), about 90 ms of a cold start that only the schema needs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from skymarshal_api.web.schema import SIGV4_SCHEME


class SigV4Scheme(OpenApiAuthenticationExtension):
    target_class = "skymarshal_api.auth.authentication.SigV4Authentication"
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
    target_class = "skymarshal_api.auth.authentication.ApiGatewayIamAuthentication"


class LocalNoAuthScheme(_SameContract):
    target_class = "skymarshal_api.auth.authentication.LocalNoAuthentication"


class StaffSessionScheme(_SameContract):
    target_class = "skymarshal_api.auth.authentication.StaffSessionAuthentication"
