"""Fuzzing every header the API reads, and request bodies, against the running API, signed.

One API server (gunicorn, DynamoDB Local, the local runtime) serves the module. Requests
are signed by botocore's SigV4Auth (the dev key), then the fuzzed header is put in (or the
body, signed with it), and written to the socket byte for byte, so header values may hold
anything: latin-1 and UTF-8 text, control characters, digits of other scripts, huge
values. Whatever is sent: never a 5xx, and every response the app writes is in the one
error shape when it is an error (its request_id the X-Request-ID). A value the HTTP layer
itself refuses (gunicorn, as API Gateway would: a field value with a control character
RFC 9110 forbids) is answered before the app runs; those answers are counted apart and
must be 400.

The test prints the number of cases, the statuses, and the server's RSS before and after
(it must not grow by more than MAX_RSS_GROWTH_MIB). Examples are derandomized.
"""

from __future__ import annotations

import encodings
import encodings.aliases
import json
import pkgutil
import re
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scripts.stack import HOST, Server
from tests.conftest import ApiFactory
from tests.log_audit import SENT
from tests.signing import botocore_headers

ERROR_KEYS = {"status", "request_id", "error_code", "error_message", "details", "timestamp"}
MAX_RSS_GROWTH_MIB = 96
TRACEPARENT_SENT = re.compile("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]")
EVENTS = "/api/v1/invocations/3f6b2d1c-9e4a-4b7d-8c5e-2a1f0e9d8c7b/events?follow=false"
IDENTITY = "/api/v1/identity"
INVOKE = "/api/v1/invoke"
# Bytes RFC 9110 (5.5) forbids in a field value: what the HTTP layer may refuse by itself.
FORBIDDEN_IN_FIELDS = set(range(0x00, 0x09)) | set(range(0x0A, 0x20)) | {0x7F}

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}


@dataclass
class Tally:
    """What the fuzzing saw: statuses of the app's answers and of the HTTP layer's."""

    app: Counter[int]
    http_layer: Counter[int]

    @property
    def cases(self) -> int:
        return sum(self.app.values()) + sum(self.http_layer.values())


TALLY = Tally(Counter(), Counter())


# --- sending bytes as they are ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _send_raw(
    server: Server, method: str, target: str, headers: list[tuple[str, bytes]], body: bytes
) -> Answer:
    """``headers`` and ``body`` written as they are (Connection: close), the answer read to
    the end."""
    head = [f"{method} {target} HTTP/1.1".encode(), f"Host: {HOST}:{server.port}".encode()]
    head += [name.encode() + b": " + value for name, value in headers]
    head += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    request = b"\r\n".join(head) + b"\r\n\r\n" + body
    SENT.request_record(dict(headers), body)  # for the suite's log audit
    with socket.create_connection((HOST, server.port), timeout=60) as connection:
        connection.sendall(request)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    head_bytes, _, answer_body = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        answer_body = _dechunked(answer_body)
    return Answer(int(status_line.split(" ")[1]), parsed, answer_body)


def _dechunked(data: bytes) -> bytes:
    body = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body += data[:size]
        data = data[size + 2 :]
    return bytes(body)


def _signed(
    server: Server, method: str, target: str, body: bytes = b"", **extra: str
) -> list[tuple[str, bytes]]:
    signed = botocore_headers(method, f"{server.http_url}{target}", body=body, headers=extra)
    return [(name, value.encode()) for name, value in signed.items() if name.lower() != "host"]


def _exchange(
    server: Server, method: str, target: str, headers: list[tuple[str, bytes]], body: bytes = b""
) -> Answer:
    answer = _send_raw(server, method, target, headers, body)
    sent = "\n".join(f"  {n}: {v[:300]!r}" for n, v in headers) + f"\n  body: {body[:300]!r}"

    def why(reason: str) -> str:
        return (
            f"{reason}: {answer.status}\n--- sent {method} {target}\n{sent}\n--- answer\n"
            f"{answer.headers}\n{answer.body[:800]!r}\n--- server log\n{server.log_tail(30)}"
        )

    assert answer.status < 500, why("a 5xx")
    if "x-request-id" not in answer.headers:
        # The HTTP layer answered: only for bytes no field value may hold.
        forbidden = any(FORBIDDEN_IN_FIELDS & set(value) for _, value in headers)
        assert forbidden, why("answered outside the app")
        assert answer.status == 400, why("the HTTP layer refused with another status")
        TALLY.http_layer[answer.status] += 1
        return answer
    TALLY.app[answer.status] += 1
    if answer.status >= 400:
        assert answer.headers.get("content-type", "").startswith("application/json"), why(
            "an error that is not JSON"
        )
        document = json.loads(answer.body)
        assert set(document) == ERROR_KEYS, why("an error outside the error shape")
        assert document["status"] == "error", why("status is not error")
        assert document["request_id"] == answer.headers["x-request-id"], why("request_id")
        assert isinstance(document["error_message"], str), why("error_message")
    return answer


