"""What the fuzzing of the running API (test_fuzz.py) sends, and how it checks each answer.

``Sent`` is one request as it goes on the wire; ``_exchange`` sends it with its target
verbatim and asserts the answer is sane (never a 5xx, every JSON error in the one error
shape, its request_id the response's X-Request-ID, never a traceback). The Hypothesis
strategies draw raw requests, SigV4-signed requests (signed by botocore, then sometimes
tampered with), staff login forms and requests of a logged-in staff session; the seeds are
the examples every run tries first.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode

import httpx
from hypothesis import HealthCheck, example
from hypothesis import strategies as st

from scripts.stack import Server
from tests.signing import DEV_KEY, REGION, botocore_headers

T = TypeVar("T")
SERVICE = "execute-api"
MAX_BODY = 64 * 1024
IDENTITY = "/api/v1/identity"
TRACEBACK_FRAME = re.compile(r'File "[^"\n]*", line \d+')
ERROR_KEYS = {"status", "request_id", "error_code", "error_message", "details", "timestamp"}
STAFF_USER, STAFF_PASSWORD = "fuzz-staff", "fuzz-staff-password-1"

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
ODD_METHODS = ("TRACE", "PROPFIND", "FUZZ")
KNOWN_PATHS = (
    "/api/v1/health",
    IDENTITY,
    "/api/v1/schema/",
    "/api/v1/docs/",
    "/api/v1/redoc/",
    "/api-auth/login/",
    "/api-auth/logout/",
    "/api/v1/schema",
    "/api/v1/health/",
    "/api/v1/",
    "/",
    "/admin/",
    "/static/rest_framework/css/bootstrap.min.css",
)
# What may stand in a request target (RFC 9112 request-target: visible ASCII).
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
TOKEN = string.ascii_letters + string.digits + "-!#$%&'*+.^_`|~"
HEX = "0123456789abcdef"
QUERY_KEYS = (
    "format",
    "lang",
    "version",
    "next",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "page",
    "q",
)
FORMATS = ("json", "api", "yaml", "openapi", "openapi-json", "xml", "")

# Header values may carry placeholders, filled in when the request is sent (the examples
# stay reproducible; the server's clock, port and session do not).
NOW, TODAY, SELF = "{NOW}", "{TODAY}", "{SELF}"
SESSION, CSRF = "{SESSION}", "{CSRF}"

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
}


# --- What is sent ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One HTTP request as it goes on the wire, less httpx's default headers (Host, Accept,
    Accept-Encoding, User-Agent unless given here) and the Content-Length or chunked
    Transfer-Encoding that httpx derives from the body."""

    method: str
    target: str
    headers: tuple[tuple[str, bytes], ...] = ()
    body: bytes = b""
    chunked: bool = False

    def describe(self) -> str:
        target = self.target if len(self.target) <= 500 else self.target[:500] + "..."
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        chunked = ", chunked" if self.chunked else ""
        lines = [f"{self.method} {target} ({len(self.target)} characters)"]
        lines += [f"  {name}: {value!r}" for name, value in self.headers]
        lines.append(f"  body ({len(self.body)} bytes{chunked}): {body!r}")
        return "\n".join(lines)


def _amz_now(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).strftime("%Y%m%dT%H%M%SZ")


def _materialize(sent: Sent, server: Server, fill: dict[str, str] | None = None) -> Sent:
    """``sent`` with the placeholders in its header values filled in."""
    now = _amz_now()
    values = {NOW: now, TODAY: now[:8], SELF: server.http_url, **(fill or {})}
    headers = []
    for name, value in sent.headers:
        for placeholder, actual in values.items():
            value = value.replace(placeholder.encode(), actual.encode())
        headers.append((name, value.strip(b" ")))
    return replace(sent, headers=tuple(headers))


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def _exchange(client: httpx.Client, server: Server, sent: Sent) -> httpx.Response:
    """Sends ``sent`` exactly (no cookies kept from earlier examples) and checks what every
    response must be."""
    client.cookies.clear()
    content: bytes | Iterator[bytes] = _chunks(sent.body) if sent.chunked else sent.body
    try:
        response = client.request(
            sent.method,
            f"{server.http_url}/",
            headers=list(sent.headers),
            content=content,
            extensions={"target": sent.target.encode("ascii")},
        )
    except httpx.TransportError as exc:
        raise AssertionError(_report(sent, None, server, f"no response: {exc!r}")) from exc
    _assert_sane(sent, response, server)
    return response


