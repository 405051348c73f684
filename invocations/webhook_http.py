"""Sending a webhook: the only module that connects to a caller's URL.

A webhook URL is the caller's, so what it may reach is ours to limit (server-side request
forgery). A URL is ``https`` (plain ``http`` only to the loopback address, and only with
the local-only WEBHOOK_ALLOW_LOCAL_HTTP). Its host is resolved once, and every address it
resolves to must be public: not private, loopback, link-local (the instance metadata
service, 169.254.169.254), multicast, reserved or unspecified, also when written as an
IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address. The connection goes to the address that
was checked, never to a second lookup of the name, so a name that resolves to a public
address and then to a private one (DNS rebinding) is never followed there. TLS is
verified against the URL's host name. Redirects are not followed (a 3xx is an answer
like any other), one attempt has WEBHOOK_TIMEOUT_SECONDS in all, and at most
RESPONSE_READ_BYTES of the answer are read.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings

URL_MAX_CHARS = 2048
RESPONSE_READ_BYTES = 4096
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[str, int, float], socket.socket]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, Teredo, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: str | IpAddress) -> str | None:
    """Why a webhook may not connect to ``address`` (None when it may)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            refusal = address_refusal(embedded)
            if refusal is not None:
                return refusal
            if ip.ipv4_mapped is not None:
                return None
    if ip.is_loopback:
        return None if settings.WEBHOOK_ALLOW_LOCAL_HTTP else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (such as the instance metadata service)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "an address that is not public"
    return None


def _literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook URL (None when it can), from the URL alone: its
    form, its scheme, credentials in it, an address in it that is not public. Where a
    host name resolves to is checked when connecting."""
    if len(url) > URL_MAX_CHARS:
        return f"url must be at most {URL_MAX_CHARS} characters; got {len(url)}."
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return "url must not hold spaces or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"url is not a valid URL: {exc}."
    local = settings.WEBHOOK_ALLOW_LOCAL_HTTP
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local):
        return "url must be an https:// URL" + (
            " (or http://127.0.0.1 with WEBHOOK_ALLOW_LOCAL_HTTP)." if local else "."
        )
    host = parts.hostname
    if not host:
        return "url must name a host."
    if parts.username is not None or parts.password is not None:
        return "url must not hold credentials (user:password@); authenticate with the signature."
    if parts.fragment:
        return "url must not have a fragment (#…)."
    if port == 0:
        return "url must not have port 0."
    literal = _literal_address(host)
    if parts.scheme == "http" and (literal is None or not literal.is_loopback):
        return "url may be http:// only to the loopback address (127.0.0.1); use https://."
    if literal is not None:
        refusal = address_refusal(literal)
        if refusal is not None:
            return f"url must not point at {refusal}."
    return None


@dataclass(frozen=True)
class PostOutcome:
    """One attempt: the receiver's HTTP status (None when it gave none), how long the
    attempt took, and why it got no status (refused, timed out, connection failed)."""

    status_code: int | None
    latency_ms: int
    error: str | None = None


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _Refused(Exception):
    pass


def webhook_post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    resolve: Resolver = _resolve,
    connect: Connector = _connect,
) -> PostOutcome:
    """POST ``body`` to ``url`` under the rules of this module: the outcome, never an
    exception. ``resolve`` and ``connect`` are the name lookup and the TCP connection
    (the tests give their own)."""
    began = time.monotonic()
    deadline = began + timeout
    sock: socket.socket | None = None
    expired = threading.Event()
    watchdog: threading.Timer | None = None

    def elapsed_ms() -> int:
        return int((time.monotonic() - began) * 1000)

    try:
        problem = webhook_url_problem(url)
        if problem is not None:
            raise _Refused(problem)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            return PostOutcome(None, elapsed_ms(), f"could not resolve the host: {exc}")
        if not addresses:
            return PostOutcome(None, elapsed_ms(), "the host resolves to no address")
        for address in addresses:
            refusal = address_refusal(address)
            if refusal is not None:
                raise _Refused(f"the host resolves to {refusal} ({address}); not connected")
        if parts.scheme == "http" and not all(
            ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses
        ):
            raise _Refused("http:// is allowed to the loopback address only")
        last_error: OSError | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                sock = connect(address, port, remaining)
                break
            except OSError as exc:
                last_error = exc
        if sock is None:
            return PostOutcome(None, elapsed_ms(), f"could not connect: {last_error}")
        connected = sock

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                connected.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        watchdog.daemon = True
        watchdog.start()
        if parts.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = sock
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        status = response.status
        latency = elapsed_ms()
        response.read(RESPONSE_READ_BYTES)
        return PostOutcome(status, latency, None)
    except _Refused as exc:
        return PostOutcome(None, elapsed_ms(), f"refused: {exc}")
    except TimeoutError:
        return PostOutcome(None, elapsed_ms(), f"timed out after {timeout:g} s")
    except ssl.SSLError as exc:
        return PostOutcome(None, elapsed_ms(), f"TLS failed: {exc.reason or exc}")
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            return PostOutcome(None, elapsed_ms(), f"timed out after {timeout:g} s")
        return PostOutcome(None, elapsed_ms(), f"{type(exc).__name__}: {exc}")
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if sock is not None:
            sock.close()
