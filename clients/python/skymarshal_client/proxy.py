"""``skymarshal proxy``: a signing proxy on 127.0.0.1 for a browser.

A browser cannot sign requests with SigV4, and API Gateway refuses unsigned ones. The proxy
forwards each request to the stage, signed with the user's AWS credentials, and streams
the answer back (Server-Sent Events included), so the browsable API, Swagger UI (with "Try
it out") and Redoc of a deployed stage open at ``http://127.0.0.1:PORT/``.

Because it signs whatever reaches it, it must not act for anyone else (a confused deputy):

- **Host.** Only requests whose Host is the proxy's own address (127.0.0.1:PORT) are
  served: a page of another site whose name was re-bound to 127.0.0.1 (DNS rebinding)
  sends its own name as Host and is refused.
- **Origin.** A request that carries an Origin must come from the proxy's own origin:
  another site's page cannot have the browser post through it (cross-site requests carry
  their origin).
- **Token.** As Jupyter's server does, the proxy opens with a random token: the first
  visit presents it in the URL (``?token=…``), which sets a cookie (HttpOnly,
  SameSite=Strict) that every later request must present. Another local user or process
  without the token gets 401.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from skymarshal_client.signing import AwsIdentity

COOKIE = "skymarshal_proxy"
# Request headers forwarded to the API (anything else, cookies above all, stays here).
FORWARDED_REQUEST_HEADERS = (
    "accept",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "x-request-id",
)
# Hop-by-hop headers (RFC 9110 7.6.1) and the API's cookies are not passed back.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
    }
)
LANDING = "/api/v1/docs/"


def _error_body(status: str, code: str, message: str) -> bytes:
    """The API's error shape, for the proxy's own refusals."""
    return json.dumps(
        {
            "status": "error",
            "request_id": "proxy",
            "error_code": code,
            "error_message": message,
            "details": {"refused_by": "skymarshal proxy", "status": status},
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
    ).encode()


class SigningProxy:
    """Serves on ``host:port`` (port 0: a free one) and forwards to ``upstream`` (the
    stage's base URL, with its stage path), signed by ``identity``."""

    def __init__(
        self,
        upstream: str,
        identity: AwsIdentity,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        timeout: float = 60.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        self.upstream_origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.stage_prefix = parts.path.rstrip("/")
        self.identity = identity
        self.token = token or secrets.token_urlsafe(32)
        # The cookie's value is not the token itself: the URL with the token may end up
        # in a browser's history, the cookie value never does.
        self._cookie_value = secrets.token_urlsafe(32)
        self._log = log
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.host: str = host
        self.port: int = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None
        #: the requests refused (status and reason), newest last
        self.refused: list[tuple[int, str]] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.address}"

    @property
    def open_url(self) -> str:
        """The URL to open first (it carries the token)."""
        return f"{self.origin}{self.stage_prefix}{LANDING}?{urlencode({'token': self.token})}"

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def start(self) -> SigningProxy:
        """Serve in a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the checks -----------------------------------------------------------------

    def refusal(self, headers: Any) -> tuple[int, str, str] | None:
        """Why a request must not be forwarded (status, error code, message), or None."""
        host = headers.get("Host", "")
        if host != self.address:
            return (
                403,
                "FORBIDDEN",
                f"This proxy answers only requests for {self.address} (got Host {host!r}).",
            )
        origin = headers.get("Origin")
        if origin is not None and origin != self.origin:
            return (
                403,
                "FORBIDDEN",
                f"This proxy answers only its own pages ({self.origin}); got Origin {origin!r}.",
            )
        return None

    def cookie_valid(self, headers: Any) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie", ""))
        except Exception:
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value, self._cookie_value)

    def token_valid(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.token.encode())

    def upstream_url(self, target: str) -> str:
        path, _, query = target.partition("?")
        if self.stage_prefix and not (
            path == self.stage_prefix or path.startswith(self.stage_prefix + "/")
        ):
            path = self.stage_prefix + path
        return f"{self.upstream_origin}{path}" + (f"?{query}" if query else "")

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)


class _Handler(BaseHTTPRequestHandler):
    proxy: SigningProxy
    protocol_version = "HTTP/1.1"
    server_version = "skymarshal-proxy"

    def log_message(self, format: str, *args: Any) -> None:
        self.proxy.log(format % args)

    def _send_error(self, status: int, code: str, message: str) -> None:
        self.proxy.refused.append((status, message))
        self.proxy.log(f"refused {self.command} {self.path.partition('?')[0]}: {message}")
        body = _error_body(str(status), code, message)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        refusal = self.proxy.refusal(self.headers)
        if refusal is not None:
            self._drain()
            self._send_error(*refusal)
            return
        path, _, query = self.path.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        token = next((value for name, value in params if name == "token"), None)
        if token is not None:
            self._drain()
            if not self.proxy.token_valid(token):
                self._send_error(
                    401, "UNAUTHORIZED", "Wrong token: open the URL the proxy printed."
                )
                return
            rest = [(name, value) for name, value in params if name != "token"]
            self.send_response(303)
            self.send_header("Location", path + (f"?{urlencode(rest)}" if rest else ""))
            self.send_header(
                "Set-Cookie",
                f"{COOKIE}={self.proxy._cookie_value}; Path=/; HttpOnly; SameSite=Strict",
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self.proxy.cookie_valid(self.headers):
            self._drain()
            self._send_error(
                401,
                "UNAUTHORIZED",
                "Open the URL `skymarshal proxy` printed (it carries the proxy's token) first.",
            )
            return
        self._forward()

    def _drain(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _forward(self) -> None:
        body = self._drain()
        url = self.proxy.upstream_url(self.path)
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() in FORWARDED_REQUEST_HEADERS
        }
        try:
            headers.update(self.proxy.identity.sign(self.command, url, headers, body))
        except RuntimeError as exc:  # no credentials
            self._send_error(401, "UNAUTHORIZED", str(exc))
            return
        request = self.proxy._http.build_request(self.command, url, content=body, headers=headers)
        try:
            response = self.proxy._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            self._send_error(502, "CONNECTION_FAILED", f"The API could not be reached: {exc}")
            return
        try:
            self.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if (
                    name.lower() not in DROPPED_RESPONSE_HEADERS
                    and name.lower() != "content-length"
                ):
                    self.send_header(name, value)
            length = response.headers.get("Content-Length")
            if self.command == "HEAD" or response.status_code in (204, 304):
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                self.wfile.flush()
                return
            chunked = length is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", length)
            self.end_headers()
            self.wfile.flush()
            # Raw bytes as they arrive (an event stream event by event; compressed bodies
            # stay compressed, with their Content-Encoding).
            for chunk in response.iter_raw():
                if not chunk:
                    continue
                if chunked:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser went away: so does the upstream call
        except httpx.HTTPError:
            self.close_connection = True  # the API's answer broke off: so does ours
        finally:
            response.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
