"""Cross-cutting request middleware."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from skymarshal_api.request_id import REQUEST_ID_HEADER, new_request_id
from skymarshal_api.timing import server_timing_header, timing_start


class RequestIdMiddleware:
    """Gives each request its id (``request.request_id``), echoed in X-Request-ID, and
    reports where its time went in Server-Timing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        timing_start()
        request.request_id = new_request_id()  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        response["Server-Timing"] = server_timing_header((time.perf_counter() - started) * 1000)
        return response


class BodyLimitMiddleware:
    """413 PAYLOAD_TOO_LARGE for a declared body above MAX_REQUEST_BODY_BYTES, before any
    view reads it; 411 LENGTH_REQUIRED for a chunked body, which WSGI apps read as empty
    (it would be silently lost). API Gateway never sends one; a local client might."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from skymarshal_api.errors import (
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
