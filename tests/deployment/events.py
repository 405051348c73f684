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
# The owner of both in IDENTITY_MODE=role (the default): their role.
ROLE_OWNER = f"arn:aws:iam::{ACCOUNT}:role/ops-controller"
# Each other kind of caller an IAM-authorized method sees.
IAM_USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/ops/jane"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
FEDERATED_USER_ARN = f"arn:aws:sts::{ACCOUNT}:federated-user/jane"
SSO_ROLE = "AWSReservedSSO_OpsController_0123456789abcdef"
SSO_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/jane.doe@example.com"
OTHER_SSO_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/omar.ali@example.com"


def _principal_id(user_arn: str) -> str:
    """``user`` and ``caller``: the principal's aws:userid (IAM User Guide, global condition
    keys): an IAM user's unique id, the account for root, ACCOUNT:NAME for a federated
    user, ROLE_ID:SESSION_NAME for a role session."""
    resource = user_arn.split(":", 5)[-1]
    if resource.startswith("user/"):
        return "AIDAEXAMPLEUSERID"
    account = user_arn.split(":")[4]
    if resource == "root":
        return account
    if resource.startswith("federated-user/"):
        return f"{account}:{resource.split('/', 1)[1]}"
    return f"AROAEXAMPLEID:{user_arn.rsplit('/', 1)[-1]}"


def iam_identity(user_arn: str = ROLE_ARN) -> dict[str, Any]:
    caller = _principal_id(user_arn)
    long_term = user_arn.split(":", 5)[-1].startswith(("user/", "root"))
    return {
        "cognitoIdentityPoolId": None,
        "accountId": user_arn.split(":")[4] if user_arn.count(":") >= 5 else ACCOUNT,
        "cognitoIdentityId": None,
        "caller": caller,
        "sourceIp": "203.0.113.7",
        "principalOrgId": None,
        "accessKey": "AKIAEXAMPLEACCESSKEY" if long_term else "ASIAEXAMPLEACCESSKEY",
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
