"""API Gateway REST API (Lambda proxy integration, payload 1.0) events, as API Gateway
sends them to the function behind an IAM-authorized method: requestContext.identity holds
the caller that the IAM authorizer verified."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

API_ID = "a1b2c3d4e5"
HOST = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
STAGE = "dev"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane"
OTHER_ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/omar"


def iam_identity(user_arn: str = ROLE_ARN) -> dict[str, Any]:
    caller = f"AROAEXAMPLEID:{user_arn.rsplit('/', 1)[-1]}"
    return {
        "cognitoIdentityPoolId": None,
        "accountId": ACCOUNT,
        "cognitoIdentityId": None,
        "caller": caller,
        "sourceIp": "203.0.113.7",
        "principalOrgId": None,
        "accessKey": "ASIAEXAMPLEACCESSKEY",
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": user_arn,
        "userAgent": "python-requests/2.32 botocore/1.40",
        "user": caller,
    }


def rest_event(
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One proxy event for ``/{proxy+}``; ``identity=None`` leaves requestContext.identity
    out (a request API Gateway did not authorize). Bodies arrive base64-encoded: Zappa's
    binary_support sets the API's binary media types to */*."""
    now = time.time()
    headers = {
        "Accept": "application/json",
        "Host": HOST,
        "User-Agent": "python-requests/2.32",
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEACCESSKEY/20261123/us-east-1/execute-api/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
        ),
        "X-Amzn-Trace-Id": f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}",
        "X-Forwarded-For": "203.0.113.7, 130.176.10.20",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    encoded = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        encoded = base64.b64encode(json.dumps(body).encode()).decode()
    request_context: dict[str, Any] = {
        "resourceId": "x1y2z3",
        "resourcePath": "/{proxy+}",
        "httpMethod": method,
        "extendedRequestId": "AbCdEfGhIjKlMnO=",
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "path": f"/{STAGE}{path}",
        "accountId": ACCOUNT,
        "protocol": "HTTP/1.1",
        "stage": STAGE,
        "domainPrefix": API_ID,
        "requestTimeEpoch": int(now * 1000),
        "requestId": str(uuid.uuid4()),
        "domainName": HOST,
        "apiId": API_ID,
    }
    if identity is not None:
        request_context["identity"] = identity
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": request_context,
        "body": encoded,
        "isBase64Encoded": encoded is not None,
    }


def response_json(result: dict[str, Any]) -> Any:
    """The JSON body of a proxy response (Zappa base64-encodes only binary bodies)."""
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
