"""Background runs on capacity of their own, through the packaged handlers: the API
function (the dev package) hands each run to the worker function (the dev_worker package)
with an asynchronous Invoke, and a stand-in for the Lambda service
(tests/deployment/lambda_service.py) runs the worker's events with its reserved
concurrency, throttling and retries as AWS documents them. Every run reaches a final state;
none is left running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import Server, start_local_runtime
from tests.deployment.conftest import STAGE, lambda_environment, zappa_snapstart_alias
from tests.deployment.events import iam_identity, response_json, rest_event
from tests.deployment.lambda_service import Function, LambdaService

PROMPT = "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"
WORKER = f"skymarshal-api-{STAGE}-worker"
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
# Documented intervals (1 s to 5 min of throttle backoff, 1 and 2 min between retries)
# shrunk to a fiftieth.
TIME_SCALE = 0.02
# Each test starts containers of the packages (a cold start each) and runs of seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


class Api:
    """The API function: one warm container of the dev package, serving API Gateway
    events one at a time (several callers share it through a lock, as Lambda would queue
    them on one container)."""

    def __init__(self, container: LambdaProcess) -> None:
        self.container = container
        self._lock = threading.Lock()

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            return self.container.invoke(
                rest_event(method, path, identity=iam_identity(), **kwargs)
            )

    def submit(self, prompt: str = PROMPT) -> str:
        answer = self.call("POST", "/api/v1/invocations", body={"prompt": prompt})
        assert answer["statusCode"] == 202, answer
        return str(response_json(answer)["request_id"])

    def run(self, request_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/v1/invocations/{request_id}")
        assert answer["statusCode"] == 200, answer
        return response_json(answer)

    def until_final(self, request_ids: list[str], within: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            runs = {request_id: self.run(request_id) for request_id in request_ids}
            if all(run["status"] in FINAL for run in runs.values()):
                return runs
            assert time.monotonic() < deadline, {k: v["status"] for k, v in runs.items()}
            time.sleep(0.5)


@pytest.fixture
def service() -> Iterator[LambdaService]:
    lambda_service = LambdaService(time_scale=TIME_SCALE)
    yield lambda_service
    lambda_service.close()


def _api(
    package_dir: Path,
    dynamodb: Server,
    runtime: Server,
    service: LambdaService,
    log: Path,
    **env: str,
) -> LambdaProcess:
    return LambdaProcess(
        package_dir,
        {
            **lambda_environment(dynamodb, runtime),
            "AWS_ENDPOINT_URL_LAMBDA": service.url,
            # One caller polls ten runs twice a second, and the module's tests share its
            # per-minute count: these tests are about capacity, not the caller's limit.
            "RATE_LIMIT_DEFAULT_PER_WINDOW": "1000000",
            **env,
        },
        log_path=log,
    )


def _worker(
    service: LambdaService,
    package_dir: Path,
    environment: dict[str, str],
    log_dir: Path,
    *,
    reserved_concurrency: int,
) -> None:
    """The worker function in the stand-in: containers of the dev_worker package."""
    started = [0]

    def start() -> LambdaProcess:
        started[0] += 1
        return LambdaProcess(
            package_dir,
            {
                **environment,
                "AWS_LAMBDA_FUNCTION_NAME": WORKER,
                "AWS_ENDPOINT_URL_LAMBDA": service.url,
            },
            log_path=log_dir / f"worker-{started[0]}.log",
        )

    service.function_add(
        Function(
            name=WORKER,
            start_container=start,
            reserved_concurrency=reserved_concurrency,
            aliases=frozenset({zappa_snapstart_alias()}),
        )
    )


@pytest.fixture(scope="module")
def slow_runtime(log_dir: Path) -> Iterator[Server]:
    """Seven agents of 1.2 s: runs of about 8.5 s."""
    server = start_local_runtime("--agent-latency-ms", "1200", log_dir=log_dir)
    yield server
    server.stop()


def test_ten_background_runs_in_flight_leave_the_api_serving_everyone_else(
    lambda_package_dir: Path,
    worker_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    service: LambdaService,
    log_dir: Path,
) -> None:
    # Seven agents of 4 s: runs of about 28 s, longer than ten cold starts of the worker.
    slow_runtime = start_local_runtime("--agent-latency-ms", "4000", log_dir=log_dir)
    environment = lambda_environment(dynamodb_local, slow_runtime)
    _worker(service, worker_package_dir, environment, log_dir, reserved_concurrency=10)
    api = Api(
        _api(lambda_package_dir, dynamodb_local, slow_runtime, service, log_dir / "api-10.log")
    )
    try:
        request_ids = [api.submit() for _ in range(10)]
        deadline = time.monotonic() + 120  # ten cold starts of the worker package
        while True:
            statuses = [api.run(request_id)["status"] for request_id in request_ids]
            if statuses == ["running"] * 10:
                break
            assert set(statuses) <= {"queued", "running"}, "a run ended before all ran"
            assert time.monotonic() < deadline, statuses
            time.sleep(0.2)

        # While the ten runs hold every worker slot, the API answers 50 other requests.
        paths = ["/api/v1/health", "/api/v1/identity", "/api/v1/sessions"]
        paths += [f"/api/v1/invocations/{request_id}" for request_id in request_ids]
        answers = [api.call("GET", paths[i % len(paths)]) for i in range(50)]
        assert [a["statusCode"] for a in answers] == [200] * 50
        assert service.running(WORKER) == 10, "the runs were over before the requests"
        statuses = [api.run(request_id)["status"] for request_id in request_ids]
        assert statuses == ["running"] * 10

        runs = api.until_final(request_ids, within=120)
        assert {run["status"] for run in runs.values()} == {"succeeded"}
        deliveries = service.settled(within=10)
        assert [d.outcome for d in deliveries] == ["succeeded"] * 10
        assert all(d.throttles == 0 for d in deliveries)
        # Each run went to the worker's SnapStart alias, never to $LATEST (which SnapStart
        # never snapshots): RUN_WORKER_FUNCTION names it, as Zappa's task invokes the name.
        assert {d.qualifier for d in deliveries} == {zappa_snapstart_alias()}
    finally:
        api.container.stop()
        slow_runtime.stop()


def test_a_throttled_run_stays_queued_and_completes_once_capacity_frees(
    lambda_package_dir: Path,
    worker_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    slow_runtime: Server,
    service: LambdaService,
    log_dir: Path,
) -> None:
    environment = lambda_environment(dynamodb_local, slow_runtime)
    _worker(service, worker_package_dir, environment, log_dir, reserved_concurrency=1)
    api = Api(
        _api(lambda_package_dir, dynamodb_local, slow_runtime, service, log_dir / "api-thr.log")
    )
    try:
        first = api.submit()
        deadline = time.monotonic() + 60
        while api.run(first)["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        second = api.submit()
        # The second run's event finds the only slot taken: throttled, kept, retried.
        deadline = time.monotonic() + 30
        while service.deliveries[1].throttles < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert api.run(second)["status"] == "queued"

        runs = api.until_final([first, second], within=120)
        assert runs[first]["status"] == runs[second]["status"] == "succeeded"
        assert runs[second]["started_at"] >= runs[first]["finished_at"]
        first_delivery, second_delivery = service.settled(within=10)
        assert first_delivery.outcome == second_delivery.outcome == "succeeded"
        assert second_delivery.throttles >= 2
        assert second_delivery.attempts == 1  # a throttle is not a failed attempt
    finally:
        api.container.stop()


class FailingTransactions:
    """DynamoDB Local behind a proxy that answers the next ``failures`` TransactWriteItems
    calls with DynamoDB's 500 InternalServerError, and passes everything else through."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.failures = failures
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = self.headers.get("X-Amz-Target", "")
                if target.endswith(".TransactWriteItems") and proxy.failed < proxy.failures:
                    proxy.failed += 1
                    answer = json.dumps(
                        {
                            "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                            "message": "Internal server error",
                        }
                    ).encode()
                    self.send_response(500)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                upstream_answer = requests.post(
                    upstream, data=body, headers=dict(self.headers), timeout=30
                )
                self.send_response(upstream_answer.status_code)
                for name in ("Content-Type", "x-amzn-RequestId", "x-amz-crc32"):
                    if name in upstream_answer.headers:
                        self.send_header(name, upstream_answer.headers[name])
                self.send_header("Content-Length", str(len(upstream_answer.content)))
                self.end_headers()
                self.wfile.write(upstream_answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_run_whose_worker_fails_every_attempt_ends_failed_with_the_reason(
    lambda_package_dir: Path,
    worker_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    service: LambdaService,
    log_dir: Path,
) -> None:
    # The worker's table answers its first three transactions (each attempt's start of the
    # run) with 500, and botocore does not retry them: three failed attempts, then the
    # worker's fourth transaction, ending the run, goes through.
    faulty = FailingTransactions(dynamodb_local.http_url, failures=3)
    environment = {
        **lambda_environment(dynamodb_local, local_runtime),
        "DYNAMODB_ENDPOINT_URL": faulty.url,
        "DYNAMODB_MAX_RETRY_ATTEMPTS": "0",
    }
    _worker(service, worker_package_dir, environment, log_dir, reserved_concurrency=2)
    api = Api(
        _api(lambda_package_dir, dynamodb_local, local_runtime, service, log_dir / "api-f.log")
    )
    try:
        request_id = api.submit()
        [run] = api.until_final([request_id], within=60).values()
        assert run["status"] == "failed"
        assert run["error"]["error_code"] == "WORKER_FAILED"
        assert run["error"]["details"]["worker_failures"] == 3
        assert run["error"]["details"]["last_failure"].startswith("STORAGE_UNAVAILABLE: ")
        assert faulty.failed == 3
        [delivery] = service.settled(within=10)
        # Lambda's first attempt and its two retries; the last one ended the run itself.
        assert delivery.attempts == 3
        assert delivery.outcome == "succeeded"
        assert len(delivery.errors) == 2

        history = api.call("GET", f"/api/v1/sessions/{run['session_id']}")
        [interaction] = response_json(history)["interactions"]
        assert interaction["status"] == "error"
        assert interaction["error_message"].startswith("WORKER_FAILED: ")
    finally:
        api.container.stop()
        faulty.close()


def test_a_run_that_cannot_be_dispatched_is_503_and_ends_failed(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    service: LambdaService,
    log_dir: Path,
) -> None:
    # No worker function is deployed: Lambda answers 404 ResourceNotFoundException.
    container = _api(
        lambda_package_dir, dynamodb_local, local_runtime, service, log_dir / "api-d.log"
    )
    api = Api(container)
    try:
        answer = api.call("POST", "/api/v1/invocations", body={"prompt": PROMPT})
        assert answer["statusCode"] == 503, answer
        assert answer["headers"]["Retry-After"] == "5"
        body = response_json(answer)
        assert body["error_code"] == "RUN_DISPATCH_FAILED"
        assert service.rejected == [(404, "ResourceNotFoundException")]
        # The run it recorded was ended, not left queued.
        run = api.run(body["request_id"])
        assert run["status"] == "failed"
        assert run["error"]["error_code"] == "RUN_DISPATCH_FAILED"
    finally:
        container.stop()


def test_the_stand_in_refuses_what_lambda_refuses(service: LambdaService) -> None:
    unsigned = requests.post(
        f"{service.url}/2015-03-31/functions/{WORKER}/invocations",
        data=b"{}",
        headers={"X-Amz-Invocation-Type": "Event"},
        timeout=5,
    )
    assert unsigned.status_code == 403
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(service.settled, 0.1).result() == []
