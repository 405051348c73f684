"""Headless Chromium (Debian's, /usr/bin/chromium; `make pytest` installs it) driven over
the DevTools protocol, for tests that load the app's HTML pages as a person's browser does.

The browser resolves no host name but 127.0.0.1 and localhost, and its own background
traffic is off: a page that needs anything from the internet fails to load it here, as it
would on a machine with no internet. Every URL a page requests is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    # Any host but this machine is unknown: no page can reach the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)


class DevToolsError(RuntimeError):
    pass


@dataclass
class Page:
    """One tab: what it requested, what it was answered and what its scripts threw."""

    session_id: str
    requested: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    # Requests the page's Content-Security-Policy stopped before they were sent.
    blocked_by_policy: list[str] = field(default_factory=list)
    _urls: dict[str, str] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)


class Browser:
    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._next_id = 0
        self._pages: dict[str, Page] = {}

    def _send(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self._next_id += 1
        command_id = self._next_id
        self._connection.send(
            json.dumps({"id": command_id, "method": method, "params": params or {}, **extra})
        )
        deadline = time.monotonic() + 30
        while True:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                raise DevToolsError(f"{method}: no answer in 30 s")
            if message.get("id") == command_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            raw = self._connection.recv(timeout=max(timeout, 0.001))
        except TimeoutError:
            return None
        message: dict[str, Any] = json.loads(raw)
        page = self._pages.get(message.get("sessionId", ""))
        if page is not None and "method" in message:
            self._record(page, message["method"], message.get("params", {}))
        return message

    @staticmethod
    def _record(page: Page, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            page.requested.append(params["request"]["url"])
            page._urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            page.statuses[params["response"]["url"]] = params["response"]["status"]
        elif method == "Network.loadingFailed":
            url = page._urls.get(params.get("requestId", ""), "?")
            if params.get("blockedReason") == "csp":
                page.blocked_by_policy.append(url)
            else:
                page.failed.append(f"{params.get('errorText')}: {url}")
        elif method == "Runtime.exceptionThrown":
            page.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:500])

    def open(self, url: str) -> Page:
        """A new tab that navigates to ``url`` (recording from before the first request)."""
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(session_id)
        self._pages[session_id] = page
        for domain in ("Network", "Page", "Runtime"):
            self._send(f"{domain}.enable", sessionId=session_id)
        self._send("Page.navigate", {"url": url}, sessionId=session_id)
        return page

    def evaluate(self, page: Page, expression: str) -> Any:
        result = self._send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            sessionId=page.session_id,
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def settle(self, seconds: float) -> None:
        """Record what the pages do for ``seconds`` more (late images, lazy requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._receive(min(0.2, deadline - time.monotonic()))

    def wait_for(self, page: Page, expression: str, *, timeout: float = 30.0) -> Any:
        """The value of ``expression`` once it is truthy; raises TimeoutError after
        ``timeout`` s with what the page requested."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(page, expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{expression!r} still false after {timeout:.0f} s; page requested "
                    f"{page.requested}, answered {page.statuses}, failed {page.failed}, "
                    f"threw {page.exceptions}"
                )
            # Let events arrive (and be recorded) between polls.
            while self._receive(0.2) is not None:
                pass


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium with a profile of its own, stopped (with its children) on exit."""
    profile = Path(tempfile.mkdtemp(prefix="skymarshal-chromium-"))
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None:
                raise DevToolsError(f"chromium exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise DevToolsError("chromium did not open its DevTools port in 30 s")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10) as ws:
            yield Browser(ws)
    finally:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
