"""Who may call: SigV4 signatures from real clients against the running app (Property 2),
and the open endpoints that need none (Property 11)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import httpx
import pytest
import requests

from scripts.stack import ROOT, Server
from skymarshal_api.web.errors import SignatureMismatch
from tests.conftest import ApiFactory
from tests.signing import (
    DEV_KEY,
    DEV_PRINCIPAL,
    DEV_SECRET,
    aws4auth,
    aws4auth_send,
    botocore_headers,
    botocore_send,
)

TEMP_KEY = "ASIATEMPORARYKEY0001"
TEMP_SECRET = "temporary-secret-key"
TEMP_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE-session-token=="
TEMP_PRINCIPAL = "arn:aws:sts::111122223333:assumed-role/ops-controller/jane"
KEYS = {
    DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL},
    TEMP_KEY: {"secret": TEMP_SECRET, "principal": TEMP_PRINCIPAL, "session_token": TEMP_TOKEN},
}


@pytest.fixture(scope="module")
def api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table, SIGV4_LOCAL_KEYS=json.dumps(KEYS)
    )


def _identity(api: Server) -> str:
    return f"{api.http_url}/api/v1/identity"


def _assert_signature_rejected(response: httpx.Response | object, api: Server, why: str) -> None:
    """403 with the one message of every signature failure; the reason only in the log."""
    message = _assert_rejected(response, 403, "FORBIDDEN")
    assert message == SignatureMismatch.default_message
    body = getattr(response, "text")  # noqa: B009
    assert why not in body
    assert f"signature rejected: {why}" in api.log_tail(200), api.log_tail(20)


def _assert_rejected(response: httpx.Response | object, status: int, code: str) -> str:
    assert getattr(response, "status_code") == status, getattr(response, "text")  # noqa: B009
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == "error"
    assert body["error_code"] == code
    return str(body["error_message"])


# --- clients that must be accepted ------------------------------------------------------


def test_botocore_sigv4auth_is_accepted(api: Server) -> None:
    response = botocore_send("GET", _identity(api))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "principal": DEV_PRINCIPAL,
        "owner": DEV_PRINCIPAL,
        "identity_mode": "role",
        "account_id": "000000000000",
        "caller": DEV_KEY,
        "authenticated_by": "sigv4",
    }


def test_botocore_with_an_encoded_unsorted_query_is_accepted(api: Server) -> None:
    url = f"{_identity(api)}?zeta=1&alpha=hello%20world&alpha=a%2Fb&empty="
    response = botocore_send("GET", url)
    assert response.status_code == 200, response.text


def test_requests_aws4auth_is_accepted_with_query_and_content_sha256(api: Server) -> None:
    response = aws4auth_send("GET", _identity(api), params={"b": "2", "a": "x y"})
    assert response.status_code == 200, response.text
    assert response.request.headers["x-amz-content-sha256"]
    assert response.json()["principal"] == DEV_PRINCIPAL


def test_a_signed_body_is_verified_before_the_method_is_refused(api: Server) -> None:
    body = json.dumps({"prompt": "Flight AA123 delayed 3 hours due to weather"})
    response = aws4auth_send(
        "POST", _identity(api), data=body, headers={"Content-Type": "application/json"}
    )
    _assert_rejected(response, 405, "METHOD_NOT_ALLOWED")


def test_awscurl_is_accepted(api: Server) -> None:
    result = subprocess.run(
        [
            str(ROOT / ".venv/bin/awscurl"),
            "--service",
            "execute-api",
            "--region",
            "us-east-1",
            "--access_key",
            DEV_KEY,
            "--secret_key",
            DEV_SECRET,
            _identity(api),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["principal"] == DEV_PRINCIPAL


def test_temporary_credentials_with_a_signed_session_token_are_accepted(api: Server) -> None:
    response = botocore_send(
        "GET", _identity(api), key=TEMP_KEY, secret=TEMP_SECRET, token=TEMP_TOKEN
    )
    assert response.status_code == 200, response.text
    assert response.json()["principal"] == TEMP_PRINCIPAL
    signed = aws4auth_send(
        "GET", _identity(api), auth=aws4auth(TEMP_KEY, TEMP_SECRET, token=TEMP_TOKEN)
    )
    assert signed.status_code == 200, signed.text


# --- 401: no credentials; 400: an Authorization that is not SigV4 ------------------------


def test_missing_authorization_is_401_with_www_authenticate(api: Server) -> None:
    response = httpx.get(_identity(api), timeout=10)
    _assert_rejected(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == "AWS4-HMAC-SHA256"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc.def.ghi",
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/execute-api/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host, Signature=not-hex",
    ],
)
def test_malformed_authorization_is_400_naming_the_header(api: Server, authorization: str) -> None:
    response = httpx.get(_identity(api), headers={"Authorization": authorization}, timeout=10)
    _assert_rejected(response, 400, "INVALID_REQUEST")
    assert response.json()["details"] == {"header": "Authorization"}


@pytest.mark.parametrize("amz_date", ["2024-01-01T00:00:00Z", "20241301T000000Z", "١٢٣"])
def test_a_malformed_x_amz_date_is_400_naming_the_header(api: Server, amz_date: str) -> None:
    headers = botocore_headers("GET", _identity(api))
    headers["X-Amz-Date"] = amz_date
    response = httpx.get(
        _identity(api),
        headers={k: v.encode("utf-8") for k, v in headers.items()},
        timeout=10,
    )
    _assert_rejected(response, 400, "INVALID_REQUEST")
    assert response.json()["details"] == {"header": "X-Amz-Date"}


# --- 403: credentials present but not acceptable ----------------------------------------


def test_wrong_secret_is_403(api: Server) -> None:
    response = botocore_send("GET", _identity(api), secret="not-the-secret")
    _assert_signature_rejected(response, api, "the signature is not the one calculated")
    assert "signature does not match" in response.json()["error_message"]


def test_unknown_access_key_is_403_with_the_same_message(api: Server) -> None:
    unknown = botocore_send("GET", _identity(api), key="AKIAUNKNOWNKEY000000")
    _assert_signature_rejected(unknown, api, "unknown access key id")
    wrong = botocore_send("GET", _identity(api), secret="not-the-secret")
    assert unknown.json()["error_message"] == wrong.json()["error_message"]


@pytest.mark.parametrize("minutes", [-6, 6, 60 * 24])
def test_x_amz_date_outside_five_minutes_is_403(api: Server, minutes: int) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    response = botocore_send("GET", _identity(api), at=at.replace(tzinfo=None))
    _assert_signature_rejected(response, api, "X-Amz-Date")


def test_x_amz_date_within_four_minutes_is_accepted(api: Server) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    assert botocore_send("GET", _identity(api), at=at.replace(tzinfo=None)).status_code == 200


def test_credential_scope_date_not_matching_x_amz_date_is_403(api: Server) -> None:
    headers = botocore_headers("GET", _identity(api))
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y%m%d")
    today = headers["X-Amz-Date"][:8]
    headers["Authorization"] = headers["Authorization"].replace(f"/{today}/", f"/{yesterday}/")
    response = httpx.get(_identity(api), headers=headers, timeout=10)
    _assert_signature_rejected(response, api, "credential scope date")


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "execute-api"), ("us-east-1", "s3")])
def test_credential_scope_for_another_region_or_service_is_403(
    api: Server, region: str, service: str
) -> None:
    response = botocore_send("GET", _identity(api), region=region, service=service)
    _assert_rejected(response, 403, "FORBIDDEN")


def test_body_changed_after_signing_is_403(api: Server) -> None:
    url = _identity(api)
    headers = botocore_headers("POST", url, body=b'{"prompt": "signed body"}')
    response = httpx.post(url, content=b'{"prompt": "other body"}', headers=headers, timeout=10)
    _assert_rejected(response, 403, "FORBIDDEN")


def test_content_sha256_not_matching_the_body_is_403(api: Server) -> None:
    url = _identity(api)
    request = requests.Request(
        "POST", url, data=b'{"a": 1}', headers={"Content-Type": "application/json"}
    ).prepare()
    request = aws4auth()(request)
    request.body = b'{"a": 2}'
    response = requests.Session().send(request, timeout=10)
    _assert_signature_rejected(response, api, "X-Amz-Content-SHA256 is not the SHA-256")


def test_path_or_query_changed_after_signing_is_403(api: Server) -> None:
    signed = botocore_headers("GET", f"{_identity(api)}?limit=1")
    for url in (f"{_identity(api)}?limit=2", f"{api.http_url}/api/v1/identity/?limit=1"):
        response = httpx.get(url, headers=signed, timeout=10)
        assert response.status_code in (403, 404), response.text
    _assert_rejected(
        httpx.get(f"{_identity(api)}?limit=2", headers=signed, timeout=10), 403, "FORBIDDEN"
    )


def test_temporary_credentials_without_their_session_token_are_403(api: Server) -> None:
    response = botocore_send("GET", _identity(api), key=TEMP_KEY, secret=TEMP_SECRET)
    _assert_signature_rejected(response, api, "temporary credentials without")


def test_a_session_token_added_after_signing_is_403(api: Server) -> None:
    headers = botocore_headers("GET", _identity(api), key=TEMP_KEY, secret=TEMP_SECRET)
    headers["X-Amz-Security-Token"] = TEMP_TOKEN
    response = httpx.get(_identity(api), headers=headers, timeout=10)
    _assert_signature_rejected(response, api, "X-Amz-Security-Token is not a signed header")


def test_a_wrong_session_token_is_403(api: Server) -> None:
    response = botocore_send(
        "GET", _identity(api), key=TEMP_KEY, secret=TEMP_SECRET, token="forged-token"
    )
    _assert_signature_rejected(response, api, "X-Amz-Security-Token is not the key's")


# --- open endpoints (Property 11) --------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/health", "/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/"]
)
def test_health_schema_and_docs_need_no_credentials(api: Server, path: str) -> None:
    response = httpx.get(f"{api.http_url}{path}", timeout=15)
    assert response.status_code == 200, response.text