def _report(sent: Sent, response: httpx.Response | None, server: Server, why: str) -> str:
    parts = [why, "--- request ---", sent.describe()]
    if response is not None:
        parts += [
            f"--- response {response.status_code} ---",
            "\n".join(f"  {k}: {v}" for k, v in response.headers.items()),
            response.content[:1500].decode("utf-8", "replace"),
        ]
    parts += ["--- server log tail ---", _log_tail(server)]
    return "\n".join(parts)


def _log_tail(server: Server) -> str:
    """The server's last 80 log lines, each cut to 400 characters (paths can be long)."""
    lines = server.log_tail(80).splitlines()
    return "\n".join(line if len(line) <= 400 else line[:400] + " ..." for line in lines)


def _assert_sane(sent: Sent, response: httpx.Response, server: Server) -> None:
    """What every response is, whatever was sent. (Assertion messages are only built when
    an assertion fails.)"""

    def fail(why: str) -> str:
        return _report(sent, response, server, why)

    assert response.status_code < 500, fail(f"{response.status_code} from the server")
    text = response.content.decode("utf-8", "replace")
    # Not a bare "Traceback": the browsable API's Pygments stylesheet has "Generic.Traceback".
    assert "Traceback (most recent call last)" not in text, fail("a traceback in the body")
    assert not TRACEBACK_FRAME.search(text), fail("a traceback frame in the body")
    content_type = response.headers.get("content-type", "")
    if (
        response.status_code >= 400
        and content_type.startswith("application/json")
        and sent.method != "HEAD"
    ):
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(fail("a JSON error whose body is not JSON")) from None
        assert isinstance(body, dict), fail("a JSON error that is not an object")
        assert set(body) == ERROR_KEYS, fail("a JSON error not in the error shape")
        assert body["status"] == "error", fail("an error whose status is not 'error'")
        assert body["request_id"], fail("an error without a request id")
        assert body["request_id"] == response.headers.get("x-request-id"), fail(
            "the error's request_id is not the X-Request-ID header"
        )
        assert isinstance(body["error_code"], str), fail("error_code is not a string")
        assert body["error_code"], fail("an empty error_code")
        assert isinstance(body["error_message"], str), fail("error_message is not a string")
        assert isinstance(body["timestamp"], str), fail("timestamp is not a string")
        assert body["timestamp"].endswith("Z"), fail("timestamp is not UTC")
    sent_ids = [value for name, value in sent.headers if name.lower() == "x-request-id"]
    if sent_ids and "x-request-id" in response.headers:
        assert response.headers["x-request-id"].encode() not in sent_ids, fail(
            "the request id was taken from the client"
        )


def _client() -> httpx.Client:
    # A fresh connection per request: a server that closes one after a bad request cannot
    # break the next example.
    return httpx.Client(
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_keepalive_connections=0),
        follow_redirects=False,
    )


# --- Strategies -----------------------------------------------------------------------------


def _pct(data: bytes, upper: bool = True) -> str:
    return "".join(f"%{b:02X}" if upper else f"%{b:02x}" for b in data)


def _target_safe(text: str) -> str:
    """``text`` with everything outside visible ASCII percent-encoded."""
    return "".join(c if c in VCHAR else quote(c, safe="") for c in text)


