"""The request's keys on every log line, in process: under Zappa (AUTH_MODE iam) the app
gets API Gateway's event and Lambda's context in the WSGI environ as ``lambda.event`` and
``lambda.context`` (zappa/handler.py), so Django's test client gives it that environ."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from skymarshal_api.telemetry.logs import JsonFormatter

ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/ops-controller/jane"
APIGW_REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
LAMBDA_REQUEST_ID = "0d2f6b1e-2a8b-4d0e-9e3c-5b7a1f4c8d21"


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of Lambda's context object that the app reads."""

    aws_request_id: str
    function_name: str = "skymarshal-api-dev"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as the app's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _environ(identity: dict[str, Any]) -> dict[str, Any]:
    return {
        "lambda.event": {
            "httpMethod": "GET",
            "path": "/api/v1/identity",
            "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA…"},
            "requestContext": {
                "requestId": APIGW_REQUEST_ID,
                "stage": "dev",
                "identity": identity,
            },
        },
        "lambda.context": LambdaContext(aws_request_id=LAMBDA_REQUEST_ID),
    }


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_under_zappa_every_line_carries_the_gateway_and_lambda_request_ids(
    settings: Any, sessions_table: str, json_lines: io.StringIO
) -> None:
    settings.AUTH_MODE = "iam"
    response = Client().get("/api/v1/identity", **_environ({"userArn": ROLE_ARN}))
    assert response.status_code == 200, response.content

    lines = _lines(json_lines)
    [request] = [line for line in lines if line["message"] == "request"]
    assert request["request_id"] == response["X-Request-ID"]
    assert request["apigw_request_id"] == APIGW_REQUEST_ID
    assert request["lambda_request_id"] == LAMBDA_REQUEST_ID
    assert request["principal"] == ROLE_ARN
    assert request["status"] == 200
    assert request["route"] == "api/v1/identity"
    assert "Authorization" not in json_lines.getvalue()
    assert "AWS4-HMAC-SHA256" not in json_lines.getvalue()


def test_an_unauthorized_request_is_logged_without_a_principal(
    settings: Any, sessions_table: str, json_lines: io.StringIO
) -> None:
    settings.AUTH_MODE = "iam"
    response = Client().get("/api/v1/identity", **_environ({}))
    assert response.status_code == 401

    lines = [line for line in _lines(json_lines) if line.get("request_id")]
    assert lines
    assert all(line["apigw_request_id"] == APIGW_REQUEST_ID for line in lines)
    [request] = [line for line in lines if line["message"] == "request"]
    assert (request["status"], request["error_code"]) == (401, "UNAUTHORIZED")
    assert "principal" not in request


def test_a_line_after_the_request_carries_none_of_its_keys(
    settings: Any, sessions_table: str, json_lines: io.StringIO
) -> None:
    settings.AUTH_MODE = "iam"
    Client().get("/api/v1/identity", **_environ({"userArn": ROLE_ARN}))
    logging.getLogger("skymarshal_api.tests").warning("between requests")

    [after] = [line for line in _lines(json_lines) if line["message"] == "between requests"]
    assert not {"request_id", "principal", "apigw_request_id"} & set(after)


def test_an_unexpected_error_logs_its_traceback_and_answers_without_it(
    settings: Any, json_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from health import apis

    def broken() -> None:
        raise ZeroDivisionError("the health report failed")

    monkeypatch.setattr(apis, "health_report_get", broken)
    response = Client(raise_request_exception=False).get("/api/v1/health")
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "Traceback" not in response.content.decode()

    lines = _lines(json_lines)
    [logged] = [line for line in lines if line.get("exception_name") == "ZeroDivisionError"]
    assert "Traceback" in logged["exception"]
    assert logged["request_id"] == response["X-Request-ID"]
    [request] = [line for line in lines if line["message"] == "request"]
    assert (request["status"], request["error_code"], request["level"]) == (
        500,
        "INTERNAL_ERROR",
        "ERROR",
    )
