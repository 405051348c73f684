"""Secure by default: an API started with no SKYMARSHAL_ENV at all, off Lambda (gunicorn on
this machine, as on a VM or a container service), is production and refuses the
development key pair published in README.md."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.stack import Server, start_api
from tests.signing import DEV_KEY, botocore_send

OWN_KEY = "AKIAOWNKEYOFTHISHOST"
OWN_SECRET = "a-secret-of-this-deployment-only"
OWN_PRINCIPAL = "arn:aws:iam::111122223333:user/ops-console"


@pytest.fixture(scope="module")
def unconfigured_api(
    log_dir: Path, dynamodb_local: Server, local_runtime: Server, module_sessions_table: str
) -> Iterator[Server]:
    """The API with production's required values, AUTH_MODE=sigv4 with a key of its own,
    and no SKYMARSHAL_ENV (the suite's own SKYMARSHAL_ENV=test is not inherited)."""
    server = start_api(
        env={
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SESSION_TABLE_NAME": module_sessions_table,
            "DYNAMODB_ENDPOINT_URL": dynamodb_local.http_url,
            "AGENTCORE_RUNTIME_ARN": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/x",
            "AGENTCORE_MODE": "local",
            "AGENTCORE_WS_URL": local_runtime.ws_url,
            "AUTH_MODE": "sigv4",
            "SIGV4_LOCAL_KEYS": json.dumps(
                {OWN_KEY: {"secret": OWN_SECRET, "principal": OWN_PRINCIPAL}}
            ),
            "HEALTH_CACHE_SECONDS": "0",
        },
        env_unset=("SKYMARSHAL_ENV",),
        log_dir=log_dir,
        workers=1,
    )
    yield server
    server.stop()


def _identity(server: Server, **sign: str) -> httpx.Response:
    # Production redirects plain HTTP to HTTPS unless the proxy in front says it was HTTPS.
    return botocore_send(
        "GET",
        f"{server.http_url}/api/v1/identity",
        headers={"X-Forwarded-Proto": "https"},
        **sign,
    )


def test_an_app_without_skymarshal_env_refuses_the_development_key_pair(
    unconfigured_api: Server,
) -> None:
    refused = _identity(unconfigured_api)  # signed with the development key pair
    assert refused.status_code == 403, refused.text
    assert refused.json()["error_code"] == "FORBIDDEN"
    assert "signature rejected: unknown access key id" in unconfigured_api.log_tail(100)
    # The same request signed with the deployment's own key is accepted: the refusal is
    # the development key's, not a broken server's.
    accepted = _identity(unconfigured_api, key=OWN_KEY, secret=OWN_SECRET)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["principal"] == OWN_PRINCIPAL
    assert DEV_KEY not in accepted.text


def test_an_app_without_skymarshal_env_is_production(unconfigured_api: Server) -> None:
    # No browsable API, no staff login (production's), and HTTPS enforced.
    login = httpx.get(f"{unconfigured_api.http_url}/api-auth/login/", timeout=10)
    assert login.status_code in (301, 404), login.text
    plain = httpx.get(f"{unconfigured_api.http_url}/api/v1/identity", timeout=10)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