junk_text = st.text(alphabet=VCHAR, max_size=40)
SEGMENTS = (
    *("..", ".", "%2e%2e", "%2E%2e", "..%2f", "%2e", "api", "v1", "health", "identity"),
    *("schema", "", ";", "..;", "%00", "~", "%2F", "%5C..%5C", "\\..\\"),
)
segments = st.sampled_from(SEGMENTS)
queries = st.one_of(
    st.just(""),
    junk_text.map(lambda q: "?" + q),
    st.lists(
        st.tuples(
            st.sampled_from(QUERY_KEYS) | st.text(max_size=8).map(lambda k: quote(k)),
            st.sampled_from(FORMATS) | st.text(max_size=30).map(lambda v: quote(v, safe="")),
        ),
        min_size=1,
        max_size=5,
    ).map(lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs)),
    st.sampled_from([4_000, 9_000]).map(lambda n: "?q=" + "b" * n),
)
paths = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.tuples(st.sampled_from(KNOWN_PATHS), queries).map("".join),
    st.tuples(st.sampled_from(KNOWN_PATHS), queries).map("".join),
    st.tuples(st.sampled_from(KNOWN_PATHS), junk_text).map("".join),
    junk_text.map(lambda p: "/" + p),
    st.tuples(st.binary(max_size=16), st.booleans()).map(lambda t: "/" + _pct(*t)),
    st.tuples(st.sampled_from(KNOWN_PATHS), st.lists(segments, max_size=6)).map(
        lambda t: t[0] + "/" + "/".join(t[1])
    ),
    st.lists(segments, max_size=8).map(lambda segs: "/" + "/".join(segs)),
    st.sampled_from([1_000, 4_000, 4_100, 9_000, 20_000]).map(lambda n: "/api/v1/" + "a" * n),
    st.sampled_from(
        [
            "*",
            "api/v1/health",
            "http://127.0.0.1/api/v1/health",
            "http://evil.example/api/v1/identity",
            "//evil.example/api/v1/health",
            "/api/v1/health#frag",
            "/api/v1/health?",
            "/%",
            "/%zz",
            "/%C0%AF",
            "/%ED%A0%80",
            "/api/v1/%68ealth",
            "/api/v1%2Fidentity",
            "/api/v1/identity%00",
            "/api/v1/schema/?format=openapi-json&lang=xx",
            "/api/v1/schema/?version=%FF",
            "/api-auth/login/?next=//evil.example",
            "/api-auth/login/?next=%0d%0aSet-Cookie:x=1",
        ]
    ),
)


def _header_bytes(data: bytes) -> bytes:
    """Bytes h11 will put in a header value: no NUL, CR, LF or whitespace at either end."""
    cleaned = bytes(b for b in data if b not in (0, 9, 10, 11, 12, 13))
    return cleaned.strip(b" ")


