"""Swagger UI (/api/v1/docs/) and Redoc (/api/v1/redoc/) in headless Chromium, from the
running app, with no internet: every file the pages load comes from the app itself (the
drf-spectacular sidecar, served by WhiteNoise), and the rendered pages list every operation
of openapi.yaml (an endpoint added later is expected there once openapi.yaml is
regenerated)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from scripts.stack import Server
from tests.browser import Browser, Page, chromium
from tests.conftest import ApiFactory
from tests.openapi import REGENERATE, openapi_document, operations

# Swagger UI gives each operation the id operations-{tag}-{operationId} and shows its path
# in data-path; Redoc gives each the id tag/{tag}/operation/{operationId}.
SWAGGER_OPERATIONS = (
    "Array.from(document.querySelectorAll('.opblock')).map(e => [e.id, "
    "e.querySelector('.opblock-summary-path')?.getAttribute('data-path')])"
)
REDOC_OPERATIONS = (
    'Array.from(document.querySelectorAll(\'[id^="tag/"][id*="/operation/"]\')).map(e => '
    "[e.id, e.innerText])"
)


@pytest.fixture(scope="module")
def docs_api(module_api_server_factory: ApiFactory) -> Server:
    return module_api_server_factory()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def _expected() -> list[tuple[str, str, str, str]]:
    """(tag, operationId, method, path) of every operation of openapi.yaml."""
    return [
        (op.spec["tags"][0], op.operation_id, op.method, op.path)
        for op in operations(openapi_document())
    ]


def _assert_offline(page: Page, api: Server) -> None:
    """Only this app was asked for anything (a request the page's own Content-Security-Policy
    stopped never left the browser), and it answered every request with 200."""
    origin = urlsplit(api.http_url)
    elsewhere = [
        url
        for url in page.requested
        if urlsplit(url).scheme not in ("data", "blob")
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
        and url not in page.blocked_by_policy
    ]
    assert not elsewhere, f"the page requested other hosts than the app: {elsewhere}"
    own = {url: status for url, status in page.statuses.items() if url.startswith(api.http_url)}
    assert own, "the page requested nothing from the app"
    assert all(status == 200 for status in own.values()), own
    assert any("/static/drf_spectacular_sidecar/" in url for url in own), own
    assert not page.failed, page.failed
    assert not page.exceptions, page.exceptions


def test_swagger_ui_lists_every_operation_with_no_internet(
    browser: Browser, docs_api: Server
) -> None:
    expected = _expected()
    page = browser.open(f"{docs_api.http_url}/api/v1/docs/")
    rendered = browser.wait_for(
        page, f"(x => x.length >= {len(expected)} && x)({SWAGGER_OPERATIONS})", timeout=60
    )
    listed = {tuple(item) for item in rendered}
    missing = [
        f"{method.upper()} {path} ({operation_id})"
        for tag, operation_id, method, path in expected
        if (f"operations-{tag}-{operation_id}", path) not in listed
    ]
    assert not missing, f"Swagger UI does not list {missing} ({REGENERATE}?): {sorted(listed)}"
    browser.settle(1.0)
    assert f"{docs_api.http_url}/api/v1/schema/" in page.requested
    _assert_offline(page, docs_api)


def test_redoc_lists_every_operation_with_no_internet(browser: Browser, docs_api: Server) -> None:
    expected = _expected()
    page = browser.open(f"{docs_api.http_url}/api/v1/redoc/")
    rendered = browser.wait_for(
        page, f"(x => x.length >= {len(expected)} && x)({REDOC_OPERATIONS})", timeout=60
    )
    sections = dict(rendered)
    missing = []
    for tag, operation_id, method, path in expected:
        text = sections.get(f"tag/{tag}/operation/{operation_id}")
        # Each section shows the operation's method and path.
        if text is None or method.upper() not in text.upper() or path not in text:
            missing.append(f"{method.upper()} {path} ({operation_id})")
    assert not missing, f"Redoc does not list {missing} ({REGENERATE}?): {sorted(sections)}"
    # The sidebar's footer shows Redoc's logo, from its CDN unless the page's policy stops it.
    browser.wait_for(page, "document.body.textContent.includes('API docs by Redocly')")
    browser.settle(1.0)
    assert f"{docs_api.http_url}/api/v1/schema/" in page.requested
    _assert_offline(page, docs_api)
