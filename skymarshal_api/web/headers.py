"""The request headers the API reads, each with one strict parser.

A header's value reaches the app as the WSGI server decoded it (each byte a latin-1
character), so every grammar below is written over ASCII only: ``[0-9]``, never ``\\d``,
which also matches digits of other scripts that ``int()`` may refuse. A value outside its
grammar is a 400 INVALID_REQUEST naming the header (``details.header``), before any view
runs (``HeaderGrammarMiddleware``); the code that uses a value calls the same parser, so
what is checked and what is used cannot differ. ``openapi.yaml`` states the same grammars
(the ``*_PATTERN`` constants) for generated clients.

Request bodies are JSON in UTF-8: a ``Content-Type`` that declares another charset is 415
UNSUPPORTED_MEDIA_TYPE, naming what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from skymarshal_api.web.errors import InvalidRequest, UnsupportedMediaType

# RFC 9110 5.6.2 token, 5.6.4 quoted-string (obs-text excluded: ASCII only), 5.6.3 OWS.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 - a grammar, not a secret
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_OWS = r"[ \t]*"
_PARAMETER = rf"{_OWS};{_OWS}(?:{_TOKEN}={_OWS}(?:{_TOKEN}|{_QUOTED}))?"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})((?:{_PARAMETER})*){_OWS}")
_ONE_PARAMETER = re.compile(rf"{_OWS};{_OWS}(?:({_TOKEN})={_OWS}({_TOKEN}|{_QUOTED}))?")
_MAX_LIST_HEADER = 4096

LAST_EVENT_ID_PATTERN = "^[0-9]{1,18}$"
IDEMPOTENCY_KEY_PATTERN = "^[\\x21-\\x7e]{1,255}$"
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:+/=@-]{1,200}$"
AMZ_DATE_PATTERN = "^[0-9]{8}T[0-9]{6}Z$"
AMZ_CONTENT_SHA256_PATTERN = "^(?:[0-9a-f]{64}|UNSIGNED-PAYLOAD)$"
AMZ_SECURITY_TOKEN_PATTERN = "^[A-Za-z0-9+/=_-]{1,8192}$"  # noqa: S105 - a grammar
# Any other X-Amz-* header: printable ASCII, at most 4 KiB.
AMZ_OTHER_PATTERN = "^[\\x20-\\x7e]{0,4096}$"
AUTHORIZATION_PATTERN = (
    "^AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]{1,128}/[0-9]{8}/[a-z0-9-]{1,32}/"
    "[a-z0-9-]{1,64}/aws4_request, ?SignedHeaders=[a-z0-9-]+(?:;[a-z0-9-]+)*, ?"
    "Signature=[0-9a-f]{64}$"
)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256[ ]+"
    r"Credential=(?P<access_key_id>[A-Za-z0-9]{1,128})/(?P<date>[0-9]{8})/"
    r"(?P<region>[a-z0-9-]{1,32})/(?P<service>[a-z0-9-]{1,64})/aws4_request"
    r"[ ]*,[ ]*SignedHeaders=(?P<signed_headers>[a-z0-9-]+(?:;[a-z0-9-]+)*)"
    r"[ ]*,[ ]*Signature=(?P<signature>[0-9a-f]{64})"
)

ACCEPTED_CHARSET = "utf-8"
SIGNING_HINT = (
    "Sign the request with AWS Signature Version 4 for service execute-api "
    "(awscurl --service execute-api, requests-aws4auth or botocore's SigV4Auth)."
)


class InvalidHeader(InvalidRequest):
    """A header's value is outside its grammar: 400 naming the header."""

    def __init__(self, header: str, expected: str) -> None:
        super().__init__(f"{header} {expected}", details={"header": header})


def _check(header: str, value: str, pattern: str, expected: str) -> str:
    if not re.fullmatch(pattern[1:-1], value):
        raise InvalidHeader(header, expected)
    return value


# --- one parser per header ----------------------------------------------------------------


def last_event_id_parse(value: str) -> int:
    """``Last-Event-ID``: the id of an event the stream sent, 1 to 18 ASCII digits."""
    _check(
        "Last-Event-ID",
        value,
        LAST_EVENT_ID_PATTERN,
        "must be the id of an event this stream sent: 1 to 18 ASCII digits.",
    )
    return int(value)


def idempotency_key_parse(value: str) -> str:
    return _check(
        "Idempotency-Key",
        value,
        IDEMPOTENCY_KEY_PATTERN,
        "must be 1 to 255 printable ASCII characters without spaces (a UUID is a good key).",
    )


def request_id_header_parse(value: str) -> str:
    """``X-Request-ID`` from the client. The API never takes its request id from the client
    (each request gets a fresh one); a value outside this grammar is still refused."""
    return _check(
        "X-Request-ID",
        value,
        REQUEST_ID_PATTERN,
        "must be 1 to 200 characters of A-Z a-z 0-9 . _ : + / = @ - (the API sets its own).",
    )


@dataclass(frozen=True)
class MediaType:
    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...]

    def parameter(self, name: str) -> str | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None


def _media_type(text: str) -> MediaType | None:
    match = _MEDIA_TYPE.fullmatch(text)
    if match is None:
        return None
    parameters = []
    for found in _ONE_PARAMETER.finditer(match[3]):
        if found[1] is None:
            continue
        raw = found[2]
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        parameters.append((found[1].lower(), raw))
    return MediaType(match[1].lower(), match[2].lower(), tuple(parameters))