ascii_values = st.text(alphabet=VCHAR + " ", max_size=60).map(lambda v: v.strip().encode())
# Mostly printable ASCII; raw bytes (control characters, obs-text) make gunicorn answer 400
# before the app sees the request, so they are the rarer kind.
byte_values = st.one_of(ascii_values, ascii_values, st.binary(max_size=60).map(_header_bytes))
hex_signatures = st.one_of(
    st.text(alphabet=HEX, min_size=64, max_size=64),
    st.text(alphabet=HEX + "ABCDEFxyz", max_size=80),
)
authorization_values = st.one_of(
    ascii_values,
    byte_values,
    ascii_values.map(lambda v: b"AWS4-HMAC-SHA256 " + v),
    st.sampled_from(
        [b"Basic YWRtaW46YWRtaW4=", b"Bearer x.y.z", b"Token abc", b"AWS4-HMAC-SHA256"]
    ),
    st.builds(
        lambda scheme, akid, date, region, service, term, signed, sig, sep: (
            f"{scheme} Credential={akid}/{date}/{region}/{service}/{term}{sep}"
            f"SignedHeaders={signed}{sep}Signature={sig}"
        ).encode(),
        st.sampled_from(["AWS4-HMAC-SHA256", "aws4-hmac-sha256", "AWS4-HMAC-SHA1"]),
        st.sampled_from([DEV_KEY, "AKIAUNKNOWNKEY000000", "", "a/b"]) | junk_text,
        st.sampled_from([TODAY, "20000101", "99991231", "2024-01-01"]) | junk_text,
        st.sampled_from([REGION, "eu-west-1", ""]) | junk_text,
        st.sampled_from([SERVICE, "s3", "execute-api/extra"]),
        st.sampled_from(["aws4_request", "aws4_request/x", ""]),
        st.sampled_from(
            [
                "host;x-amz-date",
                "host",
                "x-amz-date",
                "host;x-amz-date;x-amz-security-token",
                "host;x-amz-date;x-missing",
                "content-type;host;x-amz-date",
            ]
        )
        | st.text(alphabet="abcdefxyz-;0", min_size=1, max_size=40),
        hex_signatures,
        st.sampled_from([", ", ",", " , ", ",,", " "]),
    ),
)
amz_dates = st.one_of(
    st.sampled_from([NOW, "20000101T000000Z", "99991231T235959Z", "00010101T000000Z"]),
    st.sampled_from(["20241301T000000Z", "20240230T000000Z", "2024-01-01T00:00:00Z", ""]),
    st.text(alphabet="0123456789TZ", max_size=20),
).map(str.encode)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-16",
            "application/json; charset=nonsense",
            "text/plain",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/vnd.api+json",
            "*/*",
            "",
        ]
    ).map(str.encode),
    ascii_values,
)
accepts = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "text/html",
            "*/*",
            "application/vnd.oai.openapi",
            "application/vnd.oai.openapi+json",
            "application/yaml",
            "application/json; indent=abc",
            "application/json; indent=4",
            "text/html; q=0.9, application/json; q=0.1",
            "image/png",
            "application/json; version=9",
        ]
    ).map(str.encode),
    ascii_values,
)
origins = st.one_of(
    st.sampled_from(
        ["http://localhost:3000", "http://127.0.0.1:3000", "null", "http://evil.example", SELF]
    ).map(str.encode),
    byte_values,
)
cookies = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits, max_size=40).map(
        lambda v: f"sessionid={v}".encode()
    ),
    st.text(alphabet=string.ascii_letters + string.digits, max_size=70).map(
        lambda v: f"csrftoken={v}".encode()
    ),
    byte_values,
)
VALUES_BY_NAME: dict[str, st.SearchStrategy[bytes]] = {
    "Authorization": authorization_values,
    "X-Amz-Date": amz_dates,
    "X-Amz-Security-Token": byte_values,
    "X-Amz-Content-SHA256": st.one_of(
        st.text(alphabet=HEX, min_size=64, max_size=64).map(str.encode),
        st.sampled_from([b"UNSIGNED-PAYLOAD", b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]),
    ),
    "Content-Type": content_types,
    "Accept": accepts,
    "Origin": origins,
    "Access-Control-Request-Method": st.sampled_from((*METHODS, "", "FUZZ")).map(str.encode),
    "Access-Control-Request-Headers": st.sampled_from(
        [b"authorization,x-amz-date", b"x-evil", b"content-type", b""]
    ),
    "Cookie": cookies,
    "X-CSRFToken": ascii_values,
    "Host": st.sampled_from([b"127.0.0.1", b"localhost:1", b"evil.example", b"[::1]", b""])
    | byte_values,
    "Referer": st.sampled_from([SELF.encode(), b"http://evil.example/"]) | byte_values,
    "X-Forwarded-Proto": st.sampled_from([b"https", b"http", b"gopher"]),
    "X-Forwarded-Host": st.sampled_from([b"evil.example", b"127.0.0.1"]) | byte_values,
    "X-Forwarded-For": byte_values,
    "X-Request-ID": st.sampled_from([b"client-chosen-id", b"00000000-0000-0000-0000-000000000000"]),
    "X-HTTP-Method-Override": st.sampled_from(METHODS).map(str.encode),
    "Expect": st.sampled_from([b"100-continue", b"fancy"]),
    "Content-Encoding": st.sampled_from([b"gzip", b"br", b"identity", b"x"]),
    "Accept-Language": byte_values,
    "If-None-Match": byte_values,
    "Range": st.sampled_from([b"bytes=0-10", b"bytes=-1", b"lines=1"]),
    "Idempotency-Key": byte_values,
    "Last-Event-ID": byte_values,
    "User-Agent": byte_values,
}
headers_one = st.one_of(
    st.sampled_from(sorted(VALUES_BY_NAME)).flatmap(
        lambda name: VALUES_BY_NAME[name].map(lambda value: (name, value))
    ),
    st.tuples(st.text(alphabet=TOKEN, min_size=1, max_size=20), byte_values),
)
# A well-formed Authorization with X-Amz-Date of now: verification reaches the signature.
almost_valid_auth = st.builds(
    lambda signed, sig: (
        (
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={DEV_KEY}/{TODAY}/{REGION}/{SERVICE}/aws4_request, "
            f"SignedHeaders={signed}, Signature={sig}".encode(),
        ),
        ("X-Amz-Date", NOW.encode()),
    ),
    st.sampled_from(["host;x-amz-date", "content-type;host;x-amz-date", "host;x-amz-date;origin"]),
    st.text(alphabet=HEX, min_size=64, max_size=64),
)


