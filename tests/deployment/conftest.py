"""The dev stage's Lambda package, built once per test session (or the one `make package`
built, named by SKYMARSHAL_PACKAGE), unzipped, and run as Lambda runs it.

The package is the dev package itself: its baked-in environment (zappa_settings.py) makes
it production (SKYMARSHAL_ENV, AUTH_MODE iam, the table name, allowed hosts). What it does
not bake in comes from the function's own environment on Lambda, and here from the test:
the secret key, and the endpoints of DynamoDB Local and the local runtime in place of AWS's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.package import package_build
from scripts.stack import ROOT, Server
from sessions.models import sessions_table_bind
from sessions.table import sessions_table_ensure
from tests.log_audit import SENT

STAGE = "dev"


def stage_settings(stage: str = STAGE) -> dict[str, Any]:
    """The stage's settings as Zappa resolves them: a stage that ``extends`` another is
    that stage's settings updated with its own (a shallow update, as Zappa's CLI does)."""
    stages = json.loads((ROOT / "zappa_settings.json").read_text())
    settings: dict[str, Any] = dict(stages[stage])
    base = settings.pop("extends", None)
    if base is not None:
        settings = {**stage_settings(base), **settings}
    return settings


def zappa_snapstart_alias() -> str:
    """The alias Zappa keeps on the version whose SnapStart snapshot is ready, and points
    API Gateway at (``SNAPSTART_LAMBDA_ALIAS`` in the Zappa that packages and deploys)."""
    (core,) = (ROOT / ".venv-lambda" / "lib").glob("python3.*/site-packages/zappa/core.py")
    match = re.search(r'^SNAPSTART_LAMBDA_ALIAS = "([^"]+)"$', core.read_text(), re.M)
    assert match, f"{core} no longer names SNAPSTART_LAMBDA_ALIAS"
    return match[1]


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("SKYMARSHAL_PACKAGE")
    if built and Path(built).is_file():
        return Path(built)
    return package_build(STAGE, tmp_path_factory.mktemp("package") / f"skymarshal-api-{STAGE}.zip")


@pytest.fixture(scope="session")
def lambda_package_dir(lambda_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(lambda_package) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="session")
def worker_package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stage's worker package (dev_worker: the same code, its own baked-in
    settings), unzipped: the one `make package` built, or one built now."""
    built = os.environ.get("SKYMARSHAL_WORKER_PACKAGE")
    if built and Path(built).is_file():
        package = Path(built)
    else:
        package = package_build(
            f"{STAGE}_worker", tmp_path_factory.mktemp("package") / "worker.zip"
        )
    target = tmp_path_factory.mktemp("var-task-worker")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="session")
def package_table(dynamodb_local: Server) -> str:
    """The stage's own sessions table (its name is baked into the package), in DynamoDB
    Local."""
    name = str(stage_settings()["environment_variables"]["SESSION_TABLE_NAME"])
    sessions_table_bind(table_name=name, endpoint_url=dynamodb_local.http_url)
    try:
        sessions_table_ensure()
    finally:
        sessions_table_bind()
    return name


def lambda_environment(dynamodb: Server, runtime: Server) -> dict[str, str]:
    """The function's environment on Lambda, with local endpoints in place of AWS's: the
    stage's ``aws_environment_variables`` (Zappa sets them on the function itself) and what
    the deploy adds."""
    return {
        **stage_settings().get("aws_environment_variables", {}),
        "AWS_LAMBDA_FUNCTION_NAME": f"skymarshal-api-{STAGE}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIALAMBDAEXAMPLE000",
        "AWS_SECRET_ACCESS_KEY": "lambda-role-session-secret-example",
        "AWS_SESSION_TOKEN": "lambda-role-session-token-example",
        "AWS_EC2_METADATA_DISABLED": "true",
        "DJANGO_SECRET_KEY": SENT.secret_key_record(secrets.token_urlsafe(50)),
        "AGENTCORE_MODE": "local",
        "AGENTCORE_WS_URL": runtime.ws_url,
        "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
        "HEALTH_CACHE_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def lambda_process(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    log_dir: Path,
) -> Iterator[LambdaProcess]:
    """One warm Lambda container running the package."""
    process = LambdaProcess(
        lambda_package_dir,
        lambda_environment(dynamodb_local, local_runtime),
        log_path=log_dir / "lambda-package.log",
    )
    yield process
    process.stop()
