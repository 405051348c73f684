"""What Zappa leaves to us on the stage's REST API, applied after every deploy and update
(Zappa's ``post`` callback, and ``scripts/deploy_api.sh``):

- **An unsigned health check.** ``iam_authorization`` puts AWS_IAM on every method Zappa
  creates (``ANY /`` and ``ANY /{proxy+}``). This adds ``GET /api/v1/health`` with no
  authorization, beside ``/api/v1/{proxy+}`` (ANY: AWS_IAM; OPTIONS: none, so that a
  browser's unsigned CORS preflight reaches the app, which answers it), all with the same
  Lambda proxy integration and credentials as Zappa's own methods: the function's SnapStart
  alias (``snap_start`` in zappa_settings.json), which Zappa's own methods invoke too, since
  SnapStart applies only to published versions and the aliases pointing at them.
- **API Gateway's own answers in the API's error shape**: a gateway response for every
  response type (``skymarshal_api/web/gateway_responses.py``), with the CORS headers of the
  stage's ``CORS_ALLOWED_ORIGINS`` (its ``environment_variables`` in zappa_settings.json,
  the app's one source of allowed origins). Applied before the deployment, which is what
  makes them live.
- **Stage throttling**: 100 requests per second, bursts of 200, on every method.
- **A usage plan** for the stage with the same throttle and a daily quota. Usage plans meter
  API keys: the plan limits callers that are given keys; the stage throttle limits everyone.

Every step is idempotent. Zappa imports this file by path, outside the ``scripts``
package: boto3 and the standard library only (and gateway_responses.py, loaded by path).

Usage: python -m scripts.apigateway_stage STAGE [--region us-east-1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.exceptions import ClientError


def _gateway_responses_module() -> ModuleType:
    """skymarshal_api.web.gateway_responses; loaded by path when Zappa runs this file without
    the project on sys.path."""
    try:
        from skymarshal_api.web import gateway_responses
    except ImportError:
        name = "skymarshal_api.web.gateway_responses"
        path = (
            Path(__file__).resolve().parent.parent
            / "skymarshal_api"
            / "web"
            / "gateway_responses.py"
        )
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return gateway_responses


gateway_responses = _gateway_responses_module()

RATE_LIMIT = 100.0
BURST_LIMIT = 200
DAILY_QUOTA = 100_000
HEALTH_PATH = "/api/v1/health"
PROXY_PATH = "/api/v1/{proxy+}"
PROJECT = "skymarshal-api"
# The alias Zappa moves to each published version once its SnapStart snapshot is ready
# (SNAPSTART_LAMBDA_ALIAS in zappa/core.py; a test compares them).
SNAPSTART_ALIAS = "snapstart"


@dataclass(frozen=True)
class StageTarget:
    api_id: str
    stage: str
    region: str
    function_arn: str
    role_arn: str

    @property
    def integration_uri(self) -> str:
        return (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
            f"{self.function_arn}/invocations"
        )


def _resources(client: Any, api_id: str) -> dict[str, str]:
    """Every resource of the API: path → id."""
    found = {}
    for page in client.get_paginator("get_resources").paginate(restApiId=api_id):
        for item in page["items"]:
            found[item["path"]] = item["id"]
    return found


def resource_ensure(client: Any, api_id: str, path: str) -> str:
    """The id of the resource at ``path``, creating it and any missing parents."""
    known = _resources(client, api_id)
    current = "/"
    for part in path.strip("/").split("/"):
        child = f"{current.rstrip('/')}/{part}"
        if child not in known:
            created = client.create_resource(
                restApiId=api_id, parentId=known[current], pathPart=part
            )
            known[child] = created["id"]
        current = child
    return known[current]


def method_ensure(
    client: Any, target: StageTarget, resource_id: str, http_method: str, authorization: str
) -> None:
    """``http_method`` on the resource, with this authorization and the Lambda proxy
    integration."""
    try:
        method = client.get_method(
            restApiId=target.api_id, resourceId=resource_id, httpMethod=http_method
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotFoundException":
            raise
        client.put_method(
            restApiId=target.api_id,
            resourceId=resource_id,
            httpMethod=http_method,
            authorizationType=authorization,
            apiKeyRequired=False,
        )
    else:
        if method["authorizationType"] != authorization:
            client.update_method(
                restApiId=target.api_id,
                resourceId=resource_id,
                httpMethod=http_method,
                patchOperations=[
                    {"op": "replace", "path": "/authorizationType", "value": authorization}
                ],
            )
    client.put_integration(
        restApiId=target.api_id,
        resourceId=resource_id,
        httpMethod=http_method,
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=target.integration_uri,
        credentials=target.role_arn,
        passthroughBehavior="NEVER",
    )


def routes_apply(client: Any, target: StageTarget) -> None:
    proxy = resource_ensure(client, target.api_id, PROXY_PATH)
    method_ensure(client, target, proxy, "ANY", "AWS_IAM")
    method_ensure(client, target, proxy, "OPTIONS", "NONE")
    health = resource_ensure(client, target.api_id, HEALTH_PATH)
    method_ensure(client, target, health, "GET", "NONE")


def gateway_responses_apply(client: Any, *, api_id: str, origin: str | None) -> int:
    """Every response type answers in the error shape, with ``origin`` as its CORS grant
    (none when None). ``put_gateway_response`` replaces what was there, so reapplying is
    harmless; DEFAULT_4XX/DEFAULT_5XX get no status, which would override every other
    4XX/5XX. Returns how many were put."""
    for error in gateway_responses.GATEWAY_ERRORS:
        status = {} if error.status is None else {"statusCode": str(error.status)}
        client.put_gateway_response(
            restApiId=api_id,
            responseType=error.response_type,
            **status,
            responseParameters=gateway_responses.gateway_response_parameters(error, origin),
            responseTemplates=gateway_responses.gateway_response_templates(error),
        )
    return len(gateway_responses.GATEWAY_ERRORS)


def deployment_create(client: Any, *, api_id: str, stage: str) -> None:
    """Routes and gateway responses take effect in the stage with a deployment."""
    client.create_deployment(
        restApiId=api_id,
        stageName=stage,
        description="SkyMarshal API: routes and gateway responses",
    )


def stage_throttle_apply(
    client: Any, *, api_id: str, stage: str, rate: float = RATE_LIMIT, burst: int = BURST_LIMIT
) -> None:
    client.update_stage(
        restApiId=api_id,
        stageName=stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
        ],
    )


def usage_plan_ensure(
    client: Any,
    *,
    api_id: str,
    stage: str,
    rate: float = RATE_LIMIT,
    burst: int = BURST_LIMIT,
    daily_quota: int = DAILY_QUOTA,
) -> str:
    """The stage's usage plan (``skymarshal-api-STAGE``), created or brought up to date;
    returns its id."""
    name = f"{PROJECT}-{stage}"
    plans = [
        plan
        for page in client.get_paginator("get_usage_plans").paginate()
        for plan in page["items"]
        if plan["name"] == name
    ]
    if not plans:
        created = client.create_usage_plan(
            name=name,
            description=f"SkyMarshal API {stage}: per-key throttle and daily quota",
            apiStages=[{"apiId": api_id, "stage": stage}],
            throttle={"rateLimit": rate, "burstLimit": burst},
            quota={"limit": daily_quota, "period": "DAY"},
        )
        return str(created["id"])
    plan = plans[0]
    operations = [
        {"op": "replace", "path": "/throttle/rateLimit", "value": str(rate)},
        {"op": "replace", "path": "/throttle/burstLimit", "value": str(burst)},
        {"op": "replace", "path": "/quota/limit", "value": str(daily_quota)},
        {"op": "replace", "path": "/quota/period", "value": "DAY"},
    ]
    stages = {(item["apiId"], item["stage"]) for item in plan.get("apiStages", [])}
    if (api_id, stage) not in stages:
        operations.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{stage}"})
    client.update_usage_plan(usagePlanId=plan["id"], patchOperations=operations)
    return str(plan["id"])


def stage_configure(
    *,
    apigateway: Any,
    lambda_client: Any,
    api_id: str,
    function_name: str,
    qualifier: str | None,
    stage: str,
    environment: Mapping[str, str],
) -> dict[str, Any]:
    """Routes, gateway responses, throttling and usage plan for the stage; ``qualifier``
    is the alias API Gateway invokes (None: the unqualified function); ``environment``
    is the stage's ``environment_variables`` (the app's settings). Returns what was
    applied."""
    origin = gateway_responses.gateway_cors_origin(
        gateway_responses.cors_allowed_origins(environment)
    )
    function = lambda_client.get_function_configuration(FunctionName=function_name)
    region = function["FunctionArn"].split(":")[3]
    function_arn = (
        f"{function['FunctionArn']}:{qualifier}" if qualifier else function["FunctionArn"]
    )
    target = StageTarget(api_id, stage, region, function_arn, function["Role"])
    routes_apply(apigateway, target)
    answered = gateway_responses_apply(apigateway, api_id=api_id, origin=origin)
    deployment_create(apigateway, api_id=api_id, stage=stage)
    stage_throttle_apply(apigateway, api_id=api_id, stage=stage)
    plan_id = usage_plan_ensure(apigateway, api_id=api_id, stage=stage)
    return {
        "api_id": api_id,
        "stage": stage,
        "url": f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
        "throttle": {"rateLimit": RATE_LIMIT, "burstLimit": BURST_LIMIT},
        "usage_plan_id": plan_id,
        "unsigned": [f"GET {HEALTH_PATH}", f"OPTIONS {PROXY_PATH}"],
        "gateway_responses": answered,
        "gateway_cors_origin": origin,
    }


def stage_environment(stage: str, settings_path: Path | None = None) -> dict[str, str]:
    """The stage's ``environment_variables`` in zappa_settings.json."""
    path = settings_path or Path(__file__).resolve().parent.parent / "zappa_settings.json"
    stages: dict[str, Any] = json.loads(path.read_text())
    return dict(stages[stage].get("environment_variables", {}))


