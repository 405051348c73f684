"""The package under SnapStart, simulated: the handler imported as Lambda's init phase runs
it (with the stage's INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT, Django is set up there), the
before-snapshot hooks run, and then environments "restored" from that memory (forks of the
process, scripts/lambda_invoke.py) run the after-restore hooks and serve a request against
DynamoDB Local. What the snapshot holds must not be reused by a restored environment:
connections, clients and their credentials, the X-Ray socket, random state; request ids
must differ between environments restored from the same snapshot.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import Server
from tests.deployment.conftest import lambda_environment
from tests.deployment.events import iam_identity, rest_event
from tests.log_audit import SENT

STATE = "skymarshal_api.snapstart:snapstart_state"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks the Lambda process")


@pytest.fixture(scope="module")
def snapshotted(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    log_dir: Path,
) -> Iterator[tuple[LambdaProcess, dict[str, Any]]]:
    """A Lambda process after its init phase and the before-snapshot hooks, and what it
    holds at the snapshot."""
    process = LambdaProcess(
        lambda_package_dir,
        lambda_environment(dynamodb_local, local_runtime),
        log_path=log_dir / "lambda-snapstart.log",
    )
    try:
        hooks = process.control({"snapshot": True})
        assert hooks >= 1, "the package registered no before-snapshot hook"
        yield process, process.control({"call": STATE})
    finally:
        process.stop()


def _restored(process: LambdaProcess) -> dict[str, Any]:
    """An environment restored from the snapshot: after-restore hooks, one request that
    reads the table, and what it holds then."""
    event = rest_event("GET", "/api/v1/sessions", identity=iam_identity())
    restored: dict[str, Any] = process.control({"fork": {"event": event, "call": STATE}})
    return restored


def test_the_snapshot_holds_the_app_and_its_clients_ready(
    snapshotted: tuple[LambdaProcess, dict[str, Any]],
) -> None:
    _, snapshot = snapshotted
    # Built before the snapshot: every table model's connection and botocore client, and
    # Zappa's client for handing runs to the worker.
    assert None not in snapshot["dynamodb_connections"]
    assert None not in snapshot["dynamodb_clients"]
    assert snapshot["zappa_lambda_client"] is not None


def test_a_restored_environment_serves_from_fresh_connections_clients_and_sockets(
    snapshotted: tuple[LambdaProcess, dict[str, Any]],
) -> None:
    process, snapshot = snapshotted
    restored = _restored(process)
    assert restored["handler"]["statusCode"] == 200, restored["handler"]
    state = restored["call"]
    used = [c for c in state["dynamodb_connections"] if c is not None]
    assert used, "the request made no table call"
    # Nothing of the snapshot's is reused: the models the request used have new
    # connections and clients, the others have none until they are used.
    assert not set(used) & set(snapshot["dynamodb_connections"])
    clients = {c for c in state["dynamodb_clients"] if c is not None}
    assert clients
    assert not clients & set(snapshot["dynamodb_clients"])
    assert state["xray_socket"] != snapshot["xray_socket"]
    assert state["zappa_lambda_client"] not in (None, snapshot["zappa_lambda_client"])
    assert state["boto3_default_session"] is None or (
        state["boto3_default_session"] != snapshot["boto3_default_session"]
    )
    assert state["request_id"] != snapshot["request_id"]
    assert state["random"] != snapshot["random"]


def test_environments_restored_from_one_snapshot_differ_in_random_state_and_request_ids(
    snapshotted: tuple[LambdaProcess, dict[str, Any]],
) -> None:
    process, _ = snapshotted
    first, second = _restored(process)["call"], _restored(process)["call"]
    assert first["request_id"] != second["request_id"]
    # Without a reseed after the restore both would draw the same jitter.
    assert first["random"] != second["random"]


def test_a_restored_environments_first_invoke_imports_no_module(
    snapshotted: tuple[LambdaProcess, dict[str, Any]],
) -> None:
    """Everything an invocation imports is in the snapshot: a restored environment's first
    invoke (after its after-restore hooks) adds no module to what the snapshot held."""
    process, snapshot = snapshotted
    prompt = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"
    SENT.prompt_record(prompt)  # sent in an event, not over HTTP: the log audit's to know
    event = rest_event("POST", "/api/v1/invoke", body={"prompt": prompt}, identity=iam_identity())
    restored = process.control({"fork": {"event": event, "call": STATE}})
    assert restored["handler"]["statusCode"] == 200, restored["handler"]
    assert sorted(set(restored["call"]["modules"]) - set(snapshot["modules"])) == []
