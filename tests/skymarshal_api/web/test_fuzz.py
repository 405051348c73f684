"""Fuzzing the running API over real HTTP: whatever a client sends, never a 5xx, every JSON
error in the one error shape (its request_id the response's X-Request-ID), never a traceback.

One API server (gunicorn, DynamoDB Local, the local runtime, a migrated staff database of
its own) serves the whole module; each scenario runs Hypothesis against it from an inner
``@given`` function. Requests go out through httpx with the request target set verbatim
(httpcore's ``target`` extension), so paths keep their ``..`` segments and broken
percent-encodings. Signed requests are signed by botocore's SigV4Auth, as SDK callers sign
them, then sometimes tampered with, so the server's signature verification runs on good,
bad and fuzzed signatures. A logged-in staff session makes DRF parse request bodies (its
CSRF check reads request.POST), which no other unauthenticated path does.

The requests, their strategies and the checks of each answer are in fuzz_requests.py.
The examples are derandomized; a failure prints the minimal request and the server log tail.
"""

from __future__ import annotations

import re

import httpx
import pytest
from hypothesis import given, settings

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.skymarshal_api.web.fuzz_requests import (
    CSRF,
    IDENTITY,
    LOGIN_SEEDS,
    SESSION,
    SETTINGS,
    SIGNED_SEEDS,
    STAFF_PASSWORD,
    STAFF_SEEDS,
    STAFF_USER,
    SWEEP,
    Sent,
    SignedPlan,
    _client,
    _exchange,
    _is_valid,
    _log_tail,
    _materialize,
    _report,
    _signed,
    _with_examples,
    login_requests,
    raw_requests,
    signed_plans,
    staff_requests,
)
from tests.staff import staff_database_env

CREATE_STAFF = (
    "from django.contrib.auth import get_user_model; "
    f"get_user_model().objects.create_user({STAFF_USER!r}, password={STAFF_PASSWORD!r}, "
    "is_staff=True)"
)


# --- The server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(
    module_api_server_factory: ApiFactory,
    module_sessions_table: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Server:
    """The API with a staff database of its own (migrated, one staff account)."""
    database = tmp_path_factory.mktemp("fuzz-staff") / "staff.sqlite3"
    env = staff_database_env(database, CREATE_STAFF)
    return module_api_server_factory(SESSION_TABLE_NAME=module_sessions_table, **env)


@pytest.fixture(scope="module")
def staff_session(api: Server) -> dict[str, str]:
    """The session and CSRF cookies of the staff account, logged in through the form."""
    with httpx.Client(base_url=api.http_url, timeout=15) as client:
        form = client.get("/api-auth/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None, form.text[:500]
        response = client.post(
            "/api-auth/login/",
            data={
                "username": STAFF_USER,
                "password": STAFF_PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
            },
        )
        assert response.status_code == 302, response.text[:500]
        cookies = {name: client.cookies[name] for name in ("sessionid", "csrftoken")}
        page = client.get(IDENTITY, headers={"Accept": "application/json"})
        assert page.json()["authenticated_by"] == "staff", page.text
    return {SESSION: cookies["sessionid"], CSRF: cookies["csrftoken"]}


# --- The tests ------------------------------------------------------------------------------


def test_every_method_on_every_known_path_is_answered(api: Server) -> None:
    """A plain sweep before the fuzzing: every failure at once, not just the first."""
    failures = []
    with _client() as client:
        for sent in SWEEP:
            try:
                _exchange(client, api, sent)
            except AssertionError as exc:
                failures.append(f"{sent.method} {sent.target}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures) + "\n--- server log tail ---\n" + _log_tail(api)


def test_fuzzed_requests_never_5xx(api: Server) -> None:
    with _client() as client:

        @settings(max_examples=120, **SETTINGS)
        @given(raw_requests())
        def check(sent: Sent) -> None:
            _exchange(client, api, _materialize(sent, api))

        check()


def test_fuzzed_signed_requests_never_5xx(api: Server) -> None:
    with _client() as client:

        @settings(max_examples=100, **SETTINGS)
        @given(signed_plans())
        @_with_examples(*SIGNED_SEEDS)
        def check(plan: SignedPlan) -> None:
            sent = _signed(plan, api)
            response = _exchange(client, api, sent)
            if _is_valid(plan):
                assert response.status_code not in (401, 403), _report(
                    sent, response, api, "a correctly signed request was rejected"
                )
            elif plan.tamper is not None and plan.routes_to_identity():
                assert response.status_code >= 400, _report(
                    sent, response, api, "a tampered signature was accepted"
                )

        check()


def test_fuzzed_login_forms_never_5xx(api: Server) -> None:
    with _client() as client:

        @settings(max_examples=30, **SETTINGS)
        @given(login_requests())
        @_with_examples(*LOGIN_SEEDS)
        def check(sent: Sent) -> None:
            _exchange(client, api, _materialize(sent, api))

        check()


def test_fuzzed_staff_session_requests_never_5xx(
    api: Server, staff_session: dict[str, str]
) -> None:
    with _client() as client:

        @settings(max_examples=50, **SETTINGS)
        @given(staff_requests())
        @_with_examples(*STAFF_SEEDS)
        def check(sent: Sent) -> None:
            _exchange(client, api, _materialize(sent, api, staff_session))

        check()
