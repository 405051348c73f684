"""API Gateway's own answers (its gateway responses) in the API's one error shape.

Some requests never reach the app: API Gateway answers them itself (an unsigned request, a
stage throttle, a Lambda it could not invoke, a function slower than its 29 s). By default
it answers ``{"message": …}`` without CORS headers. ``scripts/apigateway_stage.py`` puts a
gateway response for every response type (``put_gateway_response``, then a deployment)
after each deploy, built here; the OpenAPI schema documents the same table.

What a gateway response can carry (Amazon API Gateway Developer Guide, "Gateway responses
for REST APIs" and "x-amazon-apigateway-gateway-responses.responseTemplates"):

- a status code; on DEFAULT_4XX and DEFAULT_5XX none, since setting it there changes the
  status of every other 4XX/5XX response ("Gateway response types for API Gateway");
- headers from static values (``'…'``) or the request's parameters, never from ``$context``;
- a body template that is *not* run through VTL: only simple substitution of ``$context``
  variables. ``$context.requestId`` is the id API Gateway also sends as x-amzn-RequestId;
  ``$context.requestTime`` is the request's time as ``dd/MMM/yyyy:HH:mm:ss +-hhmm`` (no
  variable gives ISO 8601, so the schema's ``timestamp`` admits both forms);
  ``$context.error.messageString`` is API Gateway's message as a quoted JSON string, as in
  its own default template ``{"message":$context.error.messageString}``.

Standard library only: ``scripts/apigateway_stage.py``, which Zappa loads by path, reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The body of every gateway response: the ErrorResponse of design.md.
_BODY = (
    '{{"status": "error", "request_id": "$context.requestId", "error_code": "{error_code}", '
    '"error_message": "{message}", "details": {{"source": "api_gateway", '
    '"response_type": "$context.error.responseType", '
    '"gateway_message": $context.error.messageString}}, '
    '"timestamp": "$context.requestTime"}}'
)
# Headers a browser may read on a gateway response (the body carries the request id).
EXPOSED_HEADERS = "Retry-After,X-Amzn-RequestId"
_ORIGIN = re.compile(r"^https?://[^/\s,'*]+$")


@dataclass(frozen=True)
class GatewayError:
    """How API Gateway answers one of its response types."""

    response_type: str
    # None: the status API Gateway chose (DEFAULT_4XX, DEFAULT_5XX) stays.
    status: int | None
    error_code: str
    message: str
    retry_after: int | None = None
    www_authenticate: bool = False
    # What API Gateway itself says ($context.error.message), for the documentation.
    aws_message: str = ""

    @property
    def documented_status(self) -> int:
        """The status the OpenAPI schema lists it under."""
        return self.status or {"DEFAULT_4XX": 400, "DEFAULT_5XX": 502}[self.response_type]

    def body_template(self) -> str:
        if '"' in self.message or "\\" in self.message or "$" in self.message:
            raise ValueError(f"{self.response_type}: a message may not hold quotes, \\ or $")
        return _BODY.format(error_code=self.error_code, message=self.message)


_SIGN = "sign the request with AWS Signature Version 4 for service execute-api"
# Every response type of GetGatewayResponses (API Gateway API Reference, GatewayResponse),
# each answered deliberately.
GATEWAY_ERRORS: tuple[GatewayError, ...] = (
    GatewayError(
        "MISSING_AUTHENTICATION_TOKEN",
        401,
        "UNAUTHORIZED",
        f"The request is not signed (or no such method exists at this path): {_SIGN}, "
        "and check the stage in the URL. GET /api/v1/health is the only unsigned path.",
        www_authenticate=True,
        aws_message="Missing Authentication Token",
    ),
    GatewayError(
        "INVALID_SIGNATURE",
        403,
        "INVALID_SIGNATURE",
        "The signature does not match the request: sign the exact method, URL (with the "
        "stage), query string, headers and body you send, for service execute-api in the "
        "API's region; details.gateway_message has the canonical request AWS expected.",
        aws_message=(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        ),
    ),
    GatewayError(
        "EXPIRED_TOKEN",
        403,
        "EXPIRED_TOKEN",
        "The credentials' session token has expired: get new credentials (for SSO, aws sso "
        "login) and sign again.",
        aws_message="The security token included in the request is expired",
    ),
    GatewayError(
        "ACCESS_DENIED",
        403,
        "ACCESS_DENIED",
        "Your IAM principal may not call this API: ask for execute-api:Invoke on "
        "arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/* in its policy.",
        aws_message=(
            "User: arn:aws:sts::123456789012:assumed-role/ops-controller/jane is not "
            "authorized to perform: execute-api:Invoke on resource: "
            "arn:aws:execute-api:us-east-1:********9012:a1b2c3d4e5/dev/POST/api/v1/invoke"
        ),
    ),
    GatewayError(
        "INVALID_API_KEY",
        403,
        "INVALID_API_KEY",
        "The x-api-key header is not a key of this stage's usage plan: send the key you "
        "were given, or none.",
    ),
    GatewayError(
        "WAF_FILTERED",
        403,
        "WAF_FILTERED",
        "A web ACL (AWS WAF) in front of the API blocked this request; ask the API's "
        "operators which rule matched, quoting the request_id.",
    ),
    GatewayError(
        "UNAUTHORIZED",
        401,
        "UNAUTHORIZED",
        f"The authorizer did not accept the request's credentials: {_SIGN}.",
        www_authenticate=True,
    ),
    GatewayError(
        "RESOURCE_NOT_FOUND",
        404,
        "NOT_FOUND",
        "No resource exists at this path: check the stage and the path (/api/v1/...).",
    ),
    GatewayError(
        "BAD_REQUEST_PARAMETERS",
        400,
        "INVALID_REQUEST",
        "The request's parameters are not valid: see details.gateway_message.",
    ),
    GatewayError(
        "BAD_REQUEST_BODY",
        400,
        "INVALID_REQUEST",
        "The request body is not valid: see details.gateway_message.",
    ),
    GatewayError(
        "REQUEST_TOO_LARGE",
        413,
        "PAYLOAD_TOO_LARGE",
        "The request is larger than API Gateway accepts (10 MB): send a smaller body (the "
        "API itself takes at most 64 KiB by default).",
    ),
    GatewayError(
        "UNSUPPORTED_MEDIA_TYPE",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "The request's media type is not supported: send JSON with Content-Type: application/json.",
    ),
    GatewayError(
        "THROTTLED",
        429,
        "THROTTLED",
        "The stage's request rate (all callers together) is exceeded: retry after "
        "Retry-After seconds, with backoff and jitter.",
        retry_after=1,
        aws_message="Too Many Requests",
    ),
    GatewayError(
        "QUOTA_EXCEEDED",
        429,
        "QUOTA_EXCEEDED",
        "The daily quota of your API key's usage plan is used up: retry once the quota "
        "period restarts (the next UTC day), or ask for a higher quota.",
    ),
    GatewayError(
        "INTEGRATION_FAILURE",
        503,
        "SERVICE_UNAVAILABLE",
        "The API could not run the request: its function is at capacity (Lambda throttled "
        "it) or could not be invoked. Retry after Retry-After seconds with backoff; send an "
        "Idempotency-Key on POSTs so that a retry never runs twice.",
        retry_after=2,
        aws_message="Internal server error",
    ),
    GatewayError(
        "INTEGRATION_TIMEOUT",
        504,
        "GATEWAY_TIMEOUT",
        "API Gateway stopped waiting after 29 s; the run goes on and is recorded in its "
        "session. For runs that may take longer, use POST /api/v1/invocations and then GET "
        "/api/v1/invocations/{request_id}/wait.",
        aws_message="Endpoint request timed out",
    ),
    GatewayError(
        "API_CONFIGURATION_ERROR",
        # 502, not AWS's default 500: API Gateway could not use what the integration gave
        # it (e.g. a body it could not decode), as with a malformed Lambda proxy response.
        502,
        "GATEWAY_CONFIGURATION_ERROR",
        "API Gateway could not use the API's answer or its own configuration (a "
        "misconfiguration); retrying will not help. Report the request_id to the API's "
        "operators.",
    ),
    GatewayError(
        "AUTHORIZER_CONFIGURATION_ERROR",
        500,
        "GATEWAY_CONFIGURATION_ERROR",
        "The API's authorizer is misconfigured; retrying will not help. Report the "
        "request_id to the API's operators.",
    ),
    GatewayError(
        "AUTHORIZER_FAILURE",
        500,
        "AUTHORIZER_FAILURE",
        "The API's authorizer failed; retry later with backoff, and report the request_id "
        "if it persists.",
    ),
    GatewayError(
        "DEFAULT_4XX",
        None,
        "GATEWAY_REJECTED",
        "API Gateway refused the request before it reached the API: see "
        "details.gateway_message and details.response_type.",
    ),
    GatewayError(
        "DEFAULT_5XX",
        None,
        "GATEWAY_ERROR",
        "The API failed before it could answer (its function crashed or returned no valid "
        "response): retry later with backoff, with an Idempotency-Key on POSTs, and report "
        "the request_id if it persists.",
        aws_message="Internal server error",
    ),
)


def gateway_cors_origin(origins: Sequence[str]) -> str | None:
    """The Access-Control-Allow-Origin of every gateway response, from the app's
    CORS_ALLOWED_ORIGINS: a gateway response's headers are static, so it can name one
    origin. With several, the first is named: a browser on another allowed origin cannot
    read the gateway's (rare) own errors, and sees them as network errors; echoing the
    request's Origin instead would grant every origin, allowed or not. None when no origin
    is allowed (production's default): the gateway then grants none either."""
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ValueError(
                f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )
    return origins[0] if origins else None


def cors_allowed_origins(environment: Mapping[str, str]) -> list[str]:
    """CORS_ALLOWED_ORIGINS of a stage's environment, read as the app's settings read it
    (skymarshal_api.environment.env_list: comma-separated, blanks dropped)."""
    raw = environment.get("CORS_ALLOWED_ORIGINS") or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def gateway_response_parameters(error: GatewayError, origin: str | None) -> dict[str, str]:
    """The headers of ``error``'s gateway response (static values are single-quoted)."""
    headers = {"Content-Type": "application/json"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.www_authenticate:
        headers["WWW-Authenticate"] = "AWS4-HMAC-SHA256"
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()}


def gateway_response_templates(error: GatewayError) -> dict[str, str]:
    return {"application/json": error.body_template()}


_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z.]+)")


def gateway_body_render(error: GatewayError, context: Mapping[str, str]) -> str:
    """``error``'s body as API Gateway sends it: each ``$context.X`` replaced by
    ``context["X"]`` (for the schema's examples; KeyError for a variable not given)."""
    return _CONTEXT_VARIABLE.sub(lambda match: context[match[1]], error.body_template())
