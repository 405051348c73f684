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
        "owner": "arn:aws:iam::123456789012:role/ops-controller",
        "identity_mode": "role",
        "account_id": "123456789012",
        "caller": "AROAEXAMPLE:jane",
        "authenticated_by": "api_gateway",
    }


SSO_ARN = (
    "arn:aws:sts::123456789012:assumed-role/"
    "AWSReservedSSO_OpsController_0123456789abcdef/jane.doe@example.com"
)


@pytest.mark.parametrize(
    ("user_arn", "role_owner", "session_owner"),
    [
        pytest.param(
            "arn:aws:iam::123456789012:user/jane",
            "arn:aws:iam::123456789012:user/jane",
            "arn:aws:iam::123456789012:user/jane",
            id="iam-user",
        ),
        pytest.param(
            ROLE_ARN, "arn:aws:iam::123456789012:role/ops-controller", ROLE_ARN, id="assumed-role"
        ),
        pytest.param(SSO_ARN, SSO_ARN, SSO_ARN, id="identity-center"),
        pytest.param(
            "arn:aws:sts::123456789012:federated-user/jane",
            "arn:aws:sts::123456789012:federated-user/jane",
            "arn:aws:sts::123456789012:federated-user/jane",
            id="federated-user",
        ),
        pytest.param(
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:root",
            id="root",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["role", "session"])
def test_identity_says_which_mode_and_which_owner_for_each_kind_of_caller(
    iam_mode: Any, mode: str, user_arn: str, role_owner: str, session_owner: str
) -> None:
    iam_mode.IDENTITY_MODE = mode
    response = Client().get("/api/v1/identity", **{"lambda.event": _event({"userArn": user_arn})})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["principal"] == user_arn
    assert body["identity_mode"] == mode
    assert body["owner"] == (role_owner if mode == "role" else session_owner)


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
