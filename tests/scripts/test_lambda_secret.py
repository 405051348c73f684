"""scripts/lambda_secret.py against SSM and Lambda (botocore Stubbers: AWS control planes)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from scripts.lambda_secret import (
    parameter_name,
    secret_key_apply,
    secret_key_get_or_create,
)

FUNCTION = "skymarshal-api-dev"


def _client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLESTUB00000",
        aws_secret_access_key="example",
    )


def test_an_existing_key_is_read_decrypted() -> None:
    ssm = _client("ssm")
    with Stubber(ssm) as stub:
        stub.add_response(
            "get_parameter",
            {"Parameter": {"Name": parameter_name("dev"), "Value": "k" * 60}},
            {"Name": "/skymarshal/dev/django-secret-key", "WithDecryption": True},
        )
        assert secret_key_get_or_create(ssm, name=parameter_name("dev")) == "k" * 60


def test_a_missing_key_is_created_random_and_secure() -> None:
    ssm = _client("ssm")
    created: list[str] = []
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", "ParameterNotFound", http_status_code=400)
        stub.add_response(
            "put_parameter",
            {"Version": 1},
            {
                "Name": "/skymarshal/prod/django-secret-key",
                "Description": ANY,
                "Value": ANY,
                "Type": "SecureString",
                "Overwrite": False,
            },
        )
        ssm.meta.events.register(
            "provide-client-params.ssm.PutParameter",
            lambda params, **_: created.append(params["Value"]),
        )
        value = secret_key_get_or_create(ssm, name=parameter_name("prod"))
    assert created == [value]
    assert len(value) >= 50


def test_other_ssm_errors_are_not_taken_for_a_missing_key() -> None:
    ssm = _client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ClientError, match="AccessDenied"):
            secret_key_get_or_create(ssm, name=parameter_name("dev"))


def test_the_key_is_added_to_the_functions_environment_keeping_the_rest() -> None:
    client = _client("lambda")
    with Stubber(client) as stub:
        stub.add_response(
            "get_function_configuration",
            {"Environment": {"Variables": {"TRACE": "1"}}},
            {"FunctionName": FUNCTION},
        )
        stub.add_response(
            "update_function_configuration",
            {},
            {
                "FunctionName": FUNCTION,
                "Environment": {"Variables": {"TRACE": "1", "DJANGO_SECRET_KEY": "s" * 50}},
            },
        )
        stub.add_response(
            "get_function",
            {"Configuration": {"LastUpdateStatus": "Successful"}},
            {"FunctionName": FUNCTION},
        )
        assert secret_key_apply(client, function_name=FUNCTION, value="s" * 50)
        stub.assert_no_pending_responses()


def test_an_unchanged_key_leaves_the_function_alone() -> None:
    client = _client("lambda")
    with Stubber(client) as stub:
        stub.add_response(
            "get_function_configuration",
            {"Environment": {"Variables": {"DJANGO_SECRET_KEY": "s" * 50}}},
            {"FunctionName": FUNCTION},
        )
        assert not secret_key_apply(client, function_name=FUNCTION, value="s" * 50)
        stub.assert_no_pending_responses()
