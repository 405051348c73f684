"""AWS credentials and Signature Version 4 for service ``execute-api``, with botocore.

Credentials come from botocore's standard chain (environment, the shared config and
credentials files with profiles and SSO, container and instance roles). Refreshable ones
(SSO, assumed roles, instance roles) are refreshed by botocore when they are about to
expire: every request asks for the current frozen set.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import Session

SERVICE = "execute-api"
DEFAULT_REGION = "us-east-1"
# https://API_ID.execute-api.REGION.amazonaws.com/STAGE
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
# Headers signed besides host and the x-amz-* ones botocore adds. Connection-level headers
# (Connection, Accept-Encoding, User-Agent…) stay unsigned: a proxy on the way may rewrite them.
SIGNED_HEADERS = ("content-type", "idempotency-key", "last-event-id")


class NoCredentials(RuntimeError):
    """No AWS credentials in the chain: say where to put them."""


def region_from_url(url: str) -> str | None:
    """The region of an API Gateway URL (``…execute-api.eu-west-1.amazonaws.com``)."""
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def is_gateway_url(url: str) -> bool:
    return region_from_url(url) is not None


class AwsIdentity:
    """Where requests' credentials and region come from: an explicit key pair, or botocore's
    chain for ``profile`` (None: AWS_PROFILE or the default profile)."""

    def __init__(
        self,
        *,
        url: str,
        profile: str | None = None,
        region: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self._session = Session(profile=profile) if credentials is None else None
        self._credentials = credentials
        self.region = (
            region
            or region_from_url(url)
            or (self._session.get_config_variable("region") if self._session else None)
            or DEFAULT_REGION
        )

    def frozen(self) -> ReadOnlyCredentials:
        """The current credentials (botocore refreshes expiring ones here)."""
        credentials = self._credentials
        if credentials is None:
            assert self._session is not None
            credentials = self._session.get_credentials()
        if credentials is None:
            raise NoCredentials(
                "No AWS credentials found: run `aws sso login --profile NAME` and pass "
                "--profile NAME (or set AWS_PROFILE), or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY."
            )
        return credentials.get_frozen_credentials()

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """The headers that sign this request: Authorization, X-Amz-Date and, for temporary
        credentials, X-Amz-Security-Token (signed too, as API Gateway requires)."""
        signed = {k: v for k, v in headers.items() if k.lower() in SIGNED_HEADERS}
        request = AWSRequest(method=method, url=url, data=body, headers=signed)
        SigV4Auth(self.frozen(), SERVICE, self.region).add_auth(request)
        return {
            name: str(request.headers[name])
            for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
            if name in request.headers
        }


class SigV4HttpxAuth(httpx.Auth):
    """httpx authentication: signs each request as it is sent (so each retry is signed anew,
    with a fresh date and, if they were refreshed, fresh credentials)."""

    requires_request_body = True

    def __init__(self, identity: AwsIdentity) -> None:
        self.identity = identity

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = self.identity.sign(
            request.method, str(request.url), dict(request.headers), request.content
        )
        request.headers.update(headers)
        yield request
