"""One source for CORS: the stage's CORS_ALLOWED_ORIGINS (environment_variables in
zappa_settings.json, baked into the package) is what the packaged app grants, through
Zappa's handler, to a browser's preflight and cross-origin request, and what API Gateway's
own responses grant (scripts/apigateway_stage.py). zappa_settings.json has no Zappa `cors`
block: preflights reach the app through the OPTIONS method of /api/v1/{proxy+}."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.apigateway_stage import stage_environment
from scripts.lambda_invoke import LambdaProcess
from skymarshal_api.web.gateway_responses import (
    GATEWAY_ERRORS,
    cors_allowed_origins,
    gateway_cors_origin,
    gateway_response_parameters,
)
from tests.deployment.conftest import STAGE, stage_settings
from tests.deployment.events import iam_identity, response_json, rest_event

UNCONFIGURED = "https://elsewhere.example.com"
ALLOW_ORIGIN = "access-control-allow-origin"


@pytest.fixture(scope="module")
def configured_origin() -> str:
    origins = cors_allowed_origins(stage_settings(STAGE)["environment_variables"])
    assert origins, f"the {STAGE} stage allows no origin: nothing to test"
    return origins[0]


def _with_headers(event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    event["headers"] = {**event["headers"], **headers}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    return event


def _preflight(origin: str) -> dict[str, Any]:
    """What a browser sends before a signed JSON POST: unsigned, so it reaches the app
    through OPTIONS /api/v1/{proxy+} (authorization NONE) with no caller identity."""
    event = rest_event("OPTIONS", "/api/v1/invoke")
    for name in ("Authorization", "X-Amz-Date", "Accept"):
        event["headers"].pop(name)
    event["resource"] = "/api/v1/{proxy+}"
    event["pathParameters"] = {"proxy": "invoke"}
    return _with_headers(
        event,
        {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": (
                "authorization,content-type,idempotency-key,x-amz-date,x-amz-security-token"
            ),
        },
    )


def _headers(result: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in result["headers"].items()}


def test_a_preflight_from_the_configured_origin_is_granted(
    lambda_process: LambdaProcess, configured_origin: str
) -> None:
    result = lambda_process.invoke(_preflight(configured_origin))
    assert result["statusCode"] == 200, result
    headers = _headers(result)
    assert headers[ALLOW_ORIGIN] == configured_origin
    assert "POST" in headers["access-control-allow-methods"]
    allowed = {h.strip() for h in headers["access-control-allow-headers"].lower().split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-amz-date"} <= allowed
    assert {"x-amz-security-token"} <= allowed


def test_a_cross_origin_request_from_the_configured_origin_is_granted(
    lambda_process: LambdaProcess, configured_origin: str
) -> None:
    event = _with_headers(
        rest_event("GET", "/api/v1/identity", identity=iam_identity()),
        {"Origin": configured_origin},
    )
    result = lambda_process.invoke(event)
    assert result["statusCode"] == 200, result
    headers = _headers(result)
    assert headers[ALLOW_ORIGIN] == configured_origin
    assert "x-request-id" in headers["access-control-expose-headers"].lower()
    # An error from the app is granted too (the browser can read the error shape).
    missing = lambda_process.invoke(
        _with_headers(
            rest_event("GET", "/api/v1/nowhere", identity=iam_identity()),
            {"Origin": configured_origin},
        )
    )
    assert missing["statusCode"] == 404
    assert _headers(missing)[ALLOW_ORIGIN] == configured_origin
    assert response_json(missing)["status"] == "error"


def test_an_unconfigured_origin_gets_no_cors_grant(lambda_process: LambdaProcess) -> None:
    preflight = lambda_process.invoke(_preflight(UNCONFIGURED))
    assert ALLOW_ORIGIN not in _headers(preflight), preflight
    request = lambda_process.invoke(
        _with_headers(
            rest_event("GET", "/api/v1/identity", identity=iam_identity()),
            {"Origin": UNCONFIGURED},
        )
    )
    assert request["statusCode"] == 200
    assert ALLOW_ORIGIN not in _headers(request)


def test_the_gateway_responses_grant_the_origin_the_app_grants(
    lambda_process: LambdaProcess, configured_origin: str
) -> None:
    granted_by_app = _headers(lambda_process.invoke(_preflight(configured_origin)))[ALLOW_ORIGIN]
    origin = gateway_cors_origin(cors_allowed_origins(stage_environment(STAGE)))
    assert origin == granted_by_app
    for error in GATEWAY_ERRORS:
        parameters = gateway_response_parameters(error, origin)
        header = parameters["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert header == f"'{granted_by_app}'", error.response_type


def test_no_stage_has_a_second_source_of_cors() -> None:
    for stage in ("dev", "prod"):
        settings = stage_settings(stage)
        assert "cors" not in settings, f"{stage}: Zappa's cors would answer OPTIONS itself"
        assert "CORS_ALLOWED_ORIGINS" in settings["environment_variables"]
    # Production allows no origin unless one is configured: its gateway grants none either.
    assert gateway_cors_origin(cors_allowed_origins(stage_environment("prod"))) is None
