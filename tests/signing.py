"""Signing real requests the way SkyMarshal's clients do: botocore's SigV4Auth and
requests-aws4auth (awscurl is run as a program by the tests that use it)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import httpx
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings
from requests_aws4auth import AWS4Auth

from tests.log_audit import SENT

DEV_KEY = settings.SIGV4_DEV_ACCESS_KEY_ID
DEV_SECRET = settings.SIGV4_DEV_SECRET_ACCESS_KEY
DEV_PRINCIPAL = "arn:aws:iam::000000000000:user/skymarshal-developer"
REGION = "us-east-1"


def botocore_headers(
    method: str,
    url: str,
    *,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    key: str = DEV_KEY,
    secret: str = DEV_SECRET,
    token: str | None = None,
    region: str = REGION,
    service: str = "execute-api",
    at: dt.datetime | None = None,
) -> dict[str, str]:
    """The headers botocore's SigV4Auth adds to this request (signed ``at`` a given time)."""
    SENT.credential_record(secret)
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer = SigV4Auth(Credentials(key, secret, token), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(request)
    return dict(request.headers.items())


def botocore_send(method: str, url: str, *, body: bytes | str = b"", **sign: Any) -> httpx.Response:
    headers = botocore_headers(method, url, body=body, **sign)
    content = body.encode() if isinstance(body, str) else body
    return httpx.request(method, url, content=content, headers=headers, timeout=15)


def aws4auth(key: str = DEV_KEY, secret: str = DEV_SECRET, *, token: str | None = None) -> AWS4Auth:
    SENT.credential_record(secret)
    return AWS4Auth(key, secret, REGION, "execute-api", session_token=token)


def aws4auth_send(method: str, url: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", aws4auth())
    return requests.request(method, url, timeout=15, **kwargs)