def _one_host(headers: tuple[tuple[str, bytes], ...]) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with no second Host header (httpx refuses to send one)."""
    hosts = [i for i, (name, _) in enumerate(headers) if name.lower() == "host"]
    return tuple(h for i, h in enumerate(headers) if i not in hosts[1:])


header_lists = st.tuples(
    st.lists(headers_one, max_size=6),
    st.one_of(st.just(()), almost_valid_auth),
).map(lambda t: _one_host(tuple(t[0]) + tuple(t[1])))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# JSON as a parser meets it: valid, broken, and nested deeper than the recursion limit.
json_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([900, 1_000, 5_000, 60_000]).flatmap(
        lambda depth: st.sampled_from([b"[" * depth, b'{"a":' * depth])
    ),
    st.sampled_from([b"{]", b'{"a": NaN}', b"\xff\xfe{", b'"\\ud800"', b"1e999999", b""]),
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5).map(
        lambda d: urlencode(d).encode()
    ),
    json_bodies,
    st.sampled_from(
        [
            b"\xef\xbb\xbf{}",
            b"\x00" * 100,
            "{}".encode("utf-16"),
            b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--xyz--\r\n",
            b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="..\\x"\r\n\r\n',
            b"&".join(b"a%d=1" % i for i in range(1100)),
        ]
    ),
    st.sampled_from([MAX_BODY, MAX_BODY + 1, 100_000, 300_000]).map(lambda n: b"x" * n),
)
chunked = st.integers(0, 7).map(lambda n: n == 7)


@st.composite
def raw_requests(draw: st.DrawFn) -> Sent:
    return Sent(
        method=draw(st.sampled_from(METHODS) | st.sampled_from(ODD_METHODS)),
        target=_target_safe(draw(paths)),
        headers=draw(header_lists),
        body=draw(bodies),
        chunked=draw(chunked),
    )


# Every method on every known path, plainly.
SWEEP = tuple(Sent(method, path) for path in KNOWN_PATHS for method in (*METHODS, *ODD_METHODS))


def _with_examples[T](*examples: T) -> Callable[[Callable[[T], None]], Callable[[T], None]]:
    """Hypothesis tries these first (a seed corpus of inputs known to be hard to handle)."""

    def decorate(test: Callable[[T], None]) -> Callable[[T], None]:
        for value in reversed(examples):
            test = example(value)(test)
        return test

    return decorate


# --- Signed requests ------------------------------------------------------------------------

TAMPERS = (
    "body",
    "signature",
    "query",
    "method",
    "signed_long_ago",
    "signed_in_future",
    "date_shifted",
    "date_garbage",
    "drop_date",
    "content_sha_wrong",
    "token",
    "duplicate_auth",
    "wrong_secret",
    "unknown_key",
    "wrong_region",
    "wrong_service",
)


@dataclass(frozen=True)
class SignedPlan:
    """A request to sign with botocore and then (maybe) tamper with."""

    method: str
    path: str  # as sent: percent-encoded
    query: str  # as sent, without "?"; canonical when ``canonical``
    canonical: bool  # path and query in the form both botocore and the server canonicalize alike
    body: bytes
    headers: tuple[tuple[str, str], ...]  # extra headers, all signed
    tamper: str | None

    def routes_to_identity(self) -> bool:
        # gunicorn percent-decodes PATH_INFO; Django routes on that.
        return unquote(self.path) == IDENTITY


def _encode_some(text: str, flags: list[int]) -> str:
    out = []
    for i, char in enumerate(text):
        flag = flags[i] if i < len(flags) else 0
        if flag == 1:
            out.append(_pct(char.encode(), upper=True))
        elif flag == 2:
            out.append(_pct(char.encode(), upper=False))
        else:
            out.append(char)
    return "".join(out)


# The identity path with some characters percent-encoded (never the leading slash).
identity_paths = st.lists(st.sampled_from([0, 0, 0, 0, 1, 2]), max_size=len(IDENTITY) - 1).map(
    lambda flags: "/" + _encode_some(IDENTITY[1:], flags)
)
canonical_queries = st.lists(
    st.tuples(
        st.sampled_from(("lang", "version", "page", "q", "X-Amz-Meta")) | st.text(max_size=10),
        st.text(max_size=20),
    ).map(lambda kv: f"{quote(kv[0], safe='-_.~')}={quote(kv[1], safe='-_.~')}"),
    max_size=5,
).map("&".join)
extra_header_names = st.text(alphabet=string.ascii_lowercase + string.digits + "-", max_size=12)
signed_extra_headers = st.lists(
    st.one_of(
        st.tuples(
            extra_header_names.map(lambda n: "x-fuzz-" + n),
            st.text(alphabet=VCHAR + "  ", max_size=40),
        ),
        st.tuples(st.just("Content-Type"), content_types.map(bytes.decode)),
        st.tuples(st.just("Accept"), accepts.map(bytes.decode)),
        st.tuples(
            st.just("Origin"),
            st.sampled_from(["http://localhost:3000", "http://evil.example", "null"]),
        ),
        # Empty values: present on the wire, signed, and easy to lose on the way in.
        st.tuples(st.sampled_from(["Content-Type", "Accept", "x-fuzz-empty"]), st.just("")),
    ),
    max_size=4,
    unique_by=lambda h: h[0].lower(),
)


@st.composite
def signed_plans(draw: st.DrawFn) -> SignedPlan:
    canonical = draw(st.integers(0, 3)) < 3
    if canonical:
        path = draw(identity_paths)
        query = draw(canonical_queries)
    else:
        path, _, query = _target_safe(draw(paths)).partition("?")
        path = path if path.startswith("/") else "/" + path  # botocore signs URLs
        if draw(st.booleans()):
            path = draw(identity_paths)
    tamper = draw(st.none() | st.none() | st.sampled_from(TAMPERS))
    body = draw(bodies)
    headers = draw(signed_extra_headers)
    if draw(st.integers(0, 4)) == 4:
        headers.append(("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest()))
    return SignedPlan(
        method=draw(st.sampled_from(METHODS)),
        path=path,
        query=query,
        canonical=canonical,
        body=body,
        headers=tuple(headers),
        tamper=tamper,
    )


def _signed(plan: SignedPlan, server: Server) -> Sent:
    """The plan signed by botocore now, then tampered with as the plan says."""
    sign: dict[str, Any] = {}
    if plan.tamper == "wrong_secret":
        sign["secret"] = "not-the-secret"
    elif plan.tamper == "unknown_key":
        sign["key"] = "AKIAUNKNOWNKEY000000"
    elif plan.tamper == "wrong_region":
        sign["region"] = "eu-west-1"
    elif plan.tamper == "wrong_service":
        sign["service"] = "s3"
    elif plan.tamper == "signed_long_ago":
        sign["at"] = datetime.now(UTC) - timedelta(minutes=10)
    elif plan.tamper == "signed_in_future":
        sign["at"] = datetime.now(UTC) + timedelta(minutes=10)
    target = plan.path + (f"?{plan.query}" if plan.query else "")
    signed = botocore_headers(
        plan.method,
        f"{server.http_url}{target}",
        body=plan.body,
        headers=dict(plan.headers),
        **sign,
    )
    headers = [(name, str(value)) for name, value in signed.items()]
    method, body = plan.method, plan.body
    if plan.tamper == "body":
        body += b"x"
    elif plan.tamper == "query":
        target += "&tampered=1" if plan.query else "?tampered=1"
    elif plan.tamper == "method":
        method = "POST" if plan.method == "GET" else "GET"
    elif plan.tamper == "signature":
        headers = [
            (n, v[:-1] + ("0" if v[-1] != "0" else "1") if n == "Authorization" else v)
            for n, v in headers
        ]
    elif plan.tamper in ("date_shifted", "date_garbage", "drop_date"):
        signed_at = datetime.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        headers = [(n, v) for n, v in headers if n != "X-Amz-Date"]
        if plan.tamper == "date_shifted":  # one second earlier than signed: same scope date
            shifted = signed_at - timedelta(seconds=1 if signed_at.second else -1)
            headers.append(("X-Amz-Date", shifted.strftime("%Y%m%dT%H%M%SZ")))
        elif plan.tamper == "date_garbage":
            headers.append(("X-Amz-Date", "2024-01-01T00:00:00Z"))
    elif plan.tamper == "content_sha_wrong":
        headers = [(n, v) for n, v in headers if n.lower() != "x-amz-content-sha256"]
        headers.append(("X-Amz-Content-SHA256", hashlib.sha256(body + b"!").hexdigest()))
    elif plan.tamper == "token":
        headers.append(("X-Amz-Security-Token", "FwoGZXIvYXdzEBYaDFAKE"))
    elif plan.tamper == "duplicate_auth":
        headers += [(n, v) for n, v in headers if n == "Authorization"]
    return Sent(
        method=method,
        target=target,
        headers=tuple((n, v.strip(" ").encode("latin-1")) for n, v in headers),
        body=body,
    )


# Correctly signed requests whose signed headers are present but empty.
SIGNED_SEEDS = tuple(
    SignedPlan("GET", IDENTITY, "", True, b"", ((name, ""),), None)
    for name in ("x-fuzz-empty", "Accept", "Content-Type")
)


def _is_valid(plan: SignedPlan) -> bool:
    """Signed by the dev key, unchanged, with a path and query that botocore and the server
    canonicalize alike: the server must accept the signature."""
    return plan.tamper is None and plan.canonical


# --- Staff login form -----------------------------------------------------------------------

CSRF_SECRET = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@st.composite
def login_requests(draw: st.DrawFn) -> Sent:
    csrf = draw(st.sampled_from(["pair", "pair", "pair", "cookie_only", "header_only", "mismatch"]))
    headers: list[tuple[str, bytes]] = []
    if csrf in ("pair", "cookie_only", "mismatch"):
        cookie = f"csrftoken={CSRF_SECRET}"
        if draw(st.booleans()):
            cookie += "; sessionid=" + draw(st.text(alphabet=string.ascii_lowercase, max_size=32))
        headers.append(("Cookie", cookie.encode()))
    if csrf in ("pair", "header_only"):
        headers.append(("X-CSRFToken", CSRF_SECRET.encode()))
    if csrf == "mismatch":
        headers.append(("X-CSRFToken", CSRF_SECRET[::-1].encode()))
    origin = draw(st.sampled_from([None, None, SELF, "http://evil.example", "null"]))
    if origin is not None:
        headers.append(("Origin", origin.encode()))
    fields: list[tuple[str, str]] = []
    if draw(st.integers(0, 4)) > 0:
        fields.append(("username", draw(st.sampled_from([STAFF_USER, "x" * 200]) | st.text())))
    if draw(st.integers(0, 4)) > 0:
        fields.append(("password", draw(st.sampled_from([STAFF_PASSWORD, "p" * 5000]) | st.text())))
    if draw(st.booleans()):
        fields.append(("next", draw(st.sampled_from(["/", "//evil.example", "\\\\x"]) | junk_text)))
    if draw(st.booleans()):
        fields.append(("csrfmiddlewaretoken", draw(st.just(CSRF_SECRET) | junk_text)))
    encoding = draw(st.sampled_from(["form", "form", "multipart", "raw", "many"]))
    if encoding == "form":
        body = urlencode(fields).encode()
        content_type = b"application/x-www-form-urlencoded"
    elif encoding == "multipart":
        parts = b"".join(
            b'--b0und\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
            % (name.encode(), value.encode())
            for name, value in fields
        )
        body = parts + draw(st.sampled_from([b"--b0und--\r\n", b"", b"--b0und"]))
        content_type = draw(
            st.sampled_from(
                [b"multipart/form-data; boundary=b0und", b"multipart/form-data; boundary="]
            )
        )
    elif encoding == "many":
        body = b"&".join(b"f%d=1" % i for i in range(1100))
        content_type = b"application/x-www-form-urlencoded"
    else:
        body = draw(bodies)
        content_type = draw(content_types)
    headers.append(("Content-Type", content_type))
    query = draw(st.just("") | junk_text.map(lambda n: "?next=" + quote(n, safe="")))
    return Sent(
        method=draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"])),
        target="/api-auth/login/" + query,
        headers=tuple(headers),
        body=body,
    )


_CSRF_PAIR = (
    ("Cookie", f"csrftoken={CSRF_SECRET}".encode()),
    ("X-CSRFToken", CSRF_SECRET.encode()),
)
# Forms a parser chokes on, past the CSRF check.
LOGIN_SEEDS = (
    Sent(
        "POST",
        "/api-auth/login/",
        (*_CSRF_PAIR, ("Content-Type", b"application/x-www-form-urlencoded")),
        b"&".join(b"f%d=1" % i for i in range(1100)),
    ),
    Sent(
        "POST",
        "/api-auth/login/",
        (*_CSRF_PAIR, ("Content-Type", b"multipart/form-data; boundary=b0und")),
        b'--b0und\r\nContent-Disposition: form-data; name="username"\r\n\r\nx',
    ),
    Sent("POST", "/api-auth/login/", (*_CSRF_PAIR, ("Content-Type", b"multipart/form-data")), b"x"),
)


# --- A logged-in staff session --------------------------------------------------------------


@st.composite
def staff_requests(draw: st.DrawFn) -> Sent:
    """Requests carrying the staff session (and mostly its CSRF token): DRF's session
    authentication runs Django's CSRF check on them, which parses the body."""
    path = draw(
        st.one_of(
            st.sampled_from([IDENTITY, IDENTITY, "/api/v1/health", "/api/v1/schema/"]),
            st.tuples(st.just(IDENTITY), queries).map("".join),
            # Not the login and logout views: the session must outlive every example.
            paths.filter(lambda p: "api-auth" not in p.lower()),
        )
    )
    cookie = f"sessionid={SESSION}; csrftoken={CSRF}"
    headers: list[tuple[str, bytes]] = [("Cookie", cookie.encode())]
    token = draw(st.sampled_from([CSRF, CSRF, CSRF, ""]) | junk_text)
    if token:
        headers.append(("X-CSRFToken", token.encode()))
    headers.append(("Content-Type", draw(st.just(b"application/json") | content_types)))
    if draw(st.booleans()):
        headers.append(("Accept", draw(accepts)))
    origin = draw(st.sampled_from([None, None, SELF, "http://evil.example"]))
    if origin is not None:
        headers.append(("Origin", origin.encode()))
    return Sent(
        method=draw(st.sampled_from(("POST", "PUT", "PATCH", "DELETE")) | st.sampled_from(METHODS)),
        target=_target_safe(path),
        headers=tuple(headers),
        body=draw(st.one_of(json_bodies, bodies)),
        chunked=draw(chunked),
    )


_STAFF = (("Cookie", f"sessionid={SESSION}; csrftoken={CSRF}".encode()),)
# Bodies a parser chokes on, where DRF parses them: the CSRF check of a session POST.
STAFF_SEEDS = tuple(
    Sent("POST", IDENTITY, (*_STAFF, ("Content-Type", content_type)), body)
    for content_type, body in (
        (b"application/json", b"{]"),
        (b"application/json", b'{"a": NaN}'),
        (b"application/json", b"\xff\xfe{"),
        (b"application/json; charset=utf-16", b"{}"),
        (b"application/json", b"[" * 5_000),
        (b"application/json", b'{"a":' * 5_000),
        (b"application/x-www-form-urlencoded", b"a=1"),
        (b"multipart/form-data; boundary=b0und", b"--b0und\r\n"),
    )
)
