"""scripts/apigateway_stage.py against the API Gateway and Lambda control planes, which
cannot run here: botocore Stubbers check every call and its parameters, in order."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from scripts import apigateway_stage
from scripts.apigateway_stage import (
    BURST_LIMIT,
    DAILY_QUOTA,
    RATE_LIMIT,
    stage_configure,
    zappa_post_deploy,
)

API = "a1b2c3d4e5"
STAGE = "dev"
FUNCTION = "skymarshal-api-dev"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
ROLE_ARN = "arn:aws:iam::123456789012:role/skymarshal-api-dev-ZappaLambdaExecutionRole"
URI = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FUNCTION_ARN}/invocations"
ZAPPA_RESOURCES = [
    {"id": "root0", "path": "/"},
    {"id": "proxy0", "parentId": "root0", "path": "/{proxy+}", "pathPart": "{proxy+}"},
]
MINE = {
    "/api": "api1",
    "/api/v1": "v1a",
    "/api/v1/{proxy+}": "prx1",
    "/api/v1/health": "hlt1",
}


def _client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLESTUB00000",
        aws_secret_access_key="example",
    )


@pytest.fixture
def clients() -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    apigateway, lambda_client = _client("apigateway"), _client("lambda")
    with Stubber(apigateway) as gateway_stub, Stubber(lambda_client) as lambda_stub:
        yield apigateway, gateway_stub, lambda_client, lambda_stub
        gateway_stub.assert_no_pending_responses()
        lambda_stub.assert_no_pending_responses()


def _function(stub: Stubber) -> None:
    stub.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "FunctionArn": FUNCTION_ARN, "Role": ROLE_ARN},
        {"FunctionName": FUNCTION},
    )


def _resources(stub: Stubber, existing: list[dict[str, str]]) -> None:
    stub.add_response("get_resources", {"items": existing}, {"restApiId": API})


def _created(stub: Stubber, parent: str, part: str, new_id: str) -> None:
    stub.add_response(
        "create_resource",
        {"id": new_id, "parentId": parent, "pathPart": part},
        {"restApiId": API, "parentId": parent, "pathPart": part},
    )


def _method(stub: Stubber, resource: str, method: str, auth: str, *, existing: str | None) -> None:
    key = {"restApiId": API, "resourceId": resource, "httpMethod": method}
    if existing is None:
        stub.add_client_error("get_method", "NotFoundException", http_status_code=404)
        stub.add_response(
            "put_method",
            {"httpMethod": method, "authorizationType": auth},
            {**key, "authorizationType": auth, "apiKeyRequired": False},
        )
    else:
        stub.add_response("get_method", {"httpMethod": method, "authorizationType": existing}, key)
        if existing != auth:
            stub.add_response(
                "update_method",
                {"httpMethod": method, "authorizationType": auth},
                {
                    **key,
                    "patchOperations": [
                        {"op": "replace", "path": "/authorizationType", "value": auth}
                    ],
                },
            )
    stub.add_response(
        "put_integration",
        {"type": "AWS_PROXY", "uri": URI},
        {
            **key,
            "type": "AWS_PROXY",
            "integrationHttpMethod": "POST",
            "uri": URI,
            "credentials": ROLE_ARN,
            "passthroughBehavior": "NEVER",
        },
    )


def _deploy_throttle(stub: Stubber) -> None:
    stub.add_response(
        "create_deployment",
        {"id": "dep1"},
        {
            "restApiId": API,
            "stageName": STAGE,
            "description": "SkyMarshal API: unsigned health check",
        },
    )
    stub.add_response(
        "update_stage",
        {"stageName": STAGE},
        {
            "restApiId": API,
            "stageName": STAGE,
            "patchOperations": [
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100.0"},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
            ],
        },
    )


def _existing_resources() -> list[dict[str, str]]:
    return ZAPPA_RESOURCES + [{"id": rid, "path": path} for path, rid in MINE.items()]


def test_a_fresh_zappa_api_gets_its_routes_throttle_and_usage_plan(clients: Any) -> None:
    apigateway, gateway, lambda_client, lambda_stub = clients
    _function(lambda_stub)
    _resources(gateway, ZAPPA_RESOURCES)
    _created(gateway, "root0", "api", "api1")
    _created(gateway, "api1", "v1", "v1a")
    _created(gateway, "v1a", "{proxy+}", "prx1")
    _method(gateway, "prx1", "ANY", "AWS_IAM", existing=None)
    _method(gateway, "prx1", "OPTIONS", "NONE", existing=None)
    _resources(
        gateway,
        [
            *ZAPPA_RESOURCES,
            *({"id": i, "path": p} for p, i in MINE.items() if p != "/api/v1/health"),
        ],
    )
    _created(gateway, "v1a", "health", "hlt1")
    _method(gateway, "hlt1", "GET", "NONE", existing=None)
    _deploy_throttle(gateway)
    gateway.add_response("get_usage_plans", {"items": []}, {})
    gateway.add_response(
        "create_usage_plan",
        {"id": "plan1", "name": "skymarshal-api-dev"},
        {
            "name": "skymarshal-api-dev",
            "description": "SkyMarshal API dev: per-key throttle and daily quota",
            "apiStages": [{"apiId": API, "stage": STAGE}],
            "throttle": {"rateLimit": RATE_LIMIT, "burstLimit": BURST_LIMIT},
            "quota": {"limit": DAILY_QUOTA, "period": "DAY"},
        },
    )

    applied = stage_configure(
        apigateway=apigateway,
        lambda_client=lambda_client,
        api_id=API,
        function_name=FUNCTION,
        stage=STAGE,
    )
    assert applied["url"] == f"https://{API}.execute-api.us-east-1.amazonaws.com/dev"
    assert applied["usage_plan_id"] == "plan1"
    assert applied["throttle"] == {"rateLimit": 100.0, "burstLimit": 200}


def test_a_second_run_changes_nothing_but_reasserts_integrations_and_limits(
    clients: Any,
) -> None:
    apigateway, gateway, lambda_client, lambda_stub = clients
    _function(lambda_stub)
    _resources(gateway, _existing_resources())
    _method(gateway, "prx1", "ANY", "AWS_IAM", existing="AWS_IAM")
    _method(gateway, "prx1", "OPTIONS", "NONE", existing="NONE")
    _resources(gateway, _existing_resources())
    # Someone had put IAM on the health check: it is opened again.
    _method(gateway, "hlt1", "GET", "NONE", existing="AWS_IAM")
    _deploy_throttle(gateway)
    gateway.add_response(
        "get_usage_plans",
        {
            "items": [
                {"id": "other", "name": "someone-else"},
                {
                    "id": "plan1",
                    "name": "skymarshal-api-dev",
                    "apiStages": [{"apiId": API, "stage": STAGE}],
                },
            ]
        },
        {},
    )
    gateway.add_response(
        "update_usage_plan",
        {"id": "plan1"},
        {
            "usagePlanId": "plan1",
            "patchOperations": [
                {"op": "replace", "path": "/throttle/rateLimit", "value": "100.0"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": "200"},
                {"op": "replace", "path": "/quota/limit", "value": "100000"},
                {"op": "replace", "path": "/quota/period", "value": "DAY"},
            ],
        },
    )
    applied = stage_configure(
        apigateway=apigateway,
        lambda_client=lambda_client,
        api_id=API,
        function_name=FUNCTION,
        stage=STAGE,
    )
    assert applied["usage_plan_id"] == "plan1"


def test_a_usage_plan_without_the_stage_gets_it_added(clients: Any) -> None:
    apigateway, gateway, _, _ = clients
    gateway.add_response(
        "get_usage_plans", {"items": [{"id": "plan9", "name": "skymarshal-api-prod"}]}, {}
    )
    gateway.add_response(
        "update_usage_plan",
        {"id": "plan9"},
        {
            "usagePlanId": "plan9",
            "patchOperations": [
                {"op": "replace", "path": "/throttle/rateLimit", "value": "100.0"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": "200"},
                {"op": "replace", "path": "/quota/limit", "value": "100000"},
                {"op": "replace", "path": "/quota/period", "value": "DAY"},
                {"op": "add", "path": "/apiStages", "value": f"{API}:prod"},
            ],
        },
    )
    plan = apigateway_stage.usage_plan_ensure(apigateway, api_id=API, stage="prod")
    assert plan == "plan9"


def test_an_access_error_is_not_mistaken_for_a_missing_method(clients: Any) -> None:
    apigateway, gateway, lambda_client, lambda_stub = clients
    _function(lambda_stub)
    _resources(gateway, _existing_resources())
    gateway.add_client_error("get_method", "AccessDeniedException", http_status_code=403)
    with pytest.raises(ClientError, match="AccessDenied"):
        stage_configure(
            apigateway=apigateway,
            lambda_client=lambda_client,
            api_id=API,
            function_name=FUNCTION,
            stage=STAGE,
        )


def test_zappa_post_deploy_configures_the_api_zappa_deployed(clients: Any, capsys: Any) -> None:
    apigateway, gateway, lambda_client, lambda_stub = clients
    _function(lambda_stub)
    _resources(gateway, _existing_resources())
    _method(gateway, "prx1", "ANY", "AWS_IAM", existing="AWS_IAM")
    _method(gateway, "prx1", "OPTIONS", "NONE", existing="NONE")
    _resources(gateway, _existing_resources())
    _method(gateway, "hlt1", "GET", "NONE", existing="NONE")
    _deploy_throttle(gateway)
    gateway.add_response("get_usage_plans", {"items": []}, {})
    gateway.add_response("create_usage_plan", {"id": "plan1"})
    # What Zappa hands its callbacks: its CLI, with the core's boto session and API lookup.
    session = SimpleNamespace(
        client=lambda name: {"apigateway": apigateway, "lambda": lambda_client}[name]
    )
    cli = SimpleNamespace(
        lambda_name=FUNCTION,
        api_stage=STAGE,
        zappa=SimpleNamespace(boto_session=session, get_api_id=lambda name: API),
    )
    zappa_post_deploy(cli)
    assert f'"api_id": "{API}"' in capsys.readouterr().out


def test_the_api_is_found_through_zappas_cloudformation_stack() -> None:
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stack_resource",
            {
                "StackResourceDetail": {
                    "LogicalResourceId": "Api",
                    "PhysicalResourceId": API,
                    "ResourceType": "AWS::ApiGateway::RestApi",
                    "LastUpdatedTimestamp": "2026-11-23T10:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
            },
            {"StackName": FUNCTION, "LogicalResourceId": "Api"},
        )
        assert apigateway_stage.api_id_of(cloudformation, FUNCTION) == API
