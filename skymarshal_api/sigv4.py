"""AWS Signature Version 4 verification: what API Gateway's IAM authorizer does, for the
local stack and the tests, where no API Gateway stands in front of the app.

The canonical request follows the SigV4 specification for services other than S3 (the
path normalized, then URI-encoded again; query parameters decoded, re-encoded and sorted;
header values trimmed), which is what botocore's SigV4Auth, requests-aws4auth and awscurl
sign. Missing or malformed credentials raise Unauthorized (401); credentials that are
present but wrong raise Forbidden (403).
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus

from skymarshal_api.errors import Forbidden, Unauthorized

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed_headers>[a-z0-9\-;]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SIGNING_HINT = (
    "Sign the request with AWS Signature Version 4 for service execute-api "
    "(awscurl --service execute-api, requests-aws4auth or botocore's SigV4Auth)."
)


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
    missing or malformed and Forbidden when the signature cannot be accepted."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Unauthorized(f"The Authorization header is missing. {_SIGNING_HINT}")
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise Unauthorized(f"The Authorization header is malformed. {_SIGNING_HINT}")
    credential = match["credential"].split("/")
    if len(credential) != 5:
        raise Unauthorized(
            "The Credential of the Authorization header must be "
            "ACCESS_KEY_ID/YYYYMMDD/REGION/execute-api/aws4_request."
        )
    access_key_id, scope_date, scope_region, scope_service, terminator = credential
    signed_headers = match["signed_headers"].split(";")

    key = keys.get(access_key_id)
    if key is None:
        raise Forbidden("The access key id is not known.")
    if scope_service != SERVICE or terminator != "aws4_request":
        raise Forbidden(f"The credential scope must be for service {SERVICE}/aws4_request.")
    if scope_region != region:
        raise Forbidden(f"The credential scope region must be {region}; got {scope_region}.")

    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise Forbidden("The X-Amz-Date header must be present, as YYYYMMDDTHHMMSSZ.") from None
    if abs((now - signed_at).total_seconds()) > max_skew_seconds:
        raise Forbidden(
            f"The signature is not within {max_skew_seconds // 60} minutes of the server's "
            f"time ({now.strftime(_AMZ_DATE_FORMAT)}); X-Amz-Date was {amz_date}."
        )
    if scope_date != amz_date[:8]:
        raise Forbidden("The credential scope date does not match X-Amz-Date.")

    for required in ("host", "x-amz-date"):
        if required not in signed_headers:
            raise Forbidden(f"SignedHeaders must include {required}.")
    missing = [name for name in signed_headers if name not in request.headers]
    if missing:
        raise Forbidden(f"Signed headers are missing from the request: {', '.join(missing)}.")

    token = request.headers.get("x-amz-security-token")
    if key.session_token is not None and token is None:
        raise Forbidden("These credentials are temporary: X-Amz-Security-Token is required.")
    if token is not None:
        if "x-amz-security-token" not in signed_headers:
            raise Forbidden("X-Amz-Security-Token must be among the signed headers.")
        if key.session_token is None or not hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), key.session_token.encode()
        ):
            raise Forbidden("The security token included in the request is invalid.")

    body_hash = hashlib.sha256(request.body).hexdigest()
    declared_hash = request.headers.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != body_hash:
        raise Forbidden("X-Amz-Content-SHA256 does not match the SHA-256 of the request body.")

    scope = f"{scope_date}/{scope_region}/{scope_service}/{terminator}"
    signing_key = _signing_key(key.secret, scope_date, scope_region, scope_service)
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
        if hmac.compare_digest(expected, match["signature"]):
            return key
    raise Forbidden(
        "The request signature does not match the signature calculated from the request "
        "(check the secret key, the region and that the request was not changed in transit)."
    )


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
