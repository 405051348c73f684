"""The deployment scripts' own checks, which refuse before anything reaches AWS, and the
signed request they make, against a local API server (SigV4 verified by the app itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.stack import ROOT
from tests.conftest import ApiFactory
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET


@pytest.fixture
def fake_aws(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose ``aws`` only records that it was called (no AWS here)."""
    calls = tmp_path / "aws-calls"
    aws = tmp_path / "bin" / "aws"
    aws.parent.mkdir()
    aws.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 99\n')
    aws.chmod(0o755)
    return {**os.environ, "PATH": f"{aws.parent}{os.pathsep}{os.environ['PATH']}"}, calls


def _run(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [(), ("staging",), ("dev", "prod")])
def test_deploy_needs_one_known_stage(args: tuple[str, ...]) -> None:
    result = _run("deploy_api.sh", *args)
    assert result.returncode == 2
    assert "usage: scripts/deploy_api.sh STAGE" in result.stderr


def test_deploy_refuses_the_example_runtime_arn_before_calling_aws(
    fake_aws: tuple[dict[str, str], Path],
) -> None:
    env, calls = fake_aws
    result = _run("deploy_api.sh", "dev", env=env)
    assert result.returncode == 1
    assert "AGENTCORE_RUNTIME_ARN of dev in zappa_settings.json is the example" in result.stderr
    assert not calls.exists()


def test_test_api_refuses_a_url_that_is_not_a_stage() -> None:
    result = _run("test_api.sh", "http://example.com")
    assert result.returncode == 2
    assert "URL must be a stage's https URL" in result.stderr


def test_run_local_is_make_run() -> None:
    text = (ROOT / "scripts" / "run_local.sh").read_text()
    assert 'exec make run RUN_ARGS="$*"' in text


def test_signed_request_signs_with_the_default_credential_chain(
    api_server_factory: ApiFactory,
) -> None:
    api = api_server_factory()
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ACCESS_KEY_ID": DEV_KEY,
        "AWS_SECRET_ACCESS_KEY": DEV_SECRET,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.signed_request", "GET", f"{api.http_url}/api/v1/identity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status, body = result.stdout.split("\n", 1)
    assert status == "200"
    assert json.loads(body)["principal"] == DEV_PRINCIPAL

    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    refused = subprocess.run(
        [sys.executable, "-m", "scripts.signed_request", "GET", f"{api.http_url}/api/v1/identity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stdout.startswith("403\n")
