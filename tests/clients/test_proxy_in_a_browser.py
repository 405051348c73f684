"""`skymarshal proxy` in headless Chromium, in front of an API that enforces signatures (the
local stack verifies SigV4 itself, as API Gateway's IAM authorizer would): the browsable
API and Swagger UI's "Try it out" work through it; requests for another Host, from another
origin, or without its token are refused and never reach the API."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from skymarshal_client.proxy import COOKIE, SigningProxy
from skymarshal_client.signing import AwsIdentity
from tests.browser import Browser, chromium
from tests.clients.conftest import ClientStack, dev_credentials
from tests.log_audit import SENT

PROMPT = "Flight UA45 delayed 90 minutes at ORD due to weather, 180 passengers"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def proxy(client_stack: ClientStack) -> Iterator[SigningProxy]:
    identity = AwsIdentity(url=client_stack.api.http_url, credentials=dev_credentials())
    server = SigningProxy(client_stack.api.http_url, identity).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(proxy: SigningProxy) -> Iterator[Browser]:
    """A browser that opened the proxy's URL with its token once (it now has the cookie)."""
    with chromium() as browser:
        page = browser.open(proxy.open_url)
        browser.wait_for(
            page, "document.querySelector('.swagger-ui .opblock') !== null", timeout=90
        )
        assert page.statuses[f"{proxy.origin}/api/v1/docs/"] == 200
        yield browser


def test_the_api_refuses_the_browser_without_the_proxy(client_stack: ClientStack) -> None:
    response = httpx.get(
        f"{client_stack.api.http_url}/api/v1/sessions", headers={"Accept": "text/html"}
    )
    assert response.status_code == 401


def test_the_browsable_api_of_sessions_renders_through_the_proxy(
    proxy: SigningProxy, browser: Browser
) -> None:
    page = browser.open(f"{proxy.origin}/api/v1/sessions")
    text = browser.wait_for(
        page,
        "document.querySelector('.response-info') && document.body.innerText",
        timeout=60,
    )
    assert "HTTP 200 OK" in text, text[:2000]
    assert '"sessions"' in text
    assert "Session List" in text  # the browsable API's page title for the view
    assert "Log in" not in text
    assert f"{proxy.origin}/api/v1/sessions" in page.statuses
    assert page.statuses[f"{proxy.origin}/api/v1/sessions"] == 200


def test_swagger_try_it_out_invokes_through_the_proxy(
    proxy: SigningProxy, browser: Browser
) -> None:
    SENT.prompt_record(PROMPT)
    page = browser.open(f"{proxy.origin}/api/v1/docs/")
    operation = "#operations-invoke-invoke"
    browser.wait_for(page, f"document.querySelector('{operation}') !== null", timeout=90)
    body = json.dumps(json.dumps({"prompt": PROMPT}))
    script = f"""
    (async () => {{
      window.__tryItOut = 'started';
      const op = document.querySelector('{operation}');
      const until = async (what, f) => {{
        for (let i = 0; i < 300; i++) {{ const v = f(); if (v) return v;
          await new Promise(r => setTimeout(r, 100)); }}
        throw new Error('no ' + what);
      }};
      try {{
        if (!op.querySelector('.opblock-body')) {{
          (op.querySelector('.opblock-summary-control') || op.querySelector('.opblock-summary'))
            .click();
        }}
        (await until('Try it out', () => op.querySelector('.try-out__btn'))).click();
        const area = await until('body', () => op.querySelector('textarea.body-param__text'));
        const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
        set.call(area, {body});
        area.dispatchEvent(new Event('input', {{bubbles: true}}));
        area.dispatchEvent(new Event('change', {{bubbles: true}}));
        await new Promise(r => setTimeout(r, 300));
        (await until('Execute', () => op.querySelector('button.execute'))).click();
        window.__tryItOut = 'executed';
      }} catch (e) {{ window.__tryItOut = String(e); }}
    }})()
    """
    browser.evaluate(page, script)
    state = browser.wait_for(
        page, "window.__tryItOut !== 'started' && window.__tryItOut", timeout=60
    )
    assert state == "executed", state
    status = browser.wait_for(
        page,
        f"(document.querySelector('{operation} .live-responses-table tbody .response-col_status')"
        " || {}).innerText",
        timeout=120,
    )
    answered = browser.evaluate(
        page, f"document.querySelector('{operation} .live-responses-table').innerText"
    )
    assert status.strip() == "200", answered[:2000]
    assert "final_decision" in answered
    assert f"{proxy.origin}/api/v1/invoke" in page.requested


def test_another_origin_cannot_use_the_proxy(
    proxy: SigningProxy, browser: Browser, client_stack: ClientStack
) -> None:
    """A page of another origin (the API's own, on another port: same site, so the
    SameSite cookie goes along) posts to the proxy: the Origin check refuses it."""
    page = browser.open(f"{client_stack.api.http_url}/api/v1/health")
    browser.wait_for(page, "document.readyState === 'complete'")
    refused_before = len(proxy.refused)
    browser.evaluate(
        page,
        f"""fetch('{proxy.origin}/api/v1/invoke', {{method: 'POST', mode: 'no-cors',
              credentials: 'include', headers: {{'Content-Type': 'text/plain'}},
              body: JSON.stringify({{prompt: 'Flight XX1 delayed 5 hours at LHR'}})}})
            .then(r => 'sent').catch(e => String(e))""",
    )
    deadline = time.monotonic() + 15
    while len(proxy.refused) == refused_before and time.monotonic() < deadline:
        browser.settle(0.2)  # let the request land
    refusals = proxy.refused[refused_before:]
    assert refusals, "the cross-origin request was not refused"
    assert refusals[-1][0] == 403
    assert "Origin" in refusals[-1][1]


def _raw_get(port: int, host: str, extra: str = "") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"GET /api/v1/sessions HTTP/1.1\r\nHost: {host}\r\n{extra}"
        sock.sendall(f"{head}Connection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_foreign_host_a_foreign_origin_or_no_token_is_refused(proxy: SigningProxy) -> None:
    cookie = f"Cookie: {COOKIE}={proxy._cookie_value}\r\n"
    # The proxy's own address and its cookie: forwarded, signed, answered.
    assert _raw_get(proxy.port, proxy.address, cookie).startswith("HTTP/1.1 200")
    # DNS rebinding: the browser sends the attacker's name as Host.
    rebound = _raw_get(proxy.port, f"evil.example:{proxy.port}", cookie)
    assert rebound.startswith("HTTP/1.1 403"), rebound[:300]
    assert '"error_code": "FORBIDDEN"' in rebound
    foreign = _raw_get(proxy.port, proxy.address, cookie + "Origin: https://evil.example\r\n")
    assert foreign.startswith("HTTP/1.1 403"), foreign[:300]
    assert _raw_get(proxy.port, proxy.address).startswith("HTTP/1.1 401")
    wrong = httpx.get(f"{proxy.origin}/api/v1/docs/?token=wrong")
    assert wrong.status_code == 401
