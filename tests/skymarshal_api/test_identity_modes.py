"""AUTH_MODE iam (behind API Gateway under Zappa) and none (local only).

API Gateway itself cannot run here; what reaches the app from it is the Lambda event that
Zappa puts in the WSGI environ as ``lambda.event``, so these tests give the app that
environ through Django's test client, with the rate-limit counters in DynamoDB Local.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/ops-controller/jane"


def _event(identity: dict[str, Any]) -> dict[str, Any]:
    return {
        "httpMethod": "GET",
        "path": "/api/v1/identity",
        "requestContext": {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "stage": "dev",
            "identity": identity,
        },
    }


@pytest.fixture
def iam_mode(settings: Any, sessions_table: str) -> Any:
    settings.AUTH_MODE = "iam"
    return settings


def test_iam_mode_takes_the_caller_from_the_api_gateway_request_context(iam_mode: Any) -> None:
    identity = {"userArn": ROLE_ARN, "accountId": "123456789012", "caller": "AROAEXAMPLE:jane"}
    response = Client().get("/api/v1/identity", **{"lambda.event": _event(identity)})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "principal": ROLE_ARN,
        "account_id": "123456789012",
        "caller": "AROAEXAMPLE:jane",
        "authenticated_by": "api_gateway",
    }


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"lambda.event": _event({"userArn": None, "accountId": None})},
        {"lambda.event": _event({"userArn": ""})},
        {"lambda.event": {"requestContext": "not-an-object"}},
    ],
)
def test_iam_mode_without_a_gateway_identity_is_401(iam_mode: Any, environ: dict[str, Any]) -> None:
    response = Client().get("/api/v1/identity", **environ)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"


def test_iam_mode_never_trusts_client_sent_identity_headers(iam_mode: Any) -> None:
    # With Zappa's context_header_mappings a client header can stand in for an empty
    # context value; the app reads only requestContext.identity itself.
    response = Client().get(
        "/api/v1/identity",
        HTTP_X_USER_ARN=ROLE_ARN,
        HTTP_X_AMZN_USER_ARN=ROLE_ARN,
        HTTP_USERARN=ROLE_ARN,
        HTTP_AUTHORIZATION="AWS4-HMAC-SHA256 Credential=x",
        **{"lambda.event": _event({"userArn": None})},
    )
    assert response.status_code == 401


def test_auth_mode_none_is_the_local_principal(settings: Any, sessions_table: str) -> None:
    settings.AUTH_MODE = "none"
    response = Client().get("/api/v1/identity")
    assert response.status_code == 200
    assert response.json()["principal"] == settings.LOCAL_PRINCIPAL_ARN
    assert response.json()["authenticated_by"] == "local"
