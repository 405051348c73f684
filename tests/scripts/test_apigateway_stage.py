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
    SNAPSTART_ALIAS,
    stage_configure,
    stage_environment,
    zappa_post_deploy,
)
from skymarshal_api.web.gateway_responses import GATEWAY_ERRORS

API = "a1b2c3d4e5"
STAGE = "dev"
FUNCTION = "skymarshal-api-dev"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
ROLE_ARN = "arn:aws:iam::123456789012:role/skymarshal-api-dev-ZappaLambdaExecutionRole"
# Zappa's own methods and ours invoke the SnapStart alias, never $LATEST.
URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    f"{FUNCTION_ARN}:{SNAPSTART_ALIAS}/invocations"
)
ZAPPA_RESOURCES = [
    {"id": "root0", "path": "/"},
    {"id": "proxy0", "parentId": "root0", "path": "/{proxy+}", "pathPart": "{proxy+}"},
]
ORIGIN = "https://ops.example.com"
ENVIRONMENT = {"SKYMARSHAL_ENV": "production", "CORS_ALLOWED_ORIGINS": f" {ORIGIN} ,"}
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


def _gateway_response(
    stub: Stubber, response_type: str, status: str | None, headers: dict[str, str], body: str
) -> None:
    params: dict[str, Any] = {"restApiId": API, "responseType": response_type}
    if status is not None:
        params["statusCode"] = status
    params["responseParameters"] = {
        f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()
    }
    params["responseTemplates"] = {"application/json": body}
    stub.add_response("put_gateway_response", {"responseType": response_type}, params)


def _error_body(code: str, message: str) -> str:
    return (
        '{"status": "error", "request_id": "$context.requestId", '
        f'"error_code": "{code}", "error_message": "{message}", '
        '"details": {"source": "api_gateway", "response_type": "$context.error.responseType", '
        '"gateway_message": $context.error.messageString}, '
        '"timestamp": "$context.requestTime"}'
    )


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After,X-Amzn-RequestId",
    }


# (type, status, error_code, extra headers) for each response type, in the order applied.
EXPECTED_GATEWAY_RESPONSES: list[tuple[str, str | None, str, dict[str, str]]] = [
    (
        "MISSING_AUTHENTICATION_TOKEN",
        "401",
        "UNAUTHORIZED",
        {"WWW-Authenticate": "AWS4-HMAC-SHA256"},
    ),
    ("INVALID_SIGNATURE", "403", "INVALID_SIGNATURE", {}),
    ("EXPIRED_TOKEN", "403", "EXPIRED_TOKEN", {}),
    ("ACCESS_DENIED", "403", "ACCESS_DENIED", {}),
    ("INVALID_API_KEY", "403", "INVALID_API_KEY", {}),
    ("WAF_FILTERED", "403", "WAF_FILTERED", {}),
    ("UNAUTHORIZED", "401", "UNAUTHORIZED", {"WWW-Authenticate": "AWS4-HMAC-SHA256"}),
    ("RESOURCE_NOT_FOUND", "404", "NOT_FOUND", {}),
    ("BAD_REQUEST_PARAMETERS", "400", "INVALID_REQUEST", {}),
    ("BAD_REQUEST_BODY", "400", "INVALID_REQUEST", {}),
    ("REQUEST_TOO_LARGE", "413", "PAYLOAD_TOO_LARGE", {}),
    ("UNSUPPORTED_MEDIA_TYPE", "415", "UNSUPPORTED_MEDIA_TYPE", {}),
    ("THROTTLED", "429", "THROTTLED", {"Retry-After": "1"}),
    ("QUOTA_EXCEEDED", "429", "QUOTA_EXCEEDED", {}),
    ("INTEGRATION_FAILURE", "503", "SERVICE_UNAVAILABLE", {"Retry-After": "2"}),
    ("INTEGRATION_TIMEOUT", "504", "GATEWAY_TIMEOUT", {}),
    ("API_CONFIGURATION_ERROR", "502", "GATEWAY_CONFIGURATION_ERROR", {}),
    ("AUTHORIZER_CONFIGURATION_ERROR", "500", "GATEWAY_CONFIGURATION_ERROR", {}),
    ("AUTHORIZER_FAILURE", "500", "AUTHORIZER_FAILURE", {}),
    # No status: on the DEFAULT_* types it would replace every other 4XX/5XX status.
    ("DEFAULT_4XX", None, "GATEWAY_REJECTED", {}),
    ("DEFAULT_5XX", None, "GATEWAY_ERROR", {}),
]


def _gateway_responses(stub: Stubber, origin: str | None) -> None:
    messages = {error.response_type: error.message for error in GATEWAY_ERRORS}
    for response_type, status, code, extra in EXPECTED_GATEWAY_RESPONSES:
        headers = {"Content-Type": "application/json", **extra, **_cors(origin)}
        body = _error_body(code, messages[response_type])
        _gateway_response(stub, response_type, status, headers, body)