def stage_snap_start(stage: str, settings_path: Path | None = None) -> bool:
    """Whether the stage turns SnapStart on (``snap_start``: PublishedVersions)."""
    path = settings_path or Path(__file__).resolve().parent.parent / "zappa_settings.json"
    stages: dict[str, Any] = json.loads(path.read_text())
    return stages[stage].get("snap_start", "None") not in (None, "None")


def api_id_of(cloudformation: Any, function_name: str) -> str:
    """The REST API of Zappa's CloudFormation stack (named after the function)."""
    resource = cloudformation.describe_stack_resource(
        StackName=function_name, LogicalResourceId="Api"
    )
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])


def zappa_post_deploy(cli: Any) -> None:
    """``callbacks.post`` in zappa_settings.json; Zappa passes its CLI object."""
    session = cli.zappa.boto_session
    api_id = cli.zappa.get_api_id(cli.lambda_name)
    if not api_id:
        raise RuntimeError(f"no REST API found for {cli.lambda_name}")
    applied = stage_configure(
        apigateway=session.client("apigateway"),
        lambda_client=session.client("lambda"),
        api_id=api_id,
        function_name=cli.lambda_name,
        qualifier=cli.apigateway_lambda_qualifier,
        stage=cli.api_stage,
        environment=cli.stage_config.get("environment_variables", {}),
    )
    print(f"API Gateway stage configured: {json.dumps(applied)}")


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m scripts.apigateway_stage", description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    function_name = f"{PROJECT}-{args.stage}"
    applied = stage_configure(
        apigateway=session.client("apigateway"),
        lambda_client=session.client("lambda"),
        api_id=api_id_of(session.client("cloudformation"), function_name),
        function_name=function_name,
        qualifier=SNAPSTART_ALIAS if stage_snap_start(args.stage) else None,
        stage=args.stage,
        environment=stage_environment(args.stage),
    )
    print(json.dumps(applied, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
