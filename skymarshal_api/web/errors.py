"""The application's errors and the one shape every error response has.

Every failure a caller can see is an ``ApplicationError`` subclass with an HTTP status and a
stable ``error_code``. ``exception_handler`` (DRF's EXCEPTION_HANDLER) renders them, DRF's own
exceptions and Django's 404 in the ErrorResponse shape of the design; anything else is a bug
and becomes a 500 INTERNAL_ERROR that carries no detail of its cause.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from skymarshal_api.telemetry.observation import request_error_record
from skymarshal_api.telemetry.request_id import request_id_of

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    status_code = 500
    error_code = "INTERNAL_ERROR"
    default_message = "An unexpected error occurred."
    default_headers: dict[str, str] = {}  # noqa: RUF012 - read only

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = {**self.default_headers, **(headers or {})}
        # When the error was recorded (a run's outcome): its response says the same time.
        self.timestamp: str | None = None
        super().__init__(self.message)


class InvalidRequest(ApplicationError):
    status_code = 400
    error_code = "INVALID_REQUEST"
    default_message = "The request is not valid."


class InvalidJson(InvalidRequest):
    error_code = "INVALID_JSON"
    default_message = "The request body is not valid JSON."


class Unauthorized(ApplicationError):
    status_code = 401
    error_code = "UNAUTHORIZED"
    default_message = "Authentication credentials were not provided or are malformed."


class Forbidden(ApplicationError):
    status_code = 403
    error_code = "FORBIDDEN"
    default_message = "The credentials were not accepted for this request."


class SignatureMismatch(Forbidden):
    """Every signature that does not verify, whatever the reason (the reason is logged)."""

    default_message = (
        "The signature does not match the request. Sign it with AWS Signature Version 4 "
        "for service execute-api, with valid credentials, less than 5 minutes ago."
    )


class NotFound(ApplicationError):
    status_code = 404
    error_code = "NOT_FOUND"
    default_message = "No resource exists at this path."


class MethodNotAllowed(ApplicationError):
    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"
    default_message = "This method is not allowed here."


class NotAcceptable(ApplicationError):
    status_code = 406
    error_code = "NOT_ACCEPTABLE"
    default_message = "No representation matches the Accept header."


class Conflict(ApplicationError):
    status_code = 409
    error_code = "CONFLICT"
    default_message = "The request conflicts with the resource's current state."


class LengthRequired(ApplicationError):
    status_code = 411
    error_code = "LENGTH_REQUIRED"
    default_message = "Send the request body with a Content-Length header, not chunked."


class SessionNotFound(NotFound):
    error_code = "SESSION_NOT_FOUND"
    default_message = "No session with this id exists for the caller."


class SessionExpired(Conflict):
    error_code = "SESSION_EXPIRED"
    default_message = "The session has expired; start a new one by omitting session_id."


class SessionBusy(Conflict):
    error_code = "SESSION_BUSY"
    default_message = (
        "Another run is active on this session; retry after Retry-After, or send "
        '"on_conflict": "enqueue" to queue behind it.'
    )
    default_headers = {"Retry-After": "2"}  # noqa: RUF012 - read only


class InvocationNotFound(NotFound):
    error_code = "INVOCATION_NOT_FOUND"
    default_message = "No invocation with this id exists for the caller."


class InvocationFinished(Conflict):
    error_code = "INVOCATION_FINISHED"
    default_message = "The invocation has already ended; there is nothing to cancel."


class DeliveryNotFound(NotFound):
    error_code = "DELIVERY_NOT_FOUND"
    default_message = "The invocation has no webhook delivery with this id."


class RedeliveryLimitReached(Conflict):
    error_code = "REDELIVERY_LIMIT_REACHED"
    default_message = "The delivery has been attempted as often as a delivery may be."


class TooManyWebhookSecrets(Conflict):
    error_code = "TOO_MANY_WEBHOOK_SECRETS"
    default_message = (
        "The caller already has 5 valid signing secrets (a rotated one stays valid for 24 "
        "hours); create another once the oldest has expired."
    )


class IdempotencyKeyReused(ApplicationError):
    status_code = 422
    error_code = "IDEMPOTENCY_KEY_REUSED"
    default_message = (
        "This Idempotency-Key was used with another request body (or endpoint) in the last "
        "24 hours; use a new key for a new request."
    )


class InvalidCursor(InvalidRequest):
    error_code = "INVALID_CURSOR"
    default_message = "The cursor is not valid; use next_cursor from the previous page."


class PayloadTooLarge(ApplicationError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class RateLimited(ApplicationError):
    status_code = 429
    error_code = "RATE_LIMITED"
    default_message = "Too many requests; retry after the time in Retry-After."


class InternalError(ApplicationError):
    pass


class RuntimeConnectionFailed(ApplicationError):
    status_code = 502
    error_code = "CONNECTION_FAILED"
    default_message = "Could not connect to the SkyMarshal runtime."


class RuntimeAccessDenied(ApplicationError):
    """The runtime's WebSocket handshake was refused with 401 or 403: this API's role may
    not open the stream. Retrying cannot help; the role's policy must change."""

    status_code = 502
    error_code = "RUNTIME_ACCESS_DENIED"
    default_message = (
        "The SkyMarshal runtime refused this API's credentials; its role needs "
        "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream on the runtime."
    )


class RuntimeFailed(ApplicationError):
    status_code = 502
    error_code = "RUNTIME_ERROR"
    default_message = "The SkyMarshal runtime reported an error."


class InvalidRuntimeResponse(ApplicationError):
    status_code = 502
    error_code = "INVALID_RUNTIME_RESPONSE"
    default_message = "The SkyMarshal runtime sent a response that could not be understood."


