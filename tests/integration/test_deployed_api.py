"""A deployed stage, through API Gateway: run by ``scripts/test_api.sh URL`` with
SKYMARSHAL_API_URL set and AWS credentials of a principal allowed to invoke the API
(skipped otherwise: the suite runs without an AWS account)."""

from __future__ import annotations

import json
import os
import uuid

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scripts.signed_request import signed_send

URL = os.environ.get("SKYMARSHAL_API_URL", "").rstrip("/")
REGION = URL.split(".")[2] if URL.count(".") >= 3 else "us-east-1"

pytestmark = [
    pytest.mark.deployed,
    pytest.mark.skipif(not URL, reason="SKYMARSHAL_API_URL is not set (scripts/test_api.sh URL)"),
]


def test_health_answers_without_a_signature() -> None:
    response = httpx.get(f"{URL}/api/v1/health", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("healthy", "degraded")


def test_api_gateway_refuses_an_unsigned_invocation() -> None:
    response = httpx.post(f"{URL}/api/v1/invoke", json={"prompt": "Flight AA1 delayed 2h"})
    assert response.status_code == 403
    assert "message" in response.json()  # API Gateway's answer: the function never ran


def test_api_gateway_refuses_a_wrong_signature() -> None:
    url = f"{URL}/api/v1/identity"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("AKIAIOSFODNN7EXAMPLE", "wrong-secret"), "execute-api", REGION).add_auth(
        request
    )
    response = httpx.get(url, headers=dict(request.headers.items()), timeout=30)
    assert response.status_code == 403


def test_the_caller_is_the_signing_principal() -> None:
    status, body = signed_send("GET", f"{URL}/api/v1/identity", data=None, region=REGION)
    assert status == 200, body
    caller = boto3.client("sts", region_name=REGION).get_caller_identity()
    assert json.loads(body)["principal"] == caller["Arn"]
    assert json.loads(body)["authenticated_by"] == "api_gateway"


def test_an_invocation_is_answered_and_recorded() -> None:
    prompt = f"Flight UA45 delayed 90 minutes at ORD due to weather ({uuid.uuid4().hex[:8]})"
    status, body = signed_send(
        "POST", f"{URL}/api/v1/invoke", data=json.dumps({"prompt": prompt}), region=REGION
    )
    if status == 504 and b"Endpoint request timed out" in body:
        pytest.skip("the run took longer than API Gateway's 29 s integration timeout")
    assert status == 200, body
    answer = json.loads(body)
    status, body = signed_send(
        "GET", f"{URL}/api/v1/sessions/{answer['session_id']}", data=None, region=REGION
    )
    assert status == 200, body
    assert [i["request_id"] for i in json.loads(body)["interactions"]] == [answer["request_id"]]
