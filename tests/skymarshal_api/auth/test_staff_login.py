"""Staff browse the API after a Django login (not in production, which has no database)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from scripts.stack import Server
from tests.conftest import ApiFactory
from tests.staff import staff_database_env

CREATE_USERS = (
    "from django.contrib.auth import get_user_model; U = get_user_model(); "
    "U.objects.create_user('alice', password='alice-password-1', is_staff=True); "
    "U.objects.create_user('bob', password='bob-password-1', is_staff=False)"
)


@pytest.fixture(scope="module")
def api(
    module_api_server_factory: ApiFactory,
    module_sessions_table: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Server:
    database = tmp_path_factory.mktemp("staff") / "staff.sqlite3"
    env = staff_database_env(database, CREATE_USERS)
    return module_api_server_factory(SESSION_TABLE_NAME=module_sessions_table, **env)


@contextmanager
def _login(api: Server, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.http_url, timeout=15) as client:
        yield _logged_in(client, api, username, password)


def _logged_in(client: httpx.Client, api: Server, username: str, password: str) -> httpx.Client:
    form = client.get("/api-auth/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None, form.text[:500]
    response = client.post(
        "/api-auth/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/api/v1/identity",
        },
        headers={"Referer": f"{api.http_url}/api-auth/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def test_a_staff_member_browses_the_api_after_logging_in(api: Server) -> None:
    with _login(api, "alice", "alice-password-1") as client:
        page = client.get("/api/v1/identity", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "staff:alice" in page.text
        assert "Log out" in page.text
        as_json = client.get("/api/v1/identity", headers={"Accept": "application/json"})
        assert as_json.json()["authenticated_by"] == "staff"


def test_a_non_staff_account_is_not_enough(api: Server) -> None:
    with _login(api, "bob", "bob-password-1") as client:
        response = client.get("/api/v1/identity", headers={"Accept": "application/json"})
        assert response.status_code == 401


def test_without_login_the_browsable_api_asks_for_credentials(api: Server) -> None:
    response = httpx.get(
        f"{api.http_url}/api/v1/identity", headers={"Accept": "text/html"}, timeout=10
    )
    assert response.status_code == 401
