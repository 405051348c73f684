"""The `skymarshal` command against the local stack as `make run` starts it
(scripts.stack), with the development key pair it falls back to on a loopback URL when
the AWS credential chain is empty: its output and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scripts.stack import free_port
from skymarshal_client import cli
from tests.clients.conftest import ClientStack
from tests.log_audit import SENT

PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"
SKYMARSHAL = str(Path(sys.executable).parent / "skymarshal")
# Starting the stack takes a while on a busy machine: the module's first test waits.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


@pytest.fixture(scope="module")
def make_run_api(client_stack: ClientStack) -> str:
    """The API as `make run` starts it (scripts.stack.start_api under gunicorn, on DynamoDB
    Local and the local runtime), shared with the client tests."""
    return client_stack.api.http_url


def skymarshal(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed `skymarshal` command, with an empty AWS credential chain."""
    for arg in args:
        if arg.startswith("Flight"):
            SENT.prompt_record(arg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [SKYMARSHAL, "--url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_invoke_shows_the_agents_then_the_decision(make_run_api: str) -> None:
    result = skymarshal(make_run_api, "invoke", PROMPT)
    assert result.returncode == cli.EXIT_OK, result.stderr
    for agent in ("crew_compliance", "maintenance", "regulatory", "network", "finance"):
        assert agent in result.stderr, result.stderr
    assert "Decision:" in result.stdout
    assert "1. " in result.stdout  # the recommendations, numbered


def test_invoke_json_then_sessions_show(make_run_api: str) -> None:
    result = skymarshal(make_run_api, "invoke", "--json", PROMPT)
    assert result.returncode == cli.EXIT_OK, result.stderr
    answer = json.loads(result.stdout)
    assert answer["final_decision"] in ("approved", "rejected", "conditional")
    shown = skymarshal(make_run_api, "sessions", "show", answer["session_id"])
    assert shown.returncode == cli.EXIT_OK, shown.stderr
    assert f"Session {answer['session_id']}: 1 interaction(s)" in shown.stdout
    assert answer["request_id"] in shown.stdout
    missing = skymarshal(make_run_api, "sessions", "show", str(uuid.uuid4()))
    assert missing.returncode == cli.EXIT_REFUSED, missing.stderr
    assert "SESSION_NOT_FOUND" in missing.stderr


def test_runs_submit_then_wait(make_run_api: str) -> None:
    submitted = skymarshal(make_run_api, "runs", "submit", PROMPT)
    assert submitted.returncode == cli.EXIT_OK, submitted.stderr
    request_id = submitted.stdout.strip()
    waited = skymarshal(make_run_api, "runs", "wait", request_id, "--poll", "1")
    assert waited.returncode == cli.EXIT_OK, waited.stderr
    assert "Decision:" in waited.stdout
    # It has ended: cancelling is refused (409 INVOCATION_FINISHED).
    cancel = skymarshal(make_run_api, "runs", "cancel", request_id)
    assert cancel.returncode == cli.EXIT_REFUSED, cancel.stderr
    assert "INVOCATION_FINISHED" in cancel.stderr
    events = skymarshal(make_run_api, "runs", "events", request_id)
    assert events.returncode == cli.EXIT_OK, events.stderr
    kinds = [json.loads(line)["event"] for line in events.stdout.splitlines()]
    assert kinds[0] == "start"
    assert kinds[-1] == "complete"


def test_whoami_and_the_exit_codes_of_failures(make_run_api: str) -> None:
    whoami = skymarshal(make_run_api, "whoami")
    assert whoami.returncode == cli.EXIT_OK, whoami.stderr
    assert "arn:aws:iam::000000000000:user/skymarshal-developer (sigv4)" in whoami.stdout
    unknown = skymarshal(make_run_api, "runs", "get", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == cli.EXIT_REFUSED
    refused = skymarshal(make_run_api, "invoke", "short")
    assert refused.returncode == cli.EXIT_REFUSED
    assert "INVALID_REQUEST" in refused.stderr
    no_profile = skymarshal(make_run_api, "--profile", "no-such-profile", "whoami")
    assert no_profile.returncode == cli.EXIT_AUTH, no_profile.stderr
    unreachable = skymarshal(f"http://127.0.0.1:{free_port()}", "whoami")
    assert unreachable.returncode == cli.EXIT_UNREACHABLE, unreachable.stderr
    usage = skymarshal(make_run_api, "runs", "wait")
    assert usage.returncode == cli.EXIT_USAGE


def test_a_cancelled_run_exits_7(make_run_api: str) -> None:
    submitted = skymarshal(make_run_api, "runs", "submit", PROMPT)
    request_id = submitted.stdout.strip()
    skymarshal(make_run_api, "runs", "cancel", request_id)
    waited = skymarshal(make_run_api, "runs", "wait", request_id, "--poll", "1")
    # The local runtime is quick: the run may have ended before the cancel reached it.
    assert waited.returncode in (cli.EXIT_CANCELLED, cli.EXIT_OK), waited.stderr
    got = skymarshal(make_run_api, "runs", "get", request_id, "--json")
    status = json.loads(got.stdout)["status"]
    assert waited.returncode == cli.STATUS_EXIT[status]
