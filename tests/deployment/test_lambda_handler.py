"""The dev package's ``handler.lambda_handler`` (Zappa's), driven in a fresh interpreter
whose import path is the unzipped package only, with API Gateway REST proxy events: health,
an invocation against the local runtime, the session's history, and identity."""

from __future__ import annotations

from typing import Any

from scripts.lambda_invoke import LambdaProcess
from sessions.models import SessionInteraction, SessionItem, sessions_table_bind
from tests.deployment.events import (
    ACCOUNT,
    ROLE_ARN,
    ROLE_OWNER,
    iam_identity,
    response_json,
    rest_event,
)

PROMPT = "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"


def _headers(result: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in result["headers"].items()}


def test_health_answers_unsigned_with_both_checks(lambda_process: LambdaProcess) -> None:
    result = lambda_process.invoke(rest_event("GET", "/api/v1/health"))
    assert result["statusCode"] == 200, result
    body = response_json(result)
    assert body["status"] == "healthy"
    assert body["checks"]["agentcore"]["status"] == "healthy"
    assert body["checks"]["dynamodb"]["status"] == "healthy"
    assert _headers(result)["content-type"] == "application/json"
    assert len(_headers(result)["x-request-id"]) == 36


def test_invoke_records_the_gateway_principal_and_the_history_returns_it(
    lambda_process: LambdaProcess, package_table: str, dynamodb_local: Any
) -> None:
    result = lambda_process.invoke(
        rest_event("POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=iam_identity())
    )
    assert result["statusCode"] == 200, result
    body = response_json(result)
    assert body["status"] == "success"
    assert body["request_id"] == _headers(result)["x-request-id"]
    assert body["final_decision"] in ("approved", "conditional", "rejected")
    assert {a["agent_name"] for a in body["safety_phase"]["agents"]} >= {"crew_compliance"}
    session_id = body["session_id"]

    history = lambda_process.invoke(
        rest_event("GET", f"/api/v1/sessions/{session_id}", identity=iam_identity())
    )
    assert history["statusCode"] == 200, history
    interactions = response_json(history)["interactions"]
    assert [i["request_id"] for i in interactions] == [body["request_id"]]
    assert interactions[0]["status"] == "success"
    assert interactions[0]["prompt"] == PROMPT

    # What DynamoDB holds: the interaction and the session belong to the event's userArn's
    # owner, which in IDENTITY_MODE=role (the default) is its role.
    sessions_table_bind(table_name=package_table, endpoint_url=dynamodb_local.http_url)
    try:
        records = list(SessionInteraction.query(session_id, SessionInteraction.timestamp > 0))
        owner = SessionItem.get(session_id, 0).owner
    finally:
        sessions_table_bind()
    assert [record.user_id for record in records] == [ROLE_OWNER]
    assert owner == ROLE_OWNER

    # Another principal cannot see it, even with the same session name.
    other_role = f"arn:aws:sts::{ACCOUNT}:assumed-role/finance-analyst/jane"
    foreign = lambda_process.invoke(
        rest_event("GET", f"/api/v1/sessions/{session_id}", identity=iam_identity(other_role))
    )
    assert foreign["statusCode"] == 404, foreign
    assert response_json(foreign)["error_code"] == "SESSION_NOT_FOUND"


def test_identity_reports_the_gateway_caller(lambda_process: LambdaProcess) -> None:
    result = lambda_process.invoke(rest_event("GET", "/api/v1/identity", identity=iam_identity()))
    assert result["statusCode"] == 200, result
    assert response_json(result) == {
        "principal": ROLE_ARN,
        "owner": ROLE_OWNER,
        "identity_mode": "role",
        "account_id": "123456789012",
        "caller": "AROAEXAMPLEID:jane",
        "authenticated_by": "api_gateway",
    }


def test_an_event_without_identity_is_401(lambda_process: LambdaProcess) -> None:
    for identity in (None, {**iam_identity(), "userArn": None}):
        result = lambda_process.invoke(
            rest_event("POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=identity)
        )
        assert result["statusCode"] == 401, result
        body = response_json(result)
        assert body["status"] == "error"
        assert body["error_code"] == "UNAUTHORIZED"


def test_bad_input_is_an_error_shape_not_a_500(lambda_process: LambdaProcess) -> None:
    result = lambda_process.invoke(
        rest_event("POST", "/api/v1/invoke", body={"prompt": 42}, identity=iam_identity())
    )
    assert result["statusCode"] == 400, result
    assert response_json(result)["error_code"] == "INVALID_REQUEST"
    missing = lambda_process.invoke(rest_event("GET", "/api/v1/nowhere", identity=iam_identity()))
    assert missing["statusCode"] == 404
    assert response_json(missing)["status"] == "error"
