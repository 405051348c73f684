"""The suite-wide check that no prompt and no credential reaches a log line.

While the suite runs, every request a test sends through httpx, requests or Django's test
client is recorded (``SentRecorder``): the prompt of a JSON body, the Authorization value,
its Signature, and the session token. The signing helpers record the secret keys they sign
with. When the suite ends, every server log under ``log_dir`` and the suite's own log
records (written there too, as JSON lines) are searched for any of them, raw or as JSON
escapes it, and for the plain SHA-256 of any prompt (which would let a reader of the logs
confirm a guess), and the suite fails on the first leak (``log_leaks_find``).

Values too short or too plain to tell apart from ordinary log text are not searched
(under 10 characters, or fewer than 4 distinct ones): a prompt of "aaaaaaaaaa" is not
told apart from hex. Neither is a prompt that is one of the application's own words (a
string in its source, such as a metric name): Hypothesis, under Schemathesis, draws
strings from the code it tests, and the app writes those words itself.
awscurl runs as a program: the Authorization it sends is not seen.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from invocations.serializers import prompt_sanitize

MIN_LENGTH = 10
_ANCHOR = MIN_LENGTH
_SIGNATURE = re.compile(r"Signature=([0-9a-fA-F]{16,})")


@dataclass
class Sent:
    """What the suite sent that no log line may hold."""

    prompts: set[str] = field(default_factory=set)
    credentials: set[str] = field(default_factory=set)
    # DJANGO_SECRET_KEYs given to servers other than the suite's own (they key prompt_hmac).
    secret_keys: set[str] = field(default_factory=set)

    def secret_key_record(self, key: str) -> str:
        self.secret_keys.add(key)
        return key

    def prompt_record(self, prompt: str) -> None:
        for variant in (prompt, prompt_sanitize(prompt)):
            if _searchable(variant) and not _application_word(variant):
                self.prompts.add(variant)

    def unkeyed_digests(self) -> set[str]:
        """The plain SHA-256 (hex) of each prompt: a log line holding one lets its reader
        confirm a guessed prompt, so it is a leak too (the logs key theirs: prompt_hmac)."""
        return {
            hashlib.sha256(p.encode("utf-8", "surrogatepass")).hexdigest() for p in self.prompts
        }

    def credential_record(self, value: str) -> None:
        if _searchable(value):
            self.credentials.add(value)
        for signature in _SIGNATURE.findall(value):
            if _searchable(signature):  # not a placeholder such as 64 zeros
                self.credentials.add(signature)

    def request_record(self, headers: Mapping[str, Any], body: bytes | str | None) -> None:
        """One request as sent: its Authorization, session token and prompt."""
        for name, value in headers.items():
            if str(name).lower() in ("authorization", "x-amz-security-token"):
                self.credential_record(_text(value))
        if body:
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                return
            if isinstance(document, dict) and isinstance(document.get("prompt"), str):
                self.prompt_record(document["prompt"])


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


_PACKAGES = ("skymarshal_api", "health", "sessions", "invocations")
_WORD = re.compile(r"[A-Za-z0-9_.:/-]+")


@cache
def _application_words() -> frozenset[str]:
    root = Path(__file__).resolve().parent.parent
    words: set[str] = set()
    for package in _PACKAGES:
        for source in (root / package).rglob("*.py"):
            words.update(_WORD.findall(source.read_text(encoding="utf-8")))
    return frozenset(words)


def _application_word(value: str) -> bool:
    return value in _application_words()


def _searchable(value: str) -> bool:
    return len(value) >= MIN_LENGTH and len(set(value)) >= 4


SENT = Sent()


@dataclass(frozen=True)
class Leak:
    source: str
    line_number: int
    kind: str  # prompt | credential | unkeyed prompt digest
    value: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line_number}: a {self.kind} ({self.value[:40]!r}…)"


def _variants(value: str) -> set[str]:
    """The value as it appears in a log line: as is, or escaped inside a JSON string."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def log_leaks_find(lines: Iterable[tuple[str, int, str]], sent: Sent) -> list[Leak]:
    """Every (source, line number, text) that holds a sent prompt or credential.

    Each searched value is indexed by its first characters, so a line is scanned once
    whatever the number of values."""
    index: dict[str, list[tuple[str, str, str]]] = {}
    for kind, values in (
        ("prompt", sent.prompts),
        ("credential", sent.credentials),
        ("unkeyed prompt digest", sent.unkeyed_digests()),
    ):
        for value in values:
            for variant in _variants(value):
                index.setdefault(variant[:_ANCHOR], []).append((variant, kind, value))
    leaks: list[Leak] = []
    if not index:
        return leaks
    for source, number, text in lines:
        for start in range(len(text) - _ANCHOR + 1):
            candidates = index.get(text[start : start + _ANCHOR])
            if candidates is None:
                continue
            for variant, kind, value in candidates:
                if text.startswith(variant, start):
                    leaks.append(Leak(source, number, kind, value))
    return leaks


def log_files_lines(directory: Path) -> Iterator[tuple[str, int, str]]:
    for path in sorted(directory.rglob("*.log")):
        with path.open(errors="replace") as lines:
            for number, text in enumerate(lines, start=1):
                yield path.name, number, text


def prompt_hmac_fields(lines: Iterable[tuple[str, int, str]]) -> set[str]:
    """Every prompt_hmac the lines hold (a sign that prompts were there to be found)."""
    found: set[str] = set()
    for _, _, text in lines:
        found.update(re.findall(r'"prompt_hmac":"([0-9a-f]{64})"', text))
    return found


def recorders_install(monkeypatch: Any) -> None:
    """Record every request sent through httpx, requests, Django's test client and the
    Lambda handler's events (scripts/lambda_invoke.py)."""
    import httpx
    import requests
    from django.test.client import RequestFactory

    from scripts.lambda_invoke import LambdaProcess

    httpx_send = httpx.Client.send

    def send_httpx(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None
        SENT.request_record(request.headers, body)
        return httpx_send(self, request, **kwargs)

    requests_send = requests.Session.send

    def send_requests(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        SENT.request_record(request.headers, request.body)
        return requests_send(self, request, **kwargs)

    generic = RequestFactory.generic

    def generic_recorded(
        self: RequestFactory, method: str, path: str, data: Any = "", *args: Any, **extra: Any
    ) -> Any:
        headers = {**(extra.get("headers") or {})}
        if "HTTP_AUTHORIZATION" in extra:
            headers["Authorization"] = extra["HTTP_AUTHORIZATION"]
        SENT.request_record(headers, data if isinstance(data, bytes | str) else None)
        return generic(self, method, path, data, *args, **extra)

    lambda_invoke = LambdaProcess.invoke

    def invoke_recorded(self: LambdaProcess, event: dict[str, Any], **kwargs: Any) -> Any:
        body = event.get("body")
        if isinstance(body, str) and event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        SENT.request_record(event.get("headers") or {}, body if isinstance(body, str) else None)
        return lambda_invoke(self, event, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send_httpx)
    monkeypatch.setattr(LambdaProcess, "invoke", invoke_recorded)
    monkeypatch.setattr(requests.Session, "send", send_requests)
    monkeypatch.setattr(RequestFactory, "generic", generic_recorded)
