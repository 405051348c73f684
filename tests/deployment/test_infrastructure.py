"""The deployment's configuration as code: zappa_settings.json, the Lambda's IAM policies and
the sessions table's CloudFormation template (cfn-lint clean, and the same table as the
PynamoDB models)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts.package import offline_environment
from scripts.package_prune import BOTOCORE_SERVICES_KEPT
from scripts.stack import ROOT
from sessions.models import USER_SESSIONS_INDEX, SessionInteraction
from tests.deployment.conftest import stage_settings, zappa_snapstart_alias

STAGES = ("dev", "prod")
WORKER_STAGES = ("dev_worker", "prod_worker")
TEMPLATE = ROOT / "infrastructure" / "sessions-table.yaml"


def _policy(stage: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / stage_settings(stage)["attach_policy"]).read_text()
    )
    return document


def _grants(stage: str) -> list[tuple[str, str]]:
    """Every (action, resource pattern) the stage's policy allows."""
    pairs = []
    for statement in _policy(stage)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        resources = statement["Resource"]
        for action in statement["Action"]:
            for resource in [resources] if isinstance(resources, str) else resources:
                pairs.append((action, resource))
    return pairs


def _allowed(stage: str, action: str, resource: str) -> bool:
    return any(
        granted == action and fnmatch.fnmatchcase(resource, pattern)
        for granted, pattern in _grants(stage)
    )


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_runs_python313_behind_an_iam_authorized_regional_gateway(stage: str) -> None:
    config = stage_settings(stage)
    expected = {
        "runtime": "python3.13",
        "snap_start": "PublishedVersions",
        "architecture": "x86_64",
        "memory_size": 512,
        # No request holds the function past REQUEST_HOLD_SECONDS (25 s, under API
        # Gateway's 29 s); the rest is room to record the outcome.
        "timeout_seconds": 40,
        "iam_authorization": True,
        "endpoint_configuration": ["REGIONAL"],
        "xray_tracing": True,
        "lambda_concurrency": 50,
        # Zappa's keep-warm rule invokes the unqualified function ($LATEST), which SnapStart
        # never serves: API Gateway invokes the SnapStart alias.
        "keep_warm": False,
        "debug": False,
        "use_precompiled_packages": False,
        "slim_handler": False,
        "django_settings": "skymarshal_api.settings",
    }
    assert {key: config.get(key) for key in expected} == expected
    # No Zappa CORS: its OPTIONS mocks would answer "*" beside the app's own preflights
    # (scripts/apigateway_stage.py routes OPTIONS /api/v1/{proxy+} to the app).
    assert "cors" not in config
    assert "CORS_ALLOWED_ORIGINS" in config["environment_variables"]
    assert {"tests", "local_runtime", "benchmarks", "node_modules", ".local"} <= set(
        config["exclude"]
    )
    # boto3/botocore are bundled (pinned), not left to the Lambda runtime's copy.
    assert not {"boto3", "botocore", "s3transfer"} & set(config["exclude"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_worker_runs_the_same_code_with_capacity_and_time_of_its_own(stage: str) -> None:
    api, worker = stage_settings(stage), stage_settings(f"{stage}_worker")
    assert worker["apigateway_enabled"] is False
    assert worker["keep_warm"] is False
    assert worker["timeout_seconds"] == 900  # Lambda's maximum
    assert worker["lambda_concurrency"] == 20
    assert worker["attach_policy"] == f"infrastructure/lambda-policy-{stage}-worker.json"
    assert worker["callbacks"] == {
        "zip": api["callbacks"]["zip"],
        "post": "scripts.run_worker.zappa_post_deploy",
    }
    # The same code and settings but for the run's deadline and the task's timeout.
    # The sweeper is a scheduled event of the API function alone.
    assert worker["events"] == []
    assert [e["function"] for e in api["events"]] == ["invocations.sweeper.runs_sweep_event"]
    same = {"attach_policy", "callbacks", "environment_variables", "lambda_description", "events"}
    same |= {"apigateway_enabled", "keep_warm", "timeout_seconds", "lambda_concurrency"}
    assert {k: v for k, v in worker.items() if k not in same} == {
        k: v for k, v in api.items() if k not in same
    }
    api_env, worker_env = api["environment_variables"], worker["environment_variables"]
    assert api_env["RUN_WORKER_FUNCTION"] == worker_env["RUN_WORKER_FUNCTION"]
    # Zappa's task invokes the function it is given by name: naming the worker's SnapStart
    # alias is what makes runs start from its snapshot instead of initializing $LATEST.
    assert (
        api_env["RUN_WORKER_FUNCTION"] == f"skymarshal-api-{stage}-worker:{zappa_snapstart_alias()}"
    )
    deadline = "AGENTCORE_DEADLINE_SECONDS"
    assert {k: v for k, v in worker_env.items() if k != deadline} == {
        **{k: v for k, v in api_env.items() if k != deadline},
        "RUN_TASK_TIMEOUT_SECONDS": str(worker["timeout_seconds"]),
    }
    # A background run may last longer than a synchronous one, and the API function,
    # which accepts runs into a session's queue, measures the queue with the deadline the
    # worker will give them.
    assert float(worker_env["AGENTCORE_DEADLINE_SECONDS"]) > float(
        api_env["AGENTCORE_DEADLINE_SECONDS"]
    )
    assert api_env["RUN_BACKGROUND_DEADLINE_SECONDS"] == worker_env["AGENTCORE_DEADLINE_SECONDS"]


_SNAPSTART_SETTINGS = """
import json, sys
from zappa.cli import ZappaCLI
from zappa.utilities import get_runtime_from_python_version

resolved = {}
for stage in sys.argv[1:]:
    cli = ZappaCLI()
    cli.api_stage = stage
    cli.load_settings("zappa_settings.json")
    resolved[stage] = {
        "runtime": cli.runtime,
        "snap_start": cli.snap_start,
        "apigateway_lambda_qualifier": cli.apigateway_lambda_qualifier,
        "provisioned_concurrency": cli.provisioned_concurrency,
        "lambda_concurrency": cli.lambda_concurrency,
        "ephemeral_storage": cli.ephemeral_storage,
        "efs_config": cli.stage_config.get("efs_config"),
        "num_retained_versions": cli.num_retained_versions,
        "aws_environment_variables": cli.aws_environment_variables,
    }
print(json.dumps(resolved))
"""


def test_snapstart_is_on_for_both_functions_as_zappa_resolves_their_settings() -> None:
    """Lambda SnapStart (Python 3.12 and later managed runtimes) snapshots a published
    version; it does not support provisioned concurrency, Amazon EFS or ephemeral storage
    over 512 MB, and allows reserved concurrency (AWS Lambda Developer Guide, "Improving
    startup performance with Lambda SnapStart", Supported features and limitations).
    Zappa's own settings loader (the one `zappa deploy` runs) resolves each stage."""
    stages = STAGES + WORKER_STAGES
    result = subprocess.run(
        [str(ROOT / ".venv-lambda" / "bin" / "python"), "-c", _SNAPSTART_SETTINGS, *stages],
        cwd=ROOT,
        env=offline_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    alias = zappa_snapstart_alias()
    for stage in stages:
        config = resolved[stage]
        assert config["runtime"] == "python3.13", stage
        assert config["snap_start"] == "PublishedVersions", stage
        # API Gateway invokes the alias Zappa moves to each version once its snapshot is
        # ready, never $LATEST, which SnapStart does not apply to.
        assert config["apigateway_lambda_qualifier"] == alias, stage
        assert config["provisioned_concurrency"] is None, stage
        assert config["lambda_concurrency"] in (50, 20), stage  # reserved: allowed
        assert config["ephemeral_storage"] == {"Size": 512}, stage
        assert config["efs_config"] is None, stage
        # The alias's version must survive Zappa's pruning of old versions.
        assert config["num_retained_versions"] >= 2, stage
        # Zappa's handler builds the app (Django's setup, the URL conf, the models) while
        # the handler module is imported, in the init phase that the snapshot captures,
        # only when this variable is in the function's own environment; otherwise the
        # first request after every restore would pay for it.
        assert config["aws_environment_variables"]["INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT"]


@pytest.mark.parametrize("stage", STAGES + WORKER_STAGES)
def test_the_stage_bakes_in_production_settings_and_no_secret(stage: str) -> None:
    config = stage_settings(stage)
    env = config["environment_variables"]
    assert env["SKYMARSHAL_ENV"] == "production"
    assert env["AUTH_MODE"] == "iam"
    assert env["RESPONSE_MODE"] == "buffered"
    assert {"AGENTCORE_RUNTIME_ARN", "SESSION_TABLE_NAME", "LOG_LEVEL"} <= set(env)
    assert config["aws_region"] == "us-east-1"  # Zappa bakes it in as AWS_REGION
    # A run is recorded before the Lambda timeout can cut it.
    assert float(env["AGENTCORE_DEADLINE_SECONDS"]) + 15 <= config["timeout_seconds"]
    text = (ROOT / "zappa_settings.json").read_text()
    assert "DJANGO_SECRET_KEY" not in text
    # The secret is set by the deploy; the function's own environment holds only what must
    # be known before Zappa's settings are read (test_snapstart_is_on_for_both_functions_...).
    assert config["aws_environment_variables"] == {"INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT": "true"}


@pytest.mark.parametrize("stage", STAGES + WORKER_STAGES)
def test_the_policy_names_no_wildcard_action(stage: str) -> None:
    actions = [action for action, _ in _grants(stage)]
    assert actions
    assert not [action for action in actions if "*" in action or "?" in action]


def _stage_resources(stage: str) -> list[str]:
    """ARNs of everything that belongs to ``stage``: its runtime and endpoint, table and
    index, both functions and their log groups."""
    env = stage_settings(stage)["environment_variables"]
    runtime = env["AGENTCORE_RUNTIME_ARN"]
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{env['SESSION_TABLE_NAME']}"
    resources = [
        runtime,
        f"{runtime}/runtime-endpoint/DEFAULT",
        table,
        f"{table}/index/{USER_SESSIONS_INDEX}",
    ]
    for function in (f"skymarshal-api-{stage}", f"skymarshal-api-{stage}-worker"):
        group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{function}"
        resources += [
            f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
            f"arn:aws:lambda:us-east-1:123456789012:function:{function}:snapstart",
            group,
            f"{group}:log-stream:2026/11/23/[$LATEST]abc",
        ]
    return resources


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_policy_grants_nothing_on_the_other_stage(stage: str) -> None:
    # What each policy must grant, and that it grants nothing more, is derived from the
    # calls the packaged handler makes (tests/deployment/test_iam_policy.py); this keeps
    # the stages apart.
    other = "prod" if stage == "dev" else "dev"
    for function in (stage, f"{stage}_worker"):
        for action, pattern in _grants(function):
            reached = [
                resource
                for resource in _stage_resources(other)
                if fnmatch.fnmatchcase(resource, pattern) and pattern != "*"
            ]
            assert not reached, (function, action, pattern, reached)
    # The worker runs; only the API function is invoked by API Gateway.
    api = f"arn:aws:lambda:us-east-1:123456789012:function:skymarshal-api-{stage}"
    assert not _allowed(f"{stage}_worker", "lambda:InvokeFunction", api)


def test_the_table_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _template() -> dict[str, Any]:
    """The table's template as cfn-lint reads it (CloudFormation's tags included). cfn-lint is
    imported here, not at the top: it imports sympy and networkx (about 0.7 s, and some 800
    modules to compile on a fresh clone), which every test worker would pay to collect."""
    from cfnlint.decode import decode

    template, errors = decode(str(TEMPLATE))
    assert not errors
    assert template is not None
    return dict(template)


def _table_properties() -> dict[str, Any]:
    properties: dict[str, Any] = _template()["Resources"]["SessionsTable"]["Properties"]
    return properties


def _keys(schema: list[dict[str, str]]) -> dict[str, str]:
    return {key["KeyType"]: key["AttributeName"] for key in schema}


def test_the_table_template_matches_the_pynamodb_models() -> None:
    properties = _table_properties()
    schema = SessionInteraction._get_schema()
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(
        schema["attribute_definitions"], key=str
    )
    assert _keys(properties["KeySchema"]) == _keys(schema["key_schema"])
    [template_index] = properties["GlobalSecondaryIndexes"]
    [model_index] = schema["global_secondary_indexes"]
    assert template_index["IndexName"] == model_index["index_name"] == USER_SESSIONS_INDEX
    assert _keys(template_index["KeySchema"]) == _keys(model_index["key_schema"])
    assert template_index["Projection"] == model_index["projection"]
    assert properties["BillingMode"] == SessionInteraction.Meta.billing_mode
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": SessionInteraction._ttl_attribute().attr_name,
        "Enabled": True,
    }


def test_the_table_is_recoverable_and_encrypted() -> None:
    properties = _table_properties()
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["DeletionProtectionEnabled"] is True
    assert _template()["Resources"]["SessionsTable"]["DeletionPolicy"] == "Retain"


def test_the_stage_table_names_follow_the_template() -> None:
    # TableName: !Sub skymarshal-sessions-${Stage}
    assert _table_properties()["TableName"] == {"Fn::Sub": "skymarshal-sessions-${Stage}"}
    for stage in STAGES:
        name = stage_settings(stage)["environment_variables"]["SESSION_TABLE_NAME"]
        assert name == f"skymarshal-sessions-{stage}"
    assert Path(TEMPLATE).is_file()


_CALLBACKS = """
import json, sys
from zappa.cli import ZappaCLI
from zappa.utilities import get_runtime_from_python_version

class Reached(Exception):
    pass

class Session:
    def client(self, name):
        raise Reached(name)

class Core:
    boto_session = Session()

    def get_api_id(self, lambda_name):
        return "a1b2c3d4e5"

for stage in sys.argv[2:]:
    cli = ZappaCLI()
    cli.zappa_settings = json.load(open("zappa_settings.json"))
    cli.zappa, cli.lambda_name, cli.api_stage = Core(), "skymarshal-api-" + stage, stage
    # As ZappaCLI.load_settings sets it, through the stage's "extends".
    cli.runtime = cli.stage_config.get("runtime", get_runtime_from_python_version())
    cli.zip_path = sys.argv[1]
    try:
        cli.callback("post")
    except Reached as reached:
        print(stage, "post callback asked for a client of", reached)
    cli.callback("zip")
"""


def test_zappa_finds_the_callbacks_the_stages_name(tmp_path: Path) -> None:
    # Zappa imports them by path from the project directory, as `zappa deploy` would.
    package = tmp_path / "small.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "")
        for service in (*BOTOCORE_SERVICES_KEPT, "s3", "ec2"):
            archive.writestr(f"botocore/data/{service}/2020-01-01/service-2.json.gz", b"{}")
    result = subprocess.run(
        [
            str(ROOT / ".venv-lambda" / "bin" / "python"),
            "-c",
            _CALLBACKS,
            str(package),
            *STAGES,
            *WORKER_STAGES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for stage in STAGES:
        assert f"{stage} post callback asked for a client of apigateway" in result.stdout
    for stage in WORKER_STAGES:
        assert f"{stage} post callback asked for a client of lambda" in result.stdout
    assert "Pruned 2 unused botocore model files from small.zip" in result.stdout
    # The first stage's callback compiled the one module; the others found it compiled.
    assert "Added the bytecode of 1 modules to small.zip" in result.stdout
    assert "Added the bytecode of 0 modules to small.zip" in result.stdout
    with zipfile.ZipFile(package) as archive:
        assert archive.namelist().count("__pycache__/handler.cpython-313.pyc") == 1
        left = {name.split("/")[2] for name in archive.namelist() if name.startswith("botocore/")}
    assert left == BOTOCORE_SERVICES_KEPT
