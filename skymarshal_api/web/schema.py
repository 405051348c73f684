"""OpenAPI descriptions shared by the endpoints, for drf-spectacular: the authentication
scheme, the documented error responses and the Server-Sent Events of /invoke.

Every authenticated operation takes an AWS SigV4 signature (service ``execute-api``);
behind API Gateway the IAM authorizer checks it, locally the app does. That is the one
security scheme of the public contract.

Every error an operation can answer is documented with the one error shape and an
example per error code; ``make schema`` writes the schema to openapi.yaml, which a test
keeps in step with the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from skymarshal_api.telemetry.trace_context import (
    BAGGAGE_MAX,
    TRACEPARENT_MAX,
    TRACEPARENT_PATTERN,
    TRACESTATE_MAX,
)
from skymarshal_api.web.errors import (
    ApplicationError,
    InternalError,
    RateLimited,
    SignatureMismatch,
    Unauthorized,
    UnsupportedMediaType,
)
from skymarshal_api.web.gateway_responses import GATEWAY_ERRORS, GatewayError, gateway_body_render
from skymarshal_api.web.headers import InvalidHeader
from skymarshal_api.web.serializers import ErrorResponseSerializer

# A real SkyMarshal prompt, and the local runtime's answers to it (buffered and streamed)
# through the API, recorded by `make openapi-examples`.
EXAMPLE_PROMPT = (
    "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault; 210 passengers, "
    "perishable cargo on board."
)
EXAMPLES_DIR = Path(__file__).resolve().parent / "openapi_examples"
EXAMPLE_RESPONSE: dict[str, Any] = json.loads((EXAMPLES_DIR / "invoke_response.json").read_text())
EXAMPLE_STREAM = (EXAMPLES_DIR / "invoke_stream.txt").read_text()

# Fixed values, so that the examples (and openapi.yaml) do not change from run to run.
EXAMPLE_REQUEST_ID = "3f1c2b7a-9d4e-4c8f-a6b5-2e7d9c0f1a34"
EXAMPLE_TIMESTAMP = "2026-11-23T10:00:00.000Z"


def error_example(error: ApplicationError) -> OpenApiExample:
    """An example of ``error`` as a caller receives it, named by its error code."""
    return OpenApiExample(
        error.error_code,
        value={
            "status": "error",
            "request_id": EXAMPLE_REQUEST_ID,
            "error_code": error.error_code,
            "error_message": error.message,
            "details": error.details,
            "timestamp": EXAMPLE_TIMESTAMP,
        },
    )


def error_response(description: str, *errors: ApplicationError) -> OpenApiResponse:
    """A documented error status: the error shape, ``description`` and one example per
    error in ``errors`` (which must all have the same status)."""
    statuses = {error.status_code for error in errors}
    if len(statuses) > 1:
        raise ValueError(f"error_response: one status per response, got {sorted(statuses)}")
    return OpenApiResponse(
        ErrorResponseSerializer,
        description=description,
        examples=[error_example(error) for error in errors],
    )


# The errors every authenticated operation may answer.
AUTHENTICATED_ERRORS = {
    401: error_response(
        "UNAUTHORIZED: the Authorization header is missing. Sign the request with AWS "
        "SigV4 (service execute-api).",
        Unauthorized("Authentication credentials were not provided."),
    ),
    403: error_response(
        "FORBIDDEN: the signature does not verify (wrong secret, unknown key, X-Amz-Date "
        "more than 5 minutes off, body changed, session token missing or unsigned). The "
        "message is the same whatever the reason.",
        SignatureMismatch(),
    ),
    429: error_response(
        "RATE_LIMITED: the caller's requests per window are used up; retry after the "
        "seconds in Retry-After.",
        RateLimited(
            "Rate limit of 600 requests per 60 s exceeded; retry in 17 s.",
            details={"limit": 600, "window_seconds": 60, "retry_after": 17},
        ),
    ),
}
# Any operation: a failure nobody foresaw (a bug). The body carries no detail of its cause;
# quote its request_id when reporting it.
INTERNAL_ERROR_RESPONSE = {
    500: error_response(
        "INTERNAL_ERROR: an unexpected failure. The body carries no detail; quote the "
        "request_id when reporting it.",
        InternalError(),
    )
}


# API Gateway's own answers (skymarshal_api/web/gateway_responses.py) that any operation may get,
# and that a signed operation may get besides.
GATEWAY_ON_EVERY_OPERATION = (
    "THROTTLED",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "DEFAULT_5XX",
)
GATEWAY_ON_SIGNED_OPERATIONS = (
    "MISSING_AUTHENTICATION_TOKEN",
    "INVALID_SIGNATURE",
    "EXPIRED_TOKEN",
    "ACCESS_DENIED",
)
EXAMPLE_GATEWAY_TIME = "23/Nov/2026:10:00:00 +0000"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def gateway_error_example(error: GatewayError) -> dict[str, Any]:
    """``error``'s body as API Gateway renders it, with fixed sample values."""
    body = gateway_body_render(
        error,
        {
            "requestId": EXAMPLE_REQUEST_ID,
            "requestTime": EXAMPLE_GATEWAY_TIME,
            "error.responseType": error.response_type,
            "error.messageString": json.dumps(error.aws_message or "Forbidden"),
        },
    )
    return {"value": json.loads(body), "summary": f"{error.error_code} (API Gateway)"}


