"""API Gateway's own answers (skymarshal_api/web/gateway_responses.py), rendered as API Gateway
renders a gateway response's body (simple substitution of $context variables, no VTL) and
checked against the ErrorResponse component of the committed openapi.yaml."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from skymarshal_api.web.gateway_responses import (
    GATEWAY_ERRORS,
    GatewayError,
    gateway_response_parameters,
    gateway_response_templates,
)
from skymarshal_api.web.serializers import GATEWAY_TIME_PATTERN
from tests.openapi import openapi_document

REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"  # the form of $context.requestId
REQUEST_TIME = "02/Dec/2026:04:26:33 +0000"  # the form of $context.requestTime
# What API Gateway may say ($context.error.message): quotes, new lines and backslashes
# included, as in INVALID_SIGNATURE's canonical request.
MESSAGES = (
    "Missing Authentication Token",
    "The request signature we calculated does not match the signature you provided.\n\n"
    "The Canonical String for this request should have been\n'POST\n/dev/api/v1/invoke\n\n"
    'content-type:application/json\nhost:a1b2c3d4e5.execute-api.us-east-1.amazonaws.com\n"'
    "x\\y'",
    "Débit dépassé: 100/s",
)
_VARIABLE = re.compile(r"\$context\.[A-Za-z.]*[A-Za-z]")


def rendered(template: str, response_type: str, message: str) -> str:
    """The body API Gateway sends: each $context variable replaced by its value, the
    ``…String`` variants being the JSON-quoted value (AWS's own default template is
    ``{"message":$context.error.messageString}``)."""
    values = {
        "$context.requestId": REQUEST_ID,
        "$context.requestTime": REQUEST_TIME,
        "$context.requestTimeEpoch": "1795992393000",
        "$context.error.responseType": response_type,
        "$context.error.message": message,
        "$context.error.messageString": json.dumps(message),
    }

    def value(match: re.Match[str]) -> str:
        if match[0] not in values:
            pytest.fail(f"{response_type}: {match[0]} is not a variable this test knows")
        return values[match[0]]

    return _VARIABLE.sub(value, template)


def _strict_formats() -> jsonschema.FormatChecker:
    """date-time and uuid checked for real (jsonschema checks neither without extras)."""
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("uuid", raises=ValueError)
    def _uuid(value: object) -> bool:
        return not isinstance(value, str) or bool(uuid.UUID(value))

    return checker


@pytest.fixture(scope="module")
def error_schema() -> jsonschema.Draft7Validator:
    document = openapi_document()
    schema = dict(document["components"]["schemas"]["ErrorResponse"])
    schema["properties"] = {**schema["properties"], "status": {"enum": ["error"]}}
    schema.pop("description", None)
    return jsonschema.Draft7Validator(
        {**schema, "properties": _nullable_as_json_schema(schema["properties"])},
        format_checker=_strict_formats(),
    )


def _nullable_as_json_schema(properties: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for name, spec in properties.items():
        spec = {key: value for key, value in spec.items() if key != "description"}
        if spec.pop("nullable", False):
            spec = {"anyOf": [spec, {"type": "null"}]}
        converted[name] = spec
    return converted


@pytest.mark.parametrize("error", GATEWAY_ERRORS, ids=lambda error: error.response_type)
def test_each_gateway_response_renders_to_the_error_shape_of_the_schema(
    error: GatewayError, error_schema: jsonschema.Draft7Validator
) -> None:
    template = gateway_response_templates(error)["application/json"]
    for message in MESSAGES:
        body = json.loads(rendered(template, error.response_type, message))
        problems = [e.message for e in error_schema.iter_errors(body)]
        assert not problems, f"{error.response_type}: {problems}\n{body}"
        assert body["request_id"] == REQUEST_ID
        assert body["error_code"] == error.error_code
        assert body["error_message"] == error.message
        assert body["timestamp"] == REQUEST_TIME
        assert body["details"] == {
            "source": "api_gateway",
            "response_type": error.response_type,
            "gateway_message": message,
        }


def test_the_schema_check_itself_refuses_a_timestamp_or_id_out_of_shape(
    error_schema: jsonschema.Draft7Validator,
) -> None:
    template = gateway_response_templates(GATEWAY_ERRORS[0])["application/json"]
    body = json.loads(rendered(template, "MISSING_AUTHENTICATION_TOKEN", MESSAGES[0]))
    assert error_schema.is_valid(body)
    assert error_schema.is_valid({**body, "timestamp": "2026-12-02T04:26:33.120Z"})
    for timestamp in ("1795992393000", "yesterday", "2026-12-02 04:26", "2/Dec/2026:04:26:33"):
        assert not error_schema.is_valid({**body, "timestamp": timestamp}), timestamp
    assert not error_schema.is_valid({**body, "request_id": "not-a-uuid"})
    assert not error_schema.is_valid({**body, "status": "failed"})
    assert re.match(GATEWAY_TIME_PATTERN, REQUEST_TIME)


def test_every_gateway_error_says_what_to_do_and_has_a_stable_code() -> None:
    for error in GATEWAY_ERRORS:
        assert re.fullmatch(r"[A-Z][A-Z_]+[A-Z]", error.error_code), error
        assert error.message.endswith("."), error
        assert error.status is None or 400 <= error.status < 600
    by_type = {error.response_type: error for error in GATEWAY_ERRORS}
    # A throttled Lambda (a proxy integration's INTEGRATION_FAILURE) is a retryable 503.
    assert (by_type["INTEGRATION_FAILURE"].status, by_type["INTEGRATION_FAILURE"].retry_after) == (
        503,
        2,
    )
    assert "POST /api/v1/invocations" in by_type["INTEGRATION_TIMEOUT"].message
    assert by_type["INTEGRATION_TIMEOUT"].status == 504
    assert by_type["THROTTLED"].retry_after == 1
    assert by_type["DEFAULT_4XX"].status is None
    assert by_type["DEFAULT_5XX"].status is None


def test_the_headers_carry_the_cors_grant_only_when_an_origin_is_allowed() -> None:
    throttled = next(e for e in GATEWAY_ERRORS if e.response_type == "THROTTLED")
    assert gateway_response_parameters(throttled, "https://ops.example.com") == {
        "gatewayresponse.header.Content-Type": "'application/json'",
        "gatewayresponse.header.Retry-After": "'1'",
        "gatewayresponse.header.Access-Control-Allow-Origin": "'https://ops.example.com'",
        "gatewayresponse.header.Access-Control-Expose-Headers": "'Retry-After,X-Amzn-RequestId'",
    }
    assert gateway_response_parameters(throttled, None) == {
        "gatewayresponse.header.Content-Type": "'application/json'",
        "gatewayresponse.header.Retry-After": "'1'",
    }


def test_the_schema_lists_every_gateway_error() -> None:
    description = openapi_document()["components"]["schemas"]["ErrorResponse"]["description"]
    for error in GATEWAY_ERRORS:
        assert f"| {error.response_type} |" in description
        assert f"| {error.error_code} |" in description


def test_the_readme_table_says_each_gateway_errors_status_and_code() -> None:
    from scripts.stack import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[
        readme.index("### The gateway's own errors") : readme.index("### CORS: one source")
    ]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    for error in GATEWAY_ERRORS:
        row = next((r for r in rows if error.response_type in r[0].strip().split(", ")), None)
        assert row is not None, f"README: no row for {error.response_type}"
        status = str(error.status) if error.status else "as API Gateway chose"
        assert row[1].strip().startswith(status), (error.response_type, row[1])
        assert row[2].strip() == error.error_code, (error.response_type, row[2])
