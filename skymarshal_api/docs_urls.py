"""The schema and its docs pages: /api/v1/schema/, /api/v1/docs/ (Swagger UI) and
/api/v1/redoc/. skymarshal_api/urls.py includes this URLconf by name, so Django imports it
(and drf-spectacular's views and extensions with it) only when a request reaches it, or a
schema is generated, or a URL is reversed: not in a cold start that serves the API."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from skymarshal_api.web import schema_auth  # noqa: F401 - registers the auth scheme
from skymarshal_api.web.errors import InvalidRequest
from skymarshal_api.web.schema import INTERNAL_ERROR_RESPONSE, error_response
from skymarshal_api.web.schema_annotations import schema_annotations_apply

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


# Before any schema is made from the URLconf (which imports this module to enumerate it).
schema_annotations_apply()

urlpatterns = [
    path("schema/", SchemaApi.as_view(), name="schema"),
    # The docs pages answer GET only (DRF's OPTIONS metadata cannot render an HTML view).
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    path(
        "redoc/",
        SpectacularRedocView.as_view(
            url_name="schema",
            http_method_names=["get", "head"],
            # Without drf-spectacular's web fonts, which a CDN serves.
            template_name="skymarshal_api/redoc.html",
        ),
        name="redoc",
    ),
]
