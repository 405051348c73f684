"""Who owns a session, through the dev package's handler with API Gateway REST proxy events
of each kind of caller an IAM-authorized method sees (IAM user, role session, IAM Identity
Center user, federated user, root), in the default IDENTITY_MODE (role) and in session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import Server
from sessions.models import SessionItem, sessions_table_bind
from tests.deployment.conftest import lambda_environment
from tests.deployment.events import (
    ACCOUNT,
    FEDERATED_USER_ARN,
    IAM_USER_ARN,
    OTHER_ROLE_ARN,
    OTHER_SSO_ARN,
    ROLE_ARN,
    ROLE_OWNER,
    ROOT_ARN,
    SSO_ARN,
    iam_identity,
    response_json,
    rest_event,
)

PROMPT = "Flight UA45 ORD-SFO delayed 90 minutes at ORD due to weather, 160 passengers"


@pytest.fixture(scope="module")
def session_mode_process(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    log_dir: Path,
) -> Iterator[LambdaProcess]:
    """A second warm container of the same package, with IDENTITY_MODE=session in the
    function's environment."""
    process = LambdaProcess(
        lambda_package_dir,
        {**lambda_environment(dynamodb_local, local_runtime), "IDENTITY_MODE": "session"},
        log_path=log_dir / "lambda-package-session-mode.log",
    )
    yield process
    process.stop()


def _invoke(process: LambdaProcess, user_arn: str) -> str:
    result = process.invoke(
        rest_event(
            "POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=iam_identity(user_arn)
        )
    )
    assert result["statusCode"] == 200, result
    return str(response_json(result)["session_id"])


def _read(process: LambdaProcess, session_id: str, user_arn: str) -> int:
    """The status of ``user_arn``'s GET of the session: 200, or 404 SESSION_NOT_FOUND."""
    result = process.invoke(
        rest_event("GET", f"/api/v1/sessions/{session_id}", identity=iam_identity(user_arn))
    )
    body = response_json(result)
    assert result["statusCode"] == 200 or body["error_code"] == "SESSION_NOT_FOUND", result
    return int(result["statusCode"])


def _stored_owner(session_id: str, table: str, dynamodb: Server) -> str:
    sessions_table_bind(table_name=table, endpoint_url=dynamodb.http_url)
    try:
        return str(SessionItem.get(session_id, 0).owner)
    finally:
        sessions_table_bind()


@pytest.mark.parametrize(
    ("user_arn", "owner", "caller"),
    [
        pytest.param(IAM_USER_ARN, IAM_USER_ARN, "AIDAEXAMPLEUSERID", id="iam-user"),
        pytest.param(ROLE_ARN, ROLE_OWNER, "AROAEXAMPLEID:jane", id="assumed-role"),
        pytest.param(SSO_ARN, SSO_ARN, "AROAEXAMPLEID:jane.doe@example.com", id="identity-center"),
        pytest.param(FEDERATED_USER_ARN, FEDERATED_USER_ARN, f"{ACCOUNT}:jane", id="federated"),
        pytest.param(ROOT_ARN, ROOT_ARN, ACCOUNT, id="root"),
    ],
)
def test_identity_names_the_owner_of_each_kind_of_caller(
    lambda_process: LambdaProcess, user_arn: str, owner: str, caller: str
) -> None:
    result = lambda_process.invoke(
        rest_event("GET", "/api/v1/identity", identity=iam_identity(user_arn))
    )
    assert result["statusCode"] == 200, result
    assert response_json(result) == {
        "principal": user_arn,
        "owner": owner,
        "identity_mode": "role",
        "account_id": ACCOUNT,
        "caller": caller,
        "authenticated_by": "api_gateway",
    }


def test_by_default_sessions_of_one_role_share_whatever_their_session_names(
    lambda_process: LambdaProcess, package_table: str, dynamodb_local: Server
) -> None:
    session_id = _invoke(lambda_process, ROLE_ARN)
    assert _stored_owner(session_id, package_table, dynamodb_local) == ROLE_OWNER
    # Another session name of the role: another person, or botocore's next default name.
    renamed = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/botocore-session-1764650017"
    for user_arn in (OTHER_ROLE_ARN, renamed):
        assert _read(lambda_process, session_id, user_arn) == 200
    # A role of the same name in another account is not the role.
    elsewhere = "arn:aws:sts::210987654321:assumed-role/ops-controller/jane"
    assert _read(lambda_process, session_id, elsewhere) == 404


def test_by_default_a_borrowed_session_name_cannot_read_an_identity_center_users_session(
    lambda_process: LambdaProcess, package_table: str, dynamodb_local: Server
) -> None:
    session_id = _invoke(lambda_process, SSO_ARN)
    assert _stored_owner(session_id, package_table, dynamodb_local) == SSO_ARN
    assert _read(lambda_process, session_id, SSO_ARN) == 200
    # Another Identity Center user of the same permission set.
    assert _read(lambda_process, session_id, OTHER_SSO_ARN) == 404
    # Someone who can assume another role and names the session after the user.
    borrowed = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane.doe@example.com"
    assert _read(lambda_process, session_id, borrowed) == 404
    # IAM users, federated users and root of the account are not the user either.
    for user_arn in (IAM_USER_ARN, FEDERATED_USER_ARN, ROOT_ARN):
        assert _read(lambda_process, session_id, user_arn) == 404


def test_in_session_mode_each_session_name_is_its_own_owner(
    session_mode_process: LambdaProcess, package_table: str, dynamodb_local: Server
) -> None:
    identity = session_mode_process.invoke(
        rest_event("GET", "/api/v1/identity", identity=iam_identity(ROLE_ARN))
    )
    assert response_json(identity)["identity_mode"] == "session"
    assert response_json(identity)["owner"] == ROLE_ARN

    session_id = _invoke(session_mode_process, ROLE_ARN)
    assert _stored_owner(session_id, package_table, dynamodb_local) == ROLE_ARN
    assert _read(session_mode_process, session_id, ROLE_ARN) == 200
    assert _read(session_mode_process, session_id, OTHER_ROLE_ARN) == 404
