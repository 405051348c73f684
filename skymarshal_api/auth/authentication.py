"""Who is calling: DRF authentication classes, one per AUTH_MODE.

- ``iam`` (production): API Gateway's IAM authorizer verified the caller's signature; the
  caller is ``requestContext.identity.userArn`` of the Lambda event that Zappa puts in the
  WSGI environ as ``lambda.event``. Nothing a client sends as a header is ever taken as
  identity.
- ``sigv4`` (local stack, tests): this app verifies the signature itself against
  SIGV4_LOCAL_KEYS, as the IAM authorizer would.
- Staff logged in with a Django account may use the browsable API where
  STAFF_LOGIN_ENABLED (never in production).
- ``none`` (local only): every request is LOCAL_PRINCIPAL_ARN.

``request.user`` is always a Principal, whichever class authenticated the request. For IAM
principals (``iam`` and ``sigv4``), its ``arn`` is the owner IDENTITY_MODE makes of the
verified ARN (skymarshal_api/auth/identity.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import HttpRequest, RawPostDataException
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from skymarshal_api.auth.identity import owner_identity
from skymarshal_api.auth.sigv4 import LocalKey, SignedRequest, local_keys_parse, sigv4_verify
from skymarshal_api.web.errors import ApplicationError, Unauthorized

PrincipalSource = Literal["api_gateway", "sigv4", "staff", "local"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``arn`` is the identity that owns what the caller creates and
    is checked on every read and cancel (for an IAM principal, what IDENTITY_MODE makes of
    it; else a stand-in ARN); ``verified_arn`` is the principal whose signature was verified
    (an assumed role's full session ARN), for the logs and GET /identity."""

    arn: str
    source: PrincipalSource
    account_id: str | None = None
    caller: str | None = None
    verified_arn: str = ""

    def __post_init__(self) -> None:
        if not self.verified_arn:
            object.__setattr__(self, "verified_arn", self.arn)

    # What DRF's permissions and the browsable API ask of request.user.
    is_authenticated = True
    is_anonymous = False

    def __str__(self) -> str:
        return self.arn


class CredentialsRejected(drf_exceptions.AuthenticationFailed):
    """Carries our Unauthorized/Forbidden through DRF's authentication machinery, which
    only handles its own exception types (the error handler unwraps it)."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__(error.message)
        self.application_error = error


def principal_of(request: Request | HttpRequest) -> Principal:
    """The authenticated principal of ``request``; raises Unauthorized when there is none."""
    user = getattr(request, "user", None)
    if isinstance(user, Principal):
        return user
    raise Unauthorized()


class ApiGatewayIamAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        if settings.AUTH_MODE != "iam":
            return None
        identity = _gateway_identity(request._request.META.get("lambda.event"))
        user_arn = identity.get("userArn")
        if not user_arn:
            # No identity: API Gateway did not authorize this request (a missing
            # authorizer, or a request that did not come through API Gateway).
            return None
        return (
            Principal(
                arn=_owner(str(user_arn)),
                verified_arn=str(user_arn),
                source="api_gateway",
                account_id=identity.get("accountId"),
                caller=identity.get("caller"),
            ),
            None,
        )

    def authenticate_header(self, request: Request) -> str:
        return "AWS4-HMAC-SHA256"


class SigV4Authentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        if settings.AUTH_MODE != "sigv4":
            return None
        django_request = request._request
        if "HTTP_AUTHORIZATION" not in django_request.META:
            return None
        try:
            key = sigv4_verify(
                _signed_request(django_request),
                keys=_local_keys(json.dumps(settings.SIGV4_LOCAL_KEYS, sort_keys=True)),
                region=settings.AWS_REGION,
                now=datetime.now(UTC),
                max_skew_seconds=settings.SIGV4_MAX_CLOCK_SKEW_SECONDS,
            )
        except ApplicationError as exc:
            raise CredentialsRejected(exc) from exc
        account_id = key.principal_arn.split(":")[4] if key.principal_arn.count(":") >= 5 else None
        return (
            Principal(
                arn=_owner(key.principal_arn),
                verified_arn=key.principal_arn,
                source="sigv4",
                account_id=account_id,
                caller=key.access_key_id,
            ),
            None,
        )

    def authenticate_header(self, request: Request) -> str:
        return "AWS4-HMAC-SHA256"


class StaffSessionAuthentication(SessionAuthentication):
    """A logged-in Django staff account (CSRF enforced, as DRF does for sessions)."""

    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        if not settings.STAFF_LOGIN_ENABLED or "HTTP_AUTHORIZATION" in request._request.META:
            return None
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not (user.is_active and user.is_staff):
            return None
        return Principal(arn=f"staff:{user.get_username()}", source="staff"), None


class LocalNoAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        if settings.AUTH_MODE != "none":
            return None
        return Principal(arn=settings.LOCAL_PRINCIPAL_ARN, source="local"), None


def _owner(verified_arn: str) -> str:
    return owner_identity(
        verified_arn,
        mode=settings.IDENTITY_MODE,
        trusted_session_roles=settings.IDENTITY_TRUSTED_SESSION_ROLES,
    )


@lru_cache(maxsize=4)
def _local_keys(config: str) -> dict[str, LocalKey]:
    """SIGV4_LOCAL_KEYS parsed once per distinct value (tests change the setting)."""
    return local_keys_parse(json.loads(config))


def _gateway_identity(event: Any) -> dict[str, Any]:
    context = event.get("requestContext") if isinstance(event, dict) else None
    identity = context.get("identity") if isinstance(context, dict) else None
    return identity if isinstance(identity, dict) else {}


def _signed_request(request: HttpRequest) -> SignedRequest:
    meta: dict[str, Any] = request.META
    headers: dict[str, str] = {}
    for name, value in meta.items():
        if name.startswith("HTTP_"):
            headers[name[5:].lower().replace("_", "-")] = str(value)
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if name in meta:  # present, even empty: a client may sign an empty Content-Type
            headers[name.lower().replace("_", "-")] = str(meta[name])
    raw_path, raw_query = _raw_target(meta)
    try:
        body = request.body
    except RawPostDataException:
        body = b""
    return SignedRequest(
        method=request.method or "GET",
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        body=body,
    )


def _raw_target(meta: dict[str, Any]) -> tuple[str, str]:
    """The path and query exactly as the client sent them, where the server tells us
    (gunicorn: RAW_URI; others: REQUEST_URI); else rebuilt from the decoded PATH_INFO."""
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw:
        parts = urlsplit(str(raw))
        return parts.path or "/", parts.query
    path = meta.get("SCRIPT_NAME", "") + meta.get("PATH_INFO", "/")
    # WSGI decodes PATH_INFO as latin-1 bytes; re-encode what the client must have encoded.
    return quote(path.encode("latin-1"), safe="/;=,:@!$&'()*+~"), str(meta.get("QUERY_STRING", ""))