def _deploy_throttle(stub: Stubber, origin: str | None = ORIGIN) -> None:
    _gateway_responses(stub, origin)
    stub.add_response(
        "create_deployment",
        {"id": "dep1"},
        {
            "restApiId": API,
            "stageName": STAGE,
            "description": "SkyMarshal API: routes and gateway responses",
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
        qualifier=SNAPSTART_ALIAS,
        stage=STAGE,
        environment=ENVIRONMENT,
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
        qualifier=SNAPSTART_ALIAS,
        stage=STAGE,
        environment=ENVIRONMENT,
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
            qualifier=SNAPSTART_ALIAS,
            stage=STAGE,
            environment=ENVIRONMENT,
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
        # What Zappa's load_settings resolves when snap_start is on.
        apigateway_lambda_qualifier=SNAPSTART_ALIAS,
        api_stage=STAGE,
        stage_config={"environment_variables": ENVIRONMENT},
        zappa=SimpleNamespace(boto_session=session, get_api_id=lambda name: API),
    )
    zappa_post_deploy(cli)
    out = capsys.readouterr().out
    assert f'"api_id": "{API}"' in out
    assert f'"gateway_cors_origin": "{ORIGIN}"' in out


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


def test_a_stage_that_allows_no_origin_gets_gateway_responses_without_a_cors_grant(
    clients: Any,
) -> None:
    apigateway, gateway, lambda_client, lambda_stub = clients
    _function(lambda_stub)
    _resources(gateway, _existing_resources())
    _method(gateway, "prx1", "ANY", "AWS_IAM", existing="AWS_IAM")
    _method(gateway, "prx1", "OPTIONS", "NONE", existing="NONE")
    _resources(gateway, _existing_resources())
    _method(gateway, "hlt1", "GET", "NONE", existing="NONE")
    _deploy_throttle(gateway, origin=None)
    gateway.add_response("get_usage_plans", {"items": []}, {})
    gateway.add_response("create_usage_plan", {"id": "plan1"})
    applied = stage_configure(
        apigateway=apigateway,
        lambda_client=lambda_client,
        api_id=API,
        function_name=FUNCTION,
        qualifier=SNAPSTART_ALIAS,
        stage="dev",
        environment=stage_environment("prod"),  # production: CORS_ALLOWED_ORIGINS is ""
    )
    assert applied["gateway_cors_origin"] is None
    assert applied["gateway_responses"] == 21


def test_every_response_type_api_gateway_has_is_answered() -> None:
    model = _client("apigateway").meta.service_model
    shape = model.operation_model("PutGatewayResponse").input_shape.members["responseType"]
    assert sorted(shape.enum) == sorted(t for t, *_ in EXPECTED_GATEWAY_RESPONSES)
    assert [e.response_type for e in GATEWAY_ERRORS] == [t for t, *_ in EXPECTED_GATEWAY_RESPONSES]


def test_with_several_origins_the_gateway_names_the_first_and_refuses_a_wildcard() -> None:
    from skymarshal_api.web.gateway_responses import cors_allowed_origins, gateway_cors_origin

    several = {"CORS_ALLOWED_ORIGINS": "https://ops.example.com, https://crew.example.com"}
    assert gateway_cors_origin(cors_allowed_origins(several)) == "https://ops.example.com"
    for bad in ("*", "ops.example.com", "https://ops.example.com/path"):
        with pytest.raises(ValueError, match="is not an origin"):
            gateway_cors_origin([bad])


def test_a_bad_origin_stops_the_deploy_before_any_change(clients: Any) -> None:
    apigateway, _, lambda_client, _ = clients
    with pytest.raises(ValueError, match="CORS_ALLOWED_ORIGINS"):
        stage_configure(
            apigateway=apigateway,
            lambda_client=lambda_client,
            api_id=API,
            function_name=FUNCTION,
            qualifier=SNAPSTART_ALIAS,
            stage=STAGE,
            environment={"CORS_ALLOWED_ORIGINS": "*"},
        )


def test_the_stage_environment_is_zappa_settings_environment_variables() -> None:
    import json

    from scripts.stack import ROOT

    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    for stage in ("dev", "prod"):
        assert stage_environment(stage) == settings[stage]["environment_variables"]


def test_the_alias_is_the_one_zappa_keeps_on_the_snapshotted_version() -> None:
    from tests.deployment.conftest import zappa_snapstart_alias

    assert zappa_snapstart_alias() == SNAPSTART_ALIAS
    assert apigateway_stage.stage_snap_start("dev")
    assert apigateway_stage.stage_snap_start("prod")
