"""Cross-cutting request middleware (the request id, timing and observation are in
``skymarshal_api.telemetry.observation``)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


class BodyLimitMiddleware:
    """413 PAYLOAD_TOO_LARGE for a declared body above MAX_REQUEST_BODY_BYTES, before any
    view reads it; 411 LENGTH_REQUIRED for a chunked body, which WSGI apps read as empty
    (it would be silently lost). API Gateway never sends one; a local client might."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from skymarshal_api.web.errors import (
            InvalidRequest,
            LengthRequired,
            PayloadTooLarge,
            error_response,
        )

        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return error_response(request, LengthRequired())
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return error_response(request, InvalidRequest("Content-Length must be a number."))
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return error_response(
                request,
                PayloadTooLarge(
                    f"The request body may be at most {settings.MAX_REQUEST_BODY_BYTES} bytes; "
                    f"got {length}.",
                    details={"max_bytes": settings.MAX_REQUEST_BODY_BYTES, "got_bytes": length},
                ),
            )
        return self.get_response(request)


class HeaderGrammarMiddleware:
    """400 INVALID_REQUEST naming the header (415 for a charset other than UTF-8) for any
    header the API reads whose value is outside its grammar (``skymarshal_api.web.headers``),
    before any view or authentication reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from skymarshal_api.web.errors import ApplicationError, error_response
        from skymarshal_api.web.headers import request_headers_check

        try:
            request_headers_check(request.META, authorization=settings.AUTH_MODE == "sigv4")
        except ApplicationError as error:
            return error_response(request, error)
        return self.get_response(request)


class ApiSecurityHeadersMiddleware:
    """Headers for the API's own responses: nothing may frame, script or cache them. The
    HTML docs pages (Swagger UI, Redoc, the browsable API) keep Django's defaults because
    they run scripts of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if not content_type.startswith("text/html"):
            response.setdefault(
                "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
            )
            response.setdefault("Cache-Control", "no-store")
        response.setdefault("Cross-Origin-Resource-Policy", "same-site")
        return response
