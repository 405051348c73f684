"""AWS Signature Version 4 verification: what API Gateway's IAM authorizer does, for the
local stack and the tests, where no API Gateway stands in front of the app.

The canonical request follows the SigV4 specification for services other than S3 (the
path normalized, then URI-encoded again; query parameters decoded, re-encoded and sorted;
header values trimmed), which is what botocore's SigV4Auth, requests-aws4auth and awscurl
sign. Missing credentials raise Unauthorized (401), signing headers outside their grammar
InvalidHeader (400, ``skymarshal_api.web.headers``), and credentials that are present but do
not verify SignatureMismatch (403), with one message whatever the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote, unquote_plus

from skymarshal_api.web.errors import SignatureMismatch, Unauthorized
from skymarshal_api.web.headers import (
    SIGNING_HINT,
    amz_content_sha256_parse,
    amz_date_parse,
    amz_security_token_parse,
    authorization_parse,
)

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class LocalKey:
    access_key_id: str
    secret: str
    principal_arn: str
    session_token: str | None = None


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes


def local_keys_parse(config: Mapping[str, Any]) -> dict[str, LocalKey]:
    """SIGV4_LOCAL_KEYS (``{"AKID": {"secret", "principal", "session_token"?}}``) as keys."""
    keys = {}
    for access_key_id, entry in config.items():
        if not isinstance(entry, Mapping) or not {"secret", "principal"} <= set(entry):
            raise ValueError(
                f"SIGV4_LOCAL_KEYS[{access_key_id!r}] must be an object with secret and principal"
            )
        keys[access_key_id] = LocalKey(
            access_key_id=access_key_id,
            secret=str(entry["secret"]),
            principal_arn=str(entry["principal"]),
            session_token=entry.get("session_token"),
        )
    return keys


def sigv4_verify(
    request: SignedRequest,
    *,
    keys: Mapping[str, LocalKey],
    region: str,
    now: datetime,
    max_skew_seconds: int,
) -> LocalKey:
    """The key that signed ``request``. Raises Unauthorized when the Authorization header is
    missing, InvalidHeader (400) when a signing header is outside its grammar, and
    SignatureMismatch (403, one message whatever the reason; the reason is logged) when the
    signature cannot be accepted."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise Unauthorized(f"The Authorization header is missing. {SIGNING_HINT}")
    parsed = authorization_parse(authorization)
    signed_at = amz_date_parse(request.headers.get("x-amz-date", ""))
    amz_date = signed_at.strftime(_AMZ_DATE_FORMAT)
    token = request.headers.get("x-amz-security-token")
    if token is not None:
        amz_security_token_parse(token)
    declared_hash = request.headers.get("x-amz-content-sha256")
    if declared_hash is not None:
        amz_content_sha256_parse(declared_hash)
    signed_headers = parsed.signed_headers

    key = keys.get(parsed.access_key_id)
    if key is None:
        _reject("unknown access key id")
    if parsed.service != SERVICE:
        _reject(f"credential scope for service {parsed.service}, not {SERVICE}")
    if parsed.region != region:
        _reject(f"credential scope for region {parsed.region}, not {region}")
    skew = (now - signed_at).total_seconds()
    if abs(skew) > max_skew_seconds:
        _reject(f"X-Amz-Date {skew:+.0f} s from the server's time (at most {max_skew_seconds})")
    if parsed.date != amz_date[:8]:
        _reject("credential scope date is not the date of X-Amz-Date")
    for required in ("host", "x-amz-date"):
        if required not in signed_headers:
            _reject(f"{required} is not a signed header")
    missing = [name for name in signed_headers if name not in request.headers]
    if missing:
        _reject(f"signed headers missing from the request: {', '.join(missing)}")

    if key.session_token is not None and token is None:
        _reject("temporary credentials without X-Amz-Security-Token")
    if token is not None:
        if "x-amz-security-token" not in signed_headers:
            _reject("X-Amz-Security-Token is not a signed header")
        if key.session_token is None or not hmac.compare_digest(
            token.encode(), key.session_token.encode()
        ):
            _reject("X-Amz-Security-Token is not the key's session token")

    body_hash = hashlib.sha256(request.body).hexdigest()
    if declared_hash is not None and declared_hash != body_hash:
        _reject("X-Amz-Content-SHA256 is not the SHA-256 of the body")

    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    signing_key = _signing_key(key.secret, parsed.date, parsed.region, parsed.service)
    headers_block = "".join(
        f"{name}:{_trim(request.headers[name])}\n" for name in sorted(signed_headers)
    )
    for query in canonical_queries(request.raw_query):
        canonical = "\n".join(
            [
                request.method.upper(),
                canonical_path(request.raw_path),
                query,
                headers_block,
                ";".join(sorted(signed_headers)),
                body_hash,
            ]
        )
        string_to_sign = "\n".join(
            [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, parsed.signature):
            return key
    _reject("the signature is not the one calculated from the request")


def _reject(reason: str) -> NoReturn:
    """Every signature failure answers the same (so a caller learns nothing, e.g. which
    access key ids exist); the reason is for the server's log only."""
    logger.warning("signature rejected: %s", reason, extra={"reason": reason})
    raise SignatureMismatch()


def canonical_path(raw_path: str) -> str:
    """The raw (still percent-encoded) path, normalized, then URI-encoded once more."""
    path = raw_path or "/"
    normalized = posixpath.normpath(path)
    normalized = re.sub("/+", "/", normalized)
    if path.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    return quote(normalized, safe="/~")


def canonical_queries(raw_query: str) -> list[str]:
    """The canonical query strings a client may have signed, at most two:

    - the query as the app reads it (``+`` is a space, as in HTML forms and Django's
      QueryDict), each name and value re-encoded strictly: what requests-aws4auth signs;
    - the query exactly as sent, its parameters sorted: what botocore signs.

    Both describe what the app will act on, so accepting either lets no one change a
    parameter's meaning after signing."""
    parts = [part.partition("=") for part in raw_query.split("&") if part]
    decoded = sorted(
        (_encode(unquote_plus(name)), _encode(unquote_plus(value))) for name, _, value in parts
    )
    as_sent = sorted((name, value) for name, _, value in parts)
    candidates = ["&".join(f"{n}={v}" for n, v in decoded)]
    exact = "&".join(f"{n}={v}" for n, v in as_sent)
    if exact != candidates[0]:
        candidates.append(exact)
    return candidates


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _trim(value: str) -> str:
    return " ".join(value.split())


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")