def _gateway_error_document(responses: dict[str, Any], error: GatewayError) -> None:
    status = str(error.documented_status)
    response = responses.setdefault(status, {"description": "", "content": {}})
    line = f"API Gateway's {error.error_code}: {error.message}"
    response["description"] = f"{response['description']}\n\n{line}".strip()
    content = response.setdefault("content", {}).setdefault(
        "application/json", {"schema": _ERROR_REF}
    )
    if content.get("schema") != _ERROR_REF:  # health's 503 is its own report
        content["schema"] = {"oneOf": [content["schema"], _ERROR_REF]}
    name = "Gateway" + error.response_type.title().replace("_", "")
    content.setdefault("examples", {})[name] = gateway_error_example(error)


def gateway_errors_documented(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: what API Gateway answers before the app can
    (its gateway responses) on every operation, and the table of them on ErrorResponse."""
    by_type = {error.response_type: error for error in GATEWAY_ERRORS}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            types = list(GATEWAY_ON_EVERY_OPERATION)
            if any(requirement for requirement in operation.get("security", [])):
                types = list(GATEWAY_ON_SIGNED_OPERATIONS) + types
            for response_type in types:
                _gateway_error_document(operation["responses"], by_type[response_type])
    component = result.get("components", {}).get("schemas", {}).get("ErrorResponse")
    if component is not None:
        rows = "\n".join(
            f"| {e.response_type} | {e.status or 'as API Gateway chose'} | {e.error_code} |"
            for e in GATEWAY_ERRORS
        )
        component["description"] = (
            f"{component.get('description', '')} API Gateway answers some requests itself "
            "(they never reach the API) in the same shape, with details.source "
            "`api_gateway`, details.response_type and details.gateway_message (what API "
            "Gateway said):\n\n| response type | status | error_code |\n|---|---|---|\n"
            f"{rows}"
        )
    return result


def responses_in_status_order(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: each operation's responses by status code."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = dict(sorted(operation["responses"].items()))
    return result


# /invoke's Server-Sent Events: the schema of one event, as an SSE client reads it.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "One event of the stream. `data` is one line of JSON: for `start` "
        "{request_id, session_id}; for `chunk` {agent, status (analyzing | completed), phase, "
        "sequence, partial_result (the agent's assessment, when completed)}; for `complete` "
        "the InvokeResponse; for `error` the ErrorResponse. The stream ends after "
        "`complete` or `error`; `: heartbeat` comments keep it alive."
    ),
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[1-9][0-9]*$", "description": "1, 2, 3, …"},
        "event": {"type": "string", "enum": ["start", "chunk", "complete", "error"]},
        "data": {"type": "string", "description": "One line of JSON."},
    },
}

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


# Any operation: a header the API reads outside its grammar (skymarshal_api.web.headers), or a
# request body declared in a charset other than UTF-8.
_HEADER_ERRORS = {
    "400": (
        "INVALID_REQUEST: a header the API reads is outside its grammar; details.header names it.",
        InvalidHeader("X-Amz-Date", "must be the signing time as YYYYMMDDTHHMMSSZ (UTC)."),
    ),
    "415": (
        "UNSUPPORTED_MEDIA_TYPE: the body is not JSON in UTF-8.",
        UnsupportedMediaType(
            "Request bodies are JSON in UTF-8: send Content-Type: application/json (or "
            "application/json; charset=utf-8), not charset=latin-1.",
            details={"header": "Content-Type", "accepted": ["application/json; charset=utf-8"]},
        ),
    ),
}


def header_errors_documented(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the 400 of a header
    outside its grammar and the 415 of a body not in UTF-8 (the middleware answers them
    before any view), as an example beside the operation's own, or as a response."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, (description, error) in _HEADER_ERRORS.items():
                example = error_example(error)
                response = operation["responses"].setdefault(
                    status,
                    {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorResponse"},
                                "examples": {},
                            }
                        },
                        "description": description,
                    },
                )
                content = response.setdefault("content", {}).setdefault("application/json", {})
                content.setdefault("schema", {"$ref": "#/components/schemas/ErrorResponse"})
                examples = content.setdefault("examples", {})
                name = f"{error.error_code}_HEADER"
                examples.setdefault(
                    name, {"value": example.value, "summary": f"{error.error_code} (a header)"}
                )
    return result


# --- trace context -------------------------------------------------------------------------

TRACE_CONTEXT_PARAMETERS = [
    OpenApiParameter(
        "traceparent",
        {"type": "string", "pattern": TRACEPARENT_PATTERN, "maxLength": TRACEPARENT_MAX},
        OpenApiParameter.HEADER,
        description="W3C Trace Context: the caller's span, continued by the API and the "
        "runtime (e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01). An invalid "
        "value is ignored and a new trace starts; it is never an error. Without it, "
        "X-Amzn-Trace-Id (set by API Gateway) is continued.",
    ),
    OpenApiParameter(
        "tracestate",
        {"type": "string", "maxLength": TRACESTATE_MAX},
        OpenApiParameter.HEADER,
        description="W3C Trace Context: vendor state passed on to the runtime with "
        "traceparent (at most 32 list-members); dropped when invalid.",
    ),
    OpenApiParameter(
        "baggage",
        {"type": "string", "maxLength": BAGGAGE_MAX},
        OpenApiParameter.HEADER,
        description="W3C Baggage passed on to the runtime (at most 64 list-members and "
        "4096 bytes, what AgentCore Runtime forwards); dropped when invalid.",
    ),
]
_TRACEPARENT_RESPONSE_HEADER = {
    "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$"},
    "description": "W3C Trace Context: this request's span in its trace (the caller's "
    "traceparent continued, else a new trace); its id is the request's X-Ray segment id.",
}


def trace_headers_documented(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every response the API writes carries
    ``traceparent`` (the observability middleware sets it on all of them), documented
    once as a component header."""
    result.setdefault("components", {}).setdefault("headers", {})["traceparent"] = (
        _TRACEPARENT_RESPONSE_HEADER
    )
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for response in operation["responses"].values():
                if isinstance(response, dict) and "$ref" not in response:
                    response.setdefault("headers", {})["traceparent"] = {
                        "$ref": "#/components/headers/traceparent"
                    }
    return result
