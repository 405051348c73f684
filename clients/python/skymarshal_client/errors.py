"""One exception type per ``error_code`` of the API's error shape (openapi.yaml's
ErrorResponse), all under :class:`SkyMarshalError`, plus the client's own failures.

``except skymarshal_client.SessionBusy`` catches exactly one case; ``except
skymarshal_client.Conflict`` catches every 409; ``except SkyMarshalError`` catches them all.
"""

from __future__ import annotations

from typing import Any


class SkyMarshalError(Exception):
    """An error answer of the API (or of API Gateway in front of it)."""

    error_code = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        if error_code is not None:
            self.error_code = error_code
        self.request_id = request_id
        self.details = details or {}
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        status = f"{self.status_code} " if self.status_code is not None else ""
        return f"{status}{self.error_code}: {self.message}"


# --- the API's error codes, by status family ----------------------------------------------


class InvalidRequest(SkyMarshalError):
    error_code = "INVALID_REQUEST"


class InvalidJson(InvalidRequest):
    error_code = "INVALID_JSON"


class InvalidCursor(InvalidRequest):
    error_code = "INVALID_CURSOR"


class Unauthorized(SkyMarshalError):
    error_code = "UNAUTHORIZED"


class Forbidden(SkyMarshalError):
    error_code = "FORBIDDEN"


class InvalidSignature(Forbidden):
    error_code = "INVALID_SIGNATURE"


class ExpiredToken(Forbidden):
    error_code = "EXPIRED_TOKEN"


class AccessDenied(Forbidden):
    error_code = "ACCESS_DENIED"


class NotFound(SkyMarshalError):
    error_code = "NOT_FOUND"


class SessionNotFound(NotFound):
    error_code = "SESSION_NOT_FOUND"


class InvocationNotFound(NotFound):
    error_code = "INVOCATION_NOT_FOUND"


class MethodNotAllowed(SkyMarshalError):
    error_code = "METHOD_NOT_ALLOWED"


class NotAcceptable(SkyMarshalError):
    error_code = "NOT_ACCEPTABLE"


class Conflict(SkyMarshalError):
    error_code = "CONFLICT"


class SessionExpired(Conflict):
    error_code = "SESSION_EXPIRED"


class SessionBusy(Conflict):
    error_code = "SESSION_BUSY"


class InvocationFinished(Conflict):
    error_code = "INVOCATION_FINISHED"


class DeliveryNotFound(NotFound):
    error_code = "DELIVERY_NOT_FOUND"


class RedeliveryLimitReached(Conflict):
    error_code = "REDELIVERY_LIMIT_REACHED"


class TooManyWebhookSecrets(Conflict):
    error_code = "TOO_MANY_WEBHOOK_SECRETS"


class LengthRequired(SkyMarshalError):
    error_code = "LENGTH_REQUIRED"


class PayloadTooLarge(SkyMarshalError):
    error_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(SkyMarshalError):
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class IdempotencyKeyReused(SkyMarshalError):
    error_code = "IDEMPOTENCY_KEY_REUSED"


class RateLimited(SkyMarshalError):
    error_code = "RATE_LIMITED"


class Throttled(RateLimited):
    """API Gateway's own throttle (the stage, a usage plan or the account), in our shape."""

    error_code = "THROTTLED"


class InternalError(SkyMarshalError):
    error_code = "INTERNAL_ERROR"


class RuntimeConnectionFailed(SkyMarshalError):
    error_code = "CONNECTION_FAILED"


class RuntimeFailed(SkyMarshalError):
    error_code = "RUNTIME_ERROR"


class AgentExecutionFailed(RuntimeFailed):
    error_code = "AGENT_EXECUTION_FAILED"


class InvalidRuntimeResponse(SkyMarshalError):
    error_code = "INVALID_RUNTIME_RESPONSE"


class RuntimeUnavailable(SkyMarshalError):
    error_code = "RUNTIME_UNAVAILABLE"


class StorageUnavailable(SkyMarshalError):
    error_code = "STORAGE_UNAVAILABLE"


class RuntimeAccessDenied(RuntimeFailed):
    error_code = "RUNTIME_ACCESS_DENIED"


class ServiceUnavailable(SkyMarshalError):
    error_code = "SERVICE_UNAVAILABLE"


class RunDispatchFailed(ServiceUnavailable):
    error_code = "RUN_DISPATCH_FAILED"


class GatewayTimeout(SkyMarshalError):
    """API Gateway's 29 s integration timeout: the run goes on and is recorded."""

    error_code = "GATEWAY_TIMEOUT"


class RuntimeTimeout(SkyMarshalError):
    error_code = "TIMEOUT"


class RunCancelled(SkyMarshalError):
    error_code = "CANCELLED"


class WorkerLost(SkyMarshalError):
    error_code = "WORKER_LOST"


class GatewayError(SkyMarshalError):
    """An answer of API Gateway itself (``{"message": …}``, not the API's error shape): a
    missing or wrong signature, its throttle, a timed-out or crashed function."""

    error_code = "GATEWAY_ERROR"


# --- the client's own failures -------------------------------------------------------------


class WaitTimeout(SkyMarshalError):
    """``wait`` gave up: the run had not ended within the overall timeout."""

    error_code = "WAIT_TIMEOUT"


class StreamInterrupted(SkyMarshalError):
    """An event stream broke and could not be resumed within the reconnection budget."""

    error_code = "STREAM_INTERRUPTED"


def _codes() -> dict[str, type[SkyMarshalError]]:
    found: dict[str, type[SkyMarshalError]] = {}
    pending: list[type[SkyMarshalError]] = [SkyMarshalError]
    while pending:
        cls = pending.pop()
        found[cls.error_code] = cls
        pending.extend(cls.__subclasses__())
    return found


#: error_code → exception type, for every code the API documents.
ERRORS_BY_CODE: dict[str, type[SkyMarshalError]] = _codes()


def error_for(error_code: str | None) -> type[SkyMarshalError]:
    """The exception type of ``error_code`` (the base type for a code this client predates)."""
    return ERRORS_BY_CODE.get(error_code or "", SkyMarshalError)
