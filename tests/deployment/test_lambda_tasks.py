"""Background runs on Lambda: POST /api/v1/invocations in the packaged handler sends the run
as a Zappa asynchronous task (an asynchronous Invoke of the worker function, carrying only
the run's id); a container of the worker's package runs the task; the run is then read back
through the API's handler. The Lambda service itself cannot run here: a local HTTP endpoint
stands in for its Invoke API (AWS_ENDPOINT_URL_LAMBDA) and records what was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import Server
from tests.deployment.conftest import STAGE, lambda_environment, zappa_snapstart_alias
from tests.deployment.events import iam_identity, response_json, rest_event

PROMPT = "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"
# The worker's SnapStart alias (name:alias in the path): never $LATEST, which SnapStart
# does not apply to.
WORKER_INVOKE_PATH = (
    f"/2015-03-31/functions/skymarshal-api-{STAGE}-worker:{zappa_snapstart_alias()}/invocations"
)


@dataclass
class LambdaService:
    url: str
    invocations: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def lambda_service() -> Iterator[LambdaService]:
    service = LambdaService(url="")

    class Invoke(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            service.invocations.append(
                {
                    "path": self.path,
                    "type": self.headers.get("X-Amz-Invocation-Type"),
                    "signed": self.headers.get("Authorization", "").startswith("AWS4-HMAC"),
                    "payload": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(202)  # Invoke, InvocationType Event: accepted
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


def _container(
    package_dir: Path, dynamodb: Server, runtime: Server, service: LambdaService, log: Path
) -> LambdaProcess:
    return LambdaProcess(
        package_dir,
        {**lambda_environment(dynamodb, runtime), "AWS_ENDPOINT_URL_LAMBDA": service.url},
        log_path=log,
    )


def test_a_background_run_is_a_zappa_task_run_by_the_worker_function(
    lambda_package_dir: Path,
    worker_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    lambda_service: LambdaService,
    log_dir: Path,
) -> None:
    api = _container(
        lambda_package_dir, dynamodb_local, local_runtime, lambda_service, log_dir / "api.log"
    )
    worker = _container(
        worker_package_dir, dynamodb_local, local_runtime, lambda_service, log_dir / "task.log"
    )
    try:
        accepted = api.invoke(
            rest_event(
                "POST", "/api/v1/invocations", body={"prompt": PROMPT}, identity=iam_identity()
            )
        )
        assert accepted["statusCode"] == 202, accepted
        run = response_json(accepted)
        request_id = run["request_id"]
        assert run["status"] == "queued"

        # One asynchronous Invoke of the worker function, carrying the run's id only.
        [sent] = lambda_service.invocations
        assert unquote(sent["path"]) == WORKER_INVOKE_PATH
        assert sent["type"] == "Event"
        assert sent["signed"]
        assert sent["payload"]["command"] == "zappa.asynchronous.route_lambda_task"
        assert sent["payload"]["task_path"] == "invocations.background.run_task"
        assert sent["payload"]["args"] == [request_id]
        assert PROMPT not in json.dumps(sent["payload"])

        # Nothing runs it until Lambda delivers the task.
        waiting = api.invoke(
            rest_event("GET", f"/api/v1/invocations/{request_id}", identity=iam_identity())
        )
        assert response_json(waiting)["status"] == "queued"

        worker.invoke(sent["payload"])

        done = api.invoke(
            rest_event("GET", f"/api/v1/invocations/{request_id}", identity=iam_identity())
        )
        assert done["statusCode"] == 200, done
        body = response_json(done)
        assert body["status"] == "succeeded"
        assert body["result"]["request_id"] == request_id
        assert body["result"]["final_decision"] in ("approved", "conditional", "rejected")

        events = api.invoke(
            rest_event(
                "GET",
                f"/api/v1/invocations/{request_id}/events",
                query={"follow": "false"},
                identity=iam_identity(),
            )
        )
        assert events["statusCode"] == 200, events
        names = [
            line.removeprefix("event: ")
            for line in events["body"].splitlines()
            if line.startswith("event: ")
        ]
        assert names[0] == "start"
        assert names[-1] == "complete"
        assert set(names[1:-1]) == {"chunk"}

        # Delivered twice (Lambda retries asynchronous invocations): nothing runs again.
        worker.invoke(sent["payload"])
        again = api.invoke(
            rest_event("GET", f"/api/v1/invocations/{request_id}", identity=iam_identity())
        )
        assert response_json(again) == body
        assert len(lambda_service.invocations) == 1
    finally:
        api.stop()
        worker.stop()


def test_a_run_webhook_is_sent_by_the_worker_function_and_refused_a_loopback_address(
    lambda_package_dir: Path,
    worker_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    lambda_service: LambdaService,
    log_dir: Path,
) -> None:
    """On Lambda the end of a run wakes the worker function (a Zappa task with the run's id
    only), which sends the webhook; in production a URL whose host resolves to a loopback
    address is never connected to, and the refusal is an attempt to retry."""
    # One DJANGO_SECRET_KEY for both functions, as deploy_api.sh sets it: the worker reads
    # the signing secret the API stored (encrypted with a key derived from it).
    env = {
        **lambda_environment(dynamodb_local, local_runtime),
        "AWS_ENDPOINT_URL_LAMBDA": lambda_service.url,
    }
    api = LambdaProcess(lambda_package_dir, env, log_path=log_dir / "api-wh.log")
    worker = LambdaProcess(worker_package_dir, env, log_path=log_dir / "task-wh.log")
    try:
        created = api.invoke(rest_event("POST", "/api/v1/webhook-secrets", identity=iam_identity()))
        assert created["statusCode"] == 201, created
        body = {"prompt": PROMPT, "webhook": {"url": "https://localhost/hook"}}
        answered = api.invoke(
            rest_event("POST", "/api/v1/invoke", body=body, identity=iam_identity())
        )
        assert answered["statusCode"] == 200, answered
        request_id = response_json(answered)["request_id"]

        [sent] = lambda_service.invocations
        assert unquote(sent["path"]) == WORKER_INVOKE_PATH
        assert sent["type"] == "Event"
        assert sent["payload"]["task_path"] == "invocations.webhooks.webhook_task"
        assert sent["payload"]["args"] == [request_id]

        worker.invoke(sent["payload"])

        listed = api.invoke(
            rest_event(
                "GET", f"/api/v1/invocations/{request_id}/deliveries", identity=iam_identity()
            )
        )
        assert listed["statusCode"] == 200, listed
        [delivery] = response_json(listed)["deliveries"]
        assert delivery["event"] == "run.succeeded"
        # At once, then 5 s later (a retry that soon is sent by the same worker); the next
        # one, in 5 minutes, is the sweeper's.
        assert delivery["status"] == "pending"
        assert delivery["next_attempt_at"] is not None
        assert len(delivery["attempts"]) == 2
        for attempt in delivery["attempts"]:
            assert attempt["status_code"] is None
            assert attempt["error"].startswith("refused: the host resolves to a loopback address")
    finally:
        api.stop()
        worker.stop()
