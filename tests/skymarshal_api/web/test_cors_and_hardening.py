"""CORS on every response (Property 15), request limits and security headers, against the
running app."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.signing import botocore_headers, botocore_send

ORIGIN = "https://ops.example.com"


@pytest.fixture(scope="module")
def api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table, CORS_ALLOWED_ORIGINS=f"{ORIGIN},http://x.test"
    )


def _assert_cors(response: httpx.Response) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-request-id" in response.headers["Access-Control-Expose-Headers"].lower()


def test_preflight_is_answered_without_credentials(api: Server) -> None:
    response = httpx.options(
        f"{api.http_url}/api/v1/identity",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-amz-date,content-type",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "x-amz-date", "x-amz-security-token", "content-type"):
        assert header in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_headers_on_success(api: Server) -> None:
    response = botocore_send("GET", f"{api.http_url}/api/v1/identity", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    _assert_cors(response)


def test_cors_headers_on_a_400(api: Server) -> None:
    # A Host header the app does not serve is a 400 from Django itself.
    response = httpx.get(
        f"{api.http_url}/api/v1/health",
        headers={"Origin": ORIGIN, "Host": "internal.example.com"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_REQUEST"
    assert "internal.example.com" not in response.text
    _assert_cors(response)


@pytest.mark.parametrize(("path", "status"), [("/api/v1/identity", 401), ("/nowhere", 404)])
def test_cors_headers_on_401_and_404(api: Server, path: str, status: int) -> None:
    response = httpx.get(f"{api.http_url}{path}", headers={"Origin": ORIGIN}, timeout=10)
    assert response.status_code == status
    _assert_cors(response)


def test_an_origin_not_allowed_gets_no_cors_headers(api: Server) -> None:
    response = httpx.get(
        f"{api.http_url}/api/v1/health", headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_body_above_64_kib_is_413_before_authentication(api: Server) -> None:
    body = json.dumps({"prompt": "x" * (64 * 1024)})
    response = httpx.post(
        f"{api.http_url}/api/v1/identity",
        content=body,
        headers={"Content-Type": "application/json", "Origin": ORIGIN},
        timeout=10,
    )
    assert response.status_code == 413
    error = response.json()
    assert error["error_code"] == "PAYLOAD_TOO_LARGE"
    assert error["details"] == {"max_bytes": 65536, "got_bytes": len(body)}
    _assert_cors(response)


def test_a_chunked_body_is_refused_with_411_not_silently_dropped(api: Server) -> None:
    url = f"{api.http_url}/api/v1/identity"
    body = b'{"prompt": "' + b"x" * (20 * 1024) + b'"}'
    headers = botocore_headers("POST", url, body=body)

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = httpx.post(url, content=chunks(), headers=headers, timeout=10)
    assert response.status_code == 411, response.text
    assert response.json()["error_code"] == "LENGTH_REQUIRED"


def test_json_responses_carry_security_headers(api: Server) -> None:
    response = httpx.get(f"{api.http_url}/api/v1/health", timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_docs_pages_work_under_their_own_policy(api: Server) -> None:
    response = httpx.get(f"{api.http_url}/api/v1/docs/", timeout=10)
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


def test_errors_reveal_no_internals(api: Server) -> None:
    hostname = socket.gethostname()
    responses = [
        httpx.get(f"{api.http_url}/api/v1/identity", timeout=10),
        httpx.get(f"{api.http_url}/api/v1/%ff%fe", timeout=10),
        httpx.request("PATCH", f"{api.http_url}/api/v1/health", timeout=10),
        httpx.get(f"{api.http_url}/api/v1/health", headers={"Host": "bad host"}, timeout=10),
    ]
    for response in responses:
        assert response.status_code in (400, 401, 404, 405), response.text
        assert response.json()["status"] == "error"
        for secret in ("Traceback", hostname, "/work/", "site-packages", "django.", "gunicorn"):
            assert secret not in response.text, (secret, response.text)