# --- header values -------------------------------------------------------------------------

OTHER_DIGITS = "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९๐๑๒๓๔๕๖๗๘๙０１２３４５６７８９²³¹⁰"
CONTROLS = "".join(chr(c) for c in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))


def _no_framing(value: bytes) -> bytes:
    """Without CR, LF and NUL (they would end or break the request line itself) and without
    whitespace at either end (not part of a field value)."""
    return bytes(b for b in value if b not in (0x00, 0x0A, 0x0D)).strip(b" \t")


header_values = st.one_of(
    st.text(st.characters(max_codepoint=0xFF), max_size=40).map(lambda t: t.encode("latin-1")),
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(alphabet=CONTROLS + "0123456789abc", min_size=1, max_size=10).map(str.encode),
    st.text(alphabet=OTHER_DIGITS + "0123456789", min_size=1, max_size=20).map(str.encode),
    st.integers(min_value=0, max_value=10**40).map(lambda n: str(n).encode()),
    st.sampled_from([100, 4_000, 7_000]).map(lambda n: b"9" * n),
    st.binary(max_size=40),
).map(_no_framing)

# Never refused: an invalid trace header is ignored (W3C Trace Context: a new trace starts).
TRACE_HEADERS = ("traceparent", "tracestate", "baggage", "X-Amzn-Trace-Id")
READ_HEADERS = (
    "Last-Event-ID",
    "Idempotency-Key",
    "Accept",
    "Content-Type",
    "X-Request-ID",
    "X-Amz-Date",
    "X-Amz-Content-SHA256",
    "X-Amz-Security-Token",
    "X-Amz-Target",
    "Authorization",
    *TRACE_HEADERS,
)
# Seeds: inputs known to have found a 500 (Last-Event-ID: 0xB2) or to be hard to handle.
HEADER_SEEDS = (
    ("Last-Event-ID", b"\xb2"),
    ("Last-Event-ID", "²".encode()),
    ("Last-Event-ID", "\u0661".encode()),  # ARABIC-INDIC DIGIT ONE
    ("Last-Event-ID", b"9" * 4_000),
    ("Accept", b"text/event-stream; q=\xff"),
    ("Content-Type", b"application/json; charset=\xb2"),
    ("X-Amz-Date", "\uff12\uff10\uff12\uff16".encode()),  # 2026, fullwidth
    ("Authorization", b"AWS4-HMAC-SHA256 Credential=\xc3\xa9"),
    ("Idempotency-Key", b"\x01"),
    ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("traceparent", b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
    ("traceparent", ("00-" + "\u0663" * 32 + "-00f067aa0ba902b7-01").encode()),
    ("traceparent", b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-\xff"),
    ("tracestate", b"congo=" + b"x" * 7_000),
    ("baggage", b"k=v," * 2_000),
    ("X-Amzn-Trace-Id", b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=\xb2"),
)


def _with_header(server: Server, target: str, name: str, value: bytes) -> list[tuple[str, bytes]]:
    """A signed GET of ``target`` with ``name: value`` put in after signing (replacing the
    signed one of that name)."""
    headers = [(n, v) for n, v in _signed(server, "GET", target) if n.lower() != name.lower()]
    return [*headers, (name, value)]


@pytest.fixture(scope="module")
def api(module_api_server_factory: ApiFactory, module_sessions_table: str) -> Server:
    # Limits high enough that every case reaches the parsing it is meant for.
    return module_api_server_factory(
        SESSION_TABLE_NAME=module_sessions_table,
        RATE_LIMIT_INVOKE_PER_WINDOW="100000",
        RATE_LIMIT_DEFAULT_PER_WINDOW="100000",
    )


def _rss_mib(server: Server) -> float:
    """The resident memory of the server's processes (gunicorn's master and workers)."""
    parent = psutil.Process(server.process.pid)
    processes = [parent, *parent.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / (1024 * 1024)


@pytest.fixture(scope="module")
def rss(api: Server, capsys_module: Any) -> Iterator[None]:
    before = _rss_mib(api)
    yield
    after = _rss_mib(api)
    with capsys_module():
        print(
            f"\nheader and body fuzz: {TALLY.cases} cases; answered by the app "
            f"{dict(sorted(TALLY.app.items()))}, by the HTTP layer "
            f"{dict(sorted(TALLY.http_layer.items()))}; server RSS before {before:.1f} MiB, "
            f"after {after:.1f} MiB"
        )
    assert after - before < MAX_RSS_GROWTH_MIB, (before, after)


@pytest.fixture(scope="module")
def capsys_module(pytestconfig: pytest.Config) -> Any:
    """Writes past pytest's output capture (the counts belong in the test output)."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled


# --- the tests ------------------------------------------------------------------------------


def test_fuzzed_headers_never_5xx(api: Server, rss: None) -> None:
    @settings(max_examples=250, **SETTINGS)
    @given(
        st.sampled_from(READ_HEADERS),
        header_values,
        st.sampled_from([EVENTS, IDENTITY, "/api/v1/health"]),
    )
    def check(name: str, value: bytes, target: str) -> None:
        answer = _exchange(api, "GET", target, _with_header(api, target, name, value))
        if name == "Last-Event-ID" and target == EVENTS and "x-request-id" in answer.headers:
            valid = value.isascii() and value.isdigit() and 1 <= len(value) <= 18
            assert answer.status != 400 or not valid, answer.body
        if name in TRACE_HEADERS and "x-request-id" in answer.headers:
            assert answer.status != 400, answer.body
            assert TRACEPARENT_SENT.fullmatch(answer.headers["traceparent"]), answer.headers

    for name, value in HEADER_SEEDS:
        check = example(name, value, EVENTS)(check)
    check()


def test_last_event_id_superscript_two_is_400(api: Server, rss: None) -> None:
    answer = _exchange(api, "GET", EVENTS, _with_header(api, EVENTS, "Last-Event-ID", b"\xb2"))
    assert answer.status == 400
    assert json.loads(answer.body)["details"] == {"header": "Last-Event-ID"}


# Every codec module of Python's encodings package, and every alias of UTF-8 there.
CODECS = sorted(m.name for m in pkgutil.iter_modules(encodings.__path__) if m.name != "aliases")
UTF8_ALIASES = sorted(
    alias for alias, codec in encodings.aliases.aliases.items() if codec == "utf_8"
)
PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"


def test_every_codec_as_charset_is_415_but_utf_8(api: Server, rss: None) -> None:
    """Bodies are JSON in UTF-8 (RFC 8259 8.1): a charset parameter other than "utf-8"
    (any case) is 415, whatever Python could decode with it; "utf-8" itself reaches the
    body's validation (a prompt too short: 400)."""
    body = json.dumps({"prompt": "short"}).encode()
    for charset in [*CODECS, *UTF8_ALIASES, "utf-8", "UTF-8", '"utf-8"']:
        content_type = f"application/json; charset={charset}"
        headers = _signed(api, "POST", INVOKE, body, **{"Content-Type": content_type})
        answer = _exchange(api, "POST", INVOKE, headers, body)
        expected = 400 if charset.strip('"').lower() == "utf-8" else 415
        assert answer.status == expected, (charset, answer.status, answer.body)
        if expected == 415:
            assert json.loads(answer.body)["details"]["accepted"] == [
                "application/json; charset=utf-8"
            ]


MALFORMED = (
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong "/", three bytes
    b"\xed\xa0\x80",  # a surrogate, UTF-8-encoded
    b"\xf4\x90\x80\x80",  # above U+10FFFF
)
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


def _prompt_body(prompt: bytes) -> bytes:
    return b'{"prompt": "' + prompt + b'"}'


json_documents = st.one_of(
    st.sampled_from(MALFORMED).map(lambda bad: _prompt_body(PROMPT.encode() + bad)),
    st.sampled_from(BOMS).map(lambda bom: bom + _prompt_body(PROMPT.encode())),
    st.sampled_from(["\\ud800", "\\udfff", "\\ud800\\udc00", "\\u0000", "\\u202e"]).map(
        lambda escape: _prompt_body(PROMPT.encode() + escape.encode())
    ),
    st.integers(0, 60).map(lambda n: _prompt_body(PROMPT.encode() + b"\x00" * n)),
    st.sampled_from([100, 1_000, 20_000, 60_000]).flatmap(
        lambda depth: st.sampled_from([b"[" * depth, b'{"a":' * depth, b"[" * depth + b"]" * depth])
    ),
    st.sampled_from([1_000, 5_000]).map(
        lambda n: json.dumps({f"k{i}": i for i in range(n)} | {"prompt": PROMPT}).encode()
    ),
    st.sampled_from([1_000, 10_000]).map(lambda n: json.dumps(list(range(n))).encode()),
    st.sampled_from([PROMPT, "x", "<script>"]).map(
        lambda second: (
            b'{"prompt": "' + PROMPT.encode() + b'", "prompt": "' + second.encode() + b'"}'
        )
    ),
    st.sampled_from(
        [b"1e999999", b"-1e999999", b"9" * 5_000, b"0." + b"1" * 5_000, b"1" * 60_000]
    ).map(lambda number: b'{"prompt": ' + number + b"}"),
    st.binary(max_size=200),
)


def test_fuzzed_bodies_never_5xx(api: Server, rss: None) -> None:
    @settings(max_examples=120, **SETTINGS)
    @given(json_documents, st.sampled_from(["application/json", "application/json; charset=utf-8"]))
    def check(body: bytes, content_type: str) -> None:
        headers = _signed(api, "POST", INVOKE, body, **{"Content-Type": content_type})
        _exchange(api, "POST", INVOKE, headers, body)

    check()