def accept_parse(value: str) -> list[MediaType]:
    """``Accept`` (RFC 9110 12.5.1): a comma-separated list of media ranges with
    parameters, empty elements allowed; at most 4 KiB."""
    if len(value) > _MAX_LIST_HEADER:
        raise InvalidHeader("Accept", f"may be at most {_MAX_LIST_HEADER} characters.")
    ranges = []
    for element in value.split(","):
        element = element.strip(" \t")
        if not element:
            continue
        media = _media_type(element)
        if media is None:
            raise InvalidHeader(
                "Accept",
                "must be a list of media ranges (RFC 9110), e.g. application/json or "
                "text/event-stream.",
            )
        ranges.append(media)
    return ranges


def content_type_parse(value: str) -> MediaType | None:
    """``Content-Type``: one media type (RFC 9110 8.3); an empty value is none. A charset
    other than UTF-8 is 415: request bodies are JSON in UTF-8 (RFC 8259 8.1)."""
    if not value.strip(" \t"):
        return None
    media = _media_type(value.strip(" \t")) if len(value) <= _MAX_LIST_HEADER else None
    if media is None:
        raise InvalidHeader(
            "Content-Type", "must be one media type (RFC 9110), e.g. application/json."
        )
    charset = media.parameter("charset")
    if charset is not None and charset.lower() != ACCEPTED_CHARSET:
        raise UnsupportedMediaType(
            f"Request bodies are JSON in UTF-8: send Content-Type: application/json (or "
            f"application/json; charset=utf-8), not charset={charset[:40]}.",
            details={"header": "Content-Type", "accepted": ["application/json; charset=utf-8"]},
        )
    return media


def amz_date_parse(value: str) -> datetime:
    """``X-Amz-Date``: the signing time, ``YYYYMMDDTHHMMSSZ`` (UTC)."""
    expected = "must be the signing time as YYYYMMDDTHHMMSSZ (UTC)."
    _check("X-Amz-Date", value, AMZ_DATE_PATTERN, expected)
    try:
        # The pattern holds: digits where these are (strptime, slower, imports _strptime
        # and compiles its expressions on a first request).
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise InvalidHeader("X-Amz-Date", expected) from None


def amz_content_sha256_parse(value: str) -> str:
    return _check(
        "X-Amz-Content-SHA256",
        value,
        AMZ_CONTENT_SHA256_PATTERN,
        "must be the SHA-256 of the body as 64 lower-case hex digits.",
    )


def amz_security_token_parse(value: str) -> str:
    return _check(
        "X-Amz-Security-Token",
        value,
        AMZ_SECURITY_TOKEN_PATTERN,
        "must be the session token of temporary credentials (base64, at most 8192 characters).",
    )


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def authorization_parse(value: str) -> Authorization:
    """``Authorization``: an AWS Signature Version 4 of the shape
    ``AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
    SignedHeaders=a;b, Signature=<64 hex>``."""
    match = _AUTHORIZATION.fullmatch(value.strip(" \t"))
    if match is None:
        raise InvalidHeader(
            "Authorization",
            "must be AWS4-HMAC-SHA256 Credential=ACCESS_KEY_ID/YYYYMMDD/REGION/execute-api/"
            f"aws4_request, SignedHeaders=..., Signature=<64 hex digits>. {SIGNING_HINT}",
        )
    return Authorization(
        access_key_id=match["access_key_id"],
        date=match["date"],
        region=match["region"],
        service=match["service"],
        signed_headers=tuple(match["signed_headers"].split(";")),
        signature=match["signature"],
    )


def _amz_other(name: str) -> Callable[[str], object]:
    def parse(value: str) -> str:
        return _check(name, value, AMZ_OTHER_PATTERN, "must be printable ASCII, at most 4096.")

    return parse


# --- every header of a request ------------------------------------------------------------

# WSGI environ key → (the header's name, its parser).
_PARSERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "HTTP_LAST_EVENT_ID": ("Last-Event-ID", last_event_id_parse),
    "HTTP_IDEMPOTENCY_KEY": ("Idempotency-Key", idempotency_key_parse),
    "HTTP_X_REQUEST_ID": ("X-Request-ID", request_id_header_parse),
    "HTTP_ACCEPT": ("Accept", accept_parse),
    "CONTENT_TYPE": ("Content-Type", content_type_parse),
    "HTTP_X_AMZ_DATE": ("X-Amz-Date", amz_date_parse),
    "HTTP_X_AMZ_CONTENT_SHA256": ("X-Amz-Content-SHA256", amz_content_sha256_parse),
    "HTTP_X_AMZ_SECURITY_TOKEN": ("X-Amz-Security-Token", amz_security_token_parse),
}


def request_headers_check(meta: Mapping[str, Any], *, authorization: bool) -> None:
    """Raises InvalidHeader (or UnsupportedMediaType) for the first header of ``meta``
    (a WSGI environ) outside its grammar. ``authorization``: whether the app itself reads
    the Authorization header (AUTH_MODE=sigv4)."""
    for key, (_, parse) in _PARSERS.items():
        value = meta.get(key)
        if isinstance(value, str):
            parse(value)
    for key, value in meta.items():
        if key.startswith("HTTP_X_AMZ_") and key not in _PARSERS and isinstance(value, str):
            name = "X-Amz-" + key[len("HTTP_X_AMZ_") :].replace("_", "-").title()
            _amz_other(name)(value)
    if authorization:
        value = meta.get("HTTP_AUTHORIZATION")
        if isinstance(value, str):
            authorization_parse(value)
