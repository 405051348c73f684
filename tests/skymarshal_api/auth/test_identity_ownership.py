"""The owner IDENTITY_MODE makes of a caller is what owns its sessions and background runs,
and what every read and cancel is checked against: a real API server (gunicorn) verifying
SigV4 against local keys whose principals are role sessions, as the IAM authorizer would
pass them, with DynamoDB Local and the local runtime."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.signing import botocore_send

ACCOUNT = "123456789012"
SSO_ROLE = "AWSReservedSSO_OpsController_0123456789abcdef"
PRINCIPALS = {
    "jane": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane",
    "omar": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/omar",
    "sso-jane": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/jane.doe@example.com",
    "sso-omar": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/omar.ali@example.com",
    # Whoever may assume ops-controller, naming the session after an Identity Center user.
    "borrower": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane.doe@example.com",
    "analyst": f"arn:aws:sts::{ACCOUNT}:assumed-role/finance-analyst/jane",
}
KEYS = {
    f"ASIAOWNERTEST{index:07d}": {
        "secret": f"owner-test-secret-{name}",
        "principal": arn,
        "session_token": f"owner-test-token-{name}",
    }
    for index, (name, arn) in enumerate(PRINCIPALS.items())
}
PROMPT = "Flight UA45 ORD-SFO delayed 90 minutes at ORD due to weather, 160 passengers"


def _send(api: Server, name: str, method: str, path: str, body: Any = None) -> httpx.Response:
    key = next(k for k, entry in KEYS.items() if entry["principal"] == PRINCIPALS[name])
    return botocore_send(
        method,
        f"{api.http_url}{path}",
        body=json.dumps(body) if body is not None else b"",
        headers={"Content-Type": "application/json"} if body is not None else None,
        key=key,
        secret=KEYS[key]["secret"],
        token=KEYS[key]["session_token"],
    )


@pytest.fixture(scope="module")
def role_mode_api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    """The default IDENTITY_MODE (role), set by nothing."""
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table, SIGV4_LOCAL_KEYS=json.dumps(KEYS)
    )


@pytest.fixture(scope="module")
def session_mode_api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table,
        SIGV4_LOCAL_KEYS=json.dumps(KEYS),
        IDENTITY_MODE="session",
    )


def _session_of(api: Server, name: str) -> str:
    response = _send(api, name, "POST", "/api/v1/invoke", {"prompt": PROMPT})
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


def _run_of(api: Server, name: str) -> str:
    response = _send(api, name, "POST", "/api/v1/invocations", {"prompt": PROMPT})
    assert response.status_code == 202, response.text
    request_id = str(response.json()["request_id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = _send(api, name, "GET", f"/api/v1/invocations/{request_id}").json()["status"]
        if status not in ("queued", "running"):
            return request_id
        time.sleep(0.2)
    raise AssertionError(f"run {request_id} did not end within 60 s")


def _statuses(api: Server, path: str, *names: str, method: str = "GET") -> dict[str, int]:
    return {name: _send(api, name, method, path).status_code for name in names}


def test_by_default_one_role_owns_what_its_sessions_create(role_mode_api: Server) -> None:
    session_id = _session_of(role_mode_api, "jane")
    assert _statuses(role_mode_api, f"/api/v1/sessions/{session_id}", "jane", "omar") == {
        "jane": 200,
        "omar": 200,
    }
    assert _statuses(role_mode_api, f"/api/v1/sessions/{session_id}", "analyst", "sso-jane") == {
        "analyst": 404,
        "sso-jane": 404,
    }
    listed = _send(role_mode_api, "omar", "GET", "/api/v1/sessions")
    assert session_id in [s["session_id"] for s in listed.json()["sessions"]], listed.text

    request_id = _run_of(role_mode_api, "jane")
    path = f"/api/v1/invocations/{request_id}"
    assert _statuses(role_mode_api, path, "omar", "analyst") == {"omar": 200, "analyst": 404}
    # Cancel: the role's other session finds the run (it has ended: 409); others do not.
    assert _statuses(role_mode_api, path, "omar", "analyst", "sso-jane", method="DELETE") == {
        "omar": 409,
        "analyst": 404,
        "sso-jane": 404,
    }


def test_by_default_identity_center_users_own_their_sessions_alone(role_mode_api: Server) -> None:
    session_id = _session_of(role_mode_api, "sso-jane")
    path = f"/api/v1/sessions/{session_id}"
    assert _statuses(role_mode_api, path, "sso-jane", "sso-omar", "borrower", "jane") == {
        "sso-jane": 200,
        "sso-omar": 404,
        "borrower": 404,
        "jane": 404,
    }
    request_id = _run_of(role_mode_api, "sso-jane")
    path = f"/api/v1/invocations/{request_id}"
    assert _statuses(role_mode_api, path, "sso-omar", "borrower", method="DELETE") == {
        "sso-omar": 404,
        "borrower": 404,
    }
    assert _statuses(role_mode_api, f"{path}/events", "borrower") == {"borrower": 404}


def test_in_session_mode_every_session_name_is_an_owner(session_mode_api: Server) -> None:
    identity = _send(session_mode_api, "jane", "GET", "/api/v1/identity").json()
    assert identity["identity_mode"] == "session"
    assert identity["owner"] == PRINCIPALS["jane"]

    session_id = _session_of(session_mode_api, "jane")
    assert _statuses(session_mode_api, f"/api/v1/sessions/{session_id}", "jane", "omar") == {
        "jane": 200,
        "omar": 404,
    }
    request_id = _run_of(session_mode_api, "jane")
    assert _statuses(session_mode_api, f"/api/v1/invocations/{request_id}", "omar") == {"omar": 404}