class RuntimeUnavailable(ApplicationError):
    status_code = 503
    error_code = "RUNTIME_UNAVAILABLE"
    default_message = "The SkyMarshal runtime is busy or throttled; retry after Retry-After."


class StorageUnavailable(ApplicationError):
    status_code = 503
    error_code = "STORAGE_UNAVAILABLE"
    default_message = "Session storage is unavailable; retry after Retry-After."
    default_headers = {"Retry-After": "1"}  # noqa: RUF012 - read only


class RunCancelled(ApplicationError):
    status_code = 409
    error_code = "CANCELLED"
    default_message = "The run was cancelled before it ended."


class WorkerLost(ApplicationError):
    status_code = 500
    error_code = "WORKER_LOST"
    default_message = (
        "The run's worker stopped before the run ended (its deadline passed with no outcome)."
    )


class WorkerFailed(ApplicationError):
    status_code = 500
    error_code = "WORKER_FAILED"
    default_message = "The run's worker failed every attempt to run it."


class RunDispatchFailed(ApplicationError):
    status_code = 503
    error_code = "RUN_DISPATCH_FAILED"
    default_message = (
        "The run could not be handed to a background worker; it was not started. "
        "Retry after Retry-After."
    )
    default_headers = {"Retry-After": "5"}  # noqa: RUF012 - read only


class RuntimeTimeout(ApplicationError):
    status_code = 504
    error_code = "TIMEOUT"
    default_message = "The SkyMarshal runtime did not finish before the deadline."


# Failures that say nothing about the request, only that the runtime could not be reached
# or was busy just then: an Idempotency-Key does not keep them as its answer, so a retry
# with the same key runs again.
RETRYABLE_ERROR_CODES = frozenset(
    {RuntimeConnectionFailed.error_code, RuntimeUnavailable.error_code}
)


def utc_now_iso() -> str:
    """Now as ISO 8601 UTC with milliseconds and a Z, the API's one timestamp format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(
    *,
    request_id: str,
    error_code: str,
    message: str,
    details: dict[str, Any] | None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """The ErrorResponse of the design: the one shape of every error (its error_code is
    also the current request's, for its log line and metrics)."""
    request_error_record(error_code)
    return {
        "status": "error",
        "request_id": request_id,
        "error_code": error_code,
        "error_message": message,
        "details": details,
        "timestamp": timestamp or utc_now_iso(),
    }


def _from_drf(exc: drf_exceptions.APIException) -> ApplicationError:
    """Our error for one of DRF's, keeping DRF's status code and message."""
    carried = getattr(exc, "application_error", None)
    if isinstance(carried, ApplicationError):
        return carried
    if isinstance(exc, drf_exceptions.ValidationError):
        return InvalidRequest(
            "The request is not valid; see details for each field.",
            details={"fields": exc.detail}
            if isinstance(exc.detail, dict)
            else {"errors": exc.detail},
        )
    if isinstance(exc, drf_exceptions.ParseError):
        return InvalidJson(f"The request body is not valid JSON: {exc.detail}")
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return UnsupportedMediaType(f"{exc.detail} Send Content-Type: application/json.")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return NotAcceptable(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotFound):
        return NotFound(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return Unauthorized(str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return RateLimited(headers={"Retry-After": str(wait)})
    error = ApplicationError(str(exc.detail))
    error.status_code = exc.status_code
    error.error_code = str(exc.default_code).upper()
    return error


def as_application_error(exc: BaseException) -> ApplicationError:
    """Our error for any exception; an unknown one becomes INTERNAL_ERROR, with no detail."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(
            f"The request body may be at most {settings.MAX_REQUEST_BODY_BYTES} bytes.",
            details={"max_bytes": settings.MAX_REQUEST_BODY_BYTES},
        )
    if isinstance(exc, DjangoPermissionDenied):
        return Forbidden()
    if isinstance(exc, drf_exceptions.APIException):
        return _from_drf(exc)
    return InternalError()


def error_response(request: HttpRequest | None, error: ApplicationError) -> JsonResponse:
    body = error_body(
        request_id=request_id_of(request),
        error_code=error.error_code,
        message=error.message,
        details=error.details,
    )
    response = JsonResponse(body, status=error.status_code)
    for name, value in error.headers.items():
        response[name] = value
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception a view raises, in the error shape."""
    request = context.get("request")
    error = as_application_error(exc)
    if isinstance(error, InternalError) and error is not exc:
        logger.error("Unhandled exception in %s", context.get("view"), exc_info=exc)
    body = error_body(
        request_id=request_id_of(request),
        error_code=error.error_code,
        message=error.message,
        details=error.details,
        timestamp=error.timestamp,
    )
    headers = dict(error.headers)
    auth_header = getattr(exc, "auth_header", None)
    if error.status_code == 401 and auth_header:
        headers.setdefault("WWW-Authenticate", str(auth_header))
    return Response(body, status=error.status_code, headers=headers)


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: paths no view matches."""
    return error_response(request, NotFound(f"No resource exists at {request.path}."))


def server_error_view(request: HttpRequest) -> HttpResponse:
    """Django's handler500: the last line of defence, never a traceback."""
    return error_response(request, InternalError())


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler400 (e.g. a Host header not in ALLOWED_HOSTS)."""
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, as_application_error(exception))
    return error_response(request, InvalidRequest("The request could not be processed."))


def permission_denied_view(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    """Django's handler403 (e.g. a failed CSRF check on a staff form)."""
    return error_response(request, Forbidden())
