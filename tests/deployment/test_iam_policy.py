"""Each function's IAM policy grants exactly what its AWS calls need.

The calls are not written down by hand: they are recorded at the AWS boundary of the
packaged handler (scripts/lambda_invoke.py, SKYMARSHAL_AWS_CALLS_FILE: every botocore
operation, boto3's and PynamoDB's, and the AgentCore WebSocket handshake, which is signed
by bedrock-agentcore's AgentCoreRuntimeClient and is not a botocore operation) while a
scenario drives every path each function has, in AGENTCORE_MODE=aws as deployed:

- the API function (``skymarshal-api-STAGE``): health (GetAgentRuntime, DescribeTable), a
  synchronous invoke with an Idempotency-Key (the WebSocket), identity, a background
  submit (its dispatch is a Lambda Invoke of the worker), the run's status, wait, events,
  a cancel of a finished, a running and a queued run, a synchronous run refused on a busy
  session (``on_conflict: enqueue`` may not wait behind API Gateway; in a second warm
  container), a session's history, the sessions list;
- the worker function (``skymarshal-api-STAGE-worker``, the same package with the
  worker's function name and task timeout): a run to completion, a run cancelled while
  running (StopRuntimeSession), a run queued behind another that hands over to a fresh
  invocation of the worker (a Lambda Invoke) and then has its turn, a run whose worker
  died mid-run, ended as lost when its task is delivered again.

What cannot run here stands in at its boundary: DynamoDB Local for DynamoDB, a local
runtime for AgentCore's WebSocket (the handshake is signed for AgentCore, then sent to it),
one local HTTP server for Lambda Invoke, GetAgentRuntime and StopRuntimeSession
(tests/deployment/aws_standins.py).

Each recorded call is mapped to its IAM actions and resources through
tests/deployment/iam_calls.py's table (from the Service Authorization Reference); the
stage's resources come from zappa_settings.json. The policy of each function of each stage
must grant every one of them and nothing else, except what AWS itself does with the role,
which no code of ours calls and so no recording can see (``ROLE_GRANTS``):

- logs:CreateLogGroup, CreateLogStream, PutLogEvents on the function's own log group:
  Lambda writes the function's stdout/stderr to CloudWatch Logs with the execution role
  (AWS Lambda Developer Guide, "Lambda execution role"; AWSLambdaBasicExecutionRole grants
  the same three).
- xray:PutTraceSegments, PutTelemetryRecords on "*": with Active tracing, the X-Ray daemon
  that Lambda runs beside the function sends the segments our code writes to it over UDP,
  with the execution role (AWSXRayDaemonWriteAccess); X-Ray's actions take no resource.
- lambda:InvokeFunction on the API function itself, for the API function only: Zappa sets
  the API Gateway integration's credentials to the function's role (zappa/core.py,
  ``integration.Credentials = self.credentials_arn``), so API Gateway calls the function
  with this role. With ``snap_start`` its integration invokes the SnapStart alias
  (``function:NAME:snapstart``, zappa/core.py ``_get_qualified_lambda_arn``), and an
  invocation of an alias is authorized on the alias's ARN.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import ROOT, Server, start_local_runtime
from tests.deployment.aws_standins import AwsStandIn, aws_standin
from tests.deployment.conftest import lambda_environment, stage_settings, zappa_snapstart_alias
from tests.deployment.events import iam_identity, response_json, rest_event
from tests.deployment.iam_calls import (
    Call,
    Stage,
    UnknownCall,
    call_resources_check,
    calls_read,
    policy_check,
    policy_grants,
)

PROMPT = "Flight BA117 LHR-JFK delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"
WEBSOCKET = "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream"
STAGES = ("dev", "prod")

# The scenario takes about a minute on an idle machine; four Lambda containers importing
# the package on a loaded one take far longer.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def role_grants(function: str, settings: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What AWS does with ``function``'s role (see the module docstring)."""
    stage = Stage.from_settings(settings)
    # CloudWatch Logs evaluates its actions on the log group's ARN with a trailing ":*"
    # (CloudWatch Logs User Guide, "Overview of managing access permissions to your
    # CloudWatch Logs resources"), PutLogEvents on the log stream's.
    group = f"arn:aws:logs:{stage.region}:{stage.account}:log-group:/aws/lambda/{function}:*"
    stream = f"{group[:-2]}:log-stream:2026/11/23/[$LATEST]0123456789abcdef"
    why_logs = "Lambda writes the function's logs"
    why_xray = "Lambda's X-Ray daemon sends the traces"
    grants = [
        ("logs:CreateLogGroup", group, why_logs),
        ("logs:CreateLogStream", group, why_logs),
        ("logs:PutLogEvents", stream, why_logs),
        ("xray:PutTraceSegments", "*", why_xray),
        ("xray:PutTelemetryRecords", "*", why_xray),
    ]
    if settings.get("apigateway_enabled", True):
        snap_start = settings.get("snap_start", "None") not in (None, "None")
        invoked = f"{function}:{zappa_snapstart_alias()}" if snap_start else function
        grants.append(
            (
                "lambda:InvokeFunction",
                stage.function_arn(invoked),
                "API Gateway invokes the function with its role (Zappa's integration)",
            )
        )
    return grants


def _policy(stage: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / stage_settings(stage)["attach_policy"]).read_text()
    )
    return document


def _get(api: LambdaProcess, path: str, **query: str) -> dict[str, Any]:
    return api.invoke(rest_event("GET", path, query=query or None, identity=iam_identity()))


def _status(api: LambdaProcess, request_id: str) -> str:
    return str(response_json(_get(api, f"/api/v1/invocations/{request_id}"))["status"])


def _submit(api: LambdaProcess, standin: AwsStandIn, body: dict[str, Any]) -> tuple[str, Any]:
    """POST /invocations; the run's id and the task the dispatch sent to the worker."""
    sent = len(standin.invocations())
    accepted = api.invoke(
        rest_event("POST", "/api/v1/invocations", body=body, identity=iam_identity())
    )
    assert accepted["statusCode"] == 202, accepted
    [task] = standin.invocations()[sent:]
    return str(response_json(accepted)["request_id"]), task


def _until(condition: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def recorded(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Drive every path of both functions through the packaged handler; the calls each
    function made, and what the stand-in services received."""
    files = tmp_path_factory.mktemp("aws-calls")
    hanging = start_local_runtime(
        "--fault", "hang-mid-stream", "--fault-after", "2", log_dir=log_dir
    )
    processes: list[LambdaProcess] = []

    def container(function: str, runtime: Server, **extra: str) -> LambdaProcess:
        process = LambdaProcess(
            lambda_package_dir,
            {
                **lambda_environment(dynamodb_local, local_runtime),
                "AGENTCORE_MODE": "aws",  # as deployed (production's default)
                **standin.environment(),
                "SKYMARSHAL_AGENTCORE_WS_STANDIN": runtime.ws_url,
                "SKYMARSHAL_AWS_CALLS_FILE": str(files / f"{function}.jsonl"),
                "AWS_LAMBDA_FUNCTION_NAME": f"skymarshal-api-dev{function.removeprefix('api')}",
                **extra,
            },
            log_path=log_dir / f"iam-{function}-{len(processes)}.log",
        )
        processes.append(process)
        return process

    with aws_standin() as standin:
        try:
            # A slow first call on a busy machine is not what this test is about.
            api = container("api", local_runtime, HEALTH_DEGRADED_LATENCY_MS="60000")
            second_api = container("api", local_runtime)  # another warm container
            # The worker's task timeout (the dev package bakes in the API's deadline of
            # 25 s): a run queued behind another waits 1 s, then hands over.
            worker_env = {"RUN_TASK_TIMEOUT_SECONDS": "36"}
            worker = container("worker", local_runtime, **worker_env)
            # Its claim on a run lapses after 2 s, so that once it is killed mid-run (a
            # crashed or timed-out Lambda) a redelivery may end the run as lost.
            stalled_worker = container("worker", hanging, RUN_TASK_TIMEOUT_SECONDS="2")

            health = api.invoke(rest_event("GET", "/api/v1/health"))
            assert health["statusCode"] == 200, health
            checks = response_json(health)["checks"]
            assert checks["agentcore"]["status"] == "healthy", checks

            invoked = api.invoke(
                rest_event(
                    "POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=iam_identity()
                )
            )
            assert invoked["statusCode"] == 200, invoked
            session_id = response_json(invoked)["session_id"]
            keyed = rest_event(
                "POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=iam_identity()
            )
            keyed["headers"]["Idempotency-Key"] = "iam-policy-scenario-1"
            keyed["multiValueHeaders"]["Idempotency-Key"] = ["iam-policy-scenario-1"]
            for _ in range(2):  # the second is a replay
                assert api.invoke(keyed)["statusCode"] == 200
            assert _get(api, "/api/v1/identity")["statusCode"] == 200

            # A background run, to completion.
            done_id, task = _submit(api, standin, {"prompt": PROMPT})
            worker.invoke(task)
            assert _status(api, done_id) == "succeeded"
            assert (
                _get(api, f"/api/v1/invocations/{done_id}/wait", timeout="1")["statusCode"] == 200
            )
            for follow in ("false", "true"):
                events = _get(api, f"/api/v1/invocations/{done_id}/events", follow=follow)
                assert events["statusCode"] == 200, events
            finished = api.invoke(
                rest_event("DELETE", f"/api/v1/invocations/{done_id}", identity=iam_identity())
            )
            assert finished["statusCode"] == 409, finished
            assert _get(api, f"/api/v1/sessions/{session_id}")["statusCode"] == 200
            assert _get(api, "/api/v1/sessions", active="true")["statusCode"] == 200

            # A run that stalls on the runtime, cancelled while it runs.
            stalled_id, stalled_task = _submit(api, standin, {"prompt": PROMPT})
            stalled = threading.Thread(target=stalled_worker.invoke, args=(stalled_task,))
            stalled.start()
            _until(lambda: _status(api, stalled_id) == "running", "the run to start")
            stalled_session = response_json(_get(api, f"/api/v1/invocations/{stalled_id}"))[
                "session_id"
            ]

            # A run queued behind it: its task waits its turn, then hands over.
            queued_id, queued_task = _submit(
                api,
                standin,
                {"prompt": PROMPT, "session_id": stalled_session, "on_conflict": "enqueue"},
            )
            handed_over = len(standin.invocations())
            worker.invoke(queued_task)
            [handover_task] = standin.invocations()[handed_over:]
            assert _status(api, queued_id) == "queued"

            # A synchronous run may not wait behind API Gateway: refused at once, in the
            # other API container, with when to try again.
            body = {"prompt": PROMPT, "session_id": stalled_session, "on_conflict": "enqueue"}
            refused = second_api.invoke(
                rest_event("POST", "/api/v1/invoke", body=body, identity=iam_identity())
            )
            assert refused["statusCode"] == 409, refused
            assert response_json(refused)["error_code"] == "SESSION_BUSY"
            assert int(refused["headers"]["Retry-After"]) >= 1

            # The running run cancelled: its worker stops the runtime session; the queued
            # run's next task then has its turn (a transaction that checks the runs ahead of
            # it have ended) and runs to the end.
            cancelled = api.invoke(
                rest_event("DELETE", f"/api/v1/invocations/{stalled_id}", identity=iam_identity())
            )
            assert cancelled["statusCode"] in (200, 202), cancelled
            stalled.join(20)
            assert not stalled.is_alive(), "the cancelled run's worker did not return"
            assert _status(api, stalled_id) == "cancelled"
            worker.invoke(handover_task)
            assert _status(api, queued_id) == "succeeded"

            # A queued run cancelled before any worker took it.
            waiting_id, _ = _submit(api, standin, {"prompt": PROMPT})
            cancelled = api.invoke(
                rest_event("DELETE", f"/api/v1/invocations/{waiting_id}", identity=iam_identity())
            )
            assert cancelled["statusCode"] == 200, cancelled
            assert _status(api, waiting_id) == "cancelled"

            # A run whose worker dies mid-run: Lambda delivers the task again, and the run
            # is ended as lost (WORKER_LOST) by the next invocation.
            lost_id, lost_task = _submit(api, standin, {"prompt": PROMPT})

            def run_and_die() -> None:
                with contextlib.suppress(RuntimeError):  # killed below
                    stalled_worker.invoke(lost_task)

            dying = threading.Thread(target=run_and_die)
            dying.start()
            _until(lambda: _status(api, lost_id) == "running", "the doomed run to start")
            stalled_worker.process.kill()
            dying.join(20)
            time.sleep(2.5)  # its claim lapses
            worker.invoke(lost_task)
            lost = response_json(_get(api, f"/api/v1/invocations/{lost_id}"))
            assert lost["status"] == "failed", lost
            assert lost["error"]["error_code"] == "WORKER_LOST", lost

            # The sweeper, a scheduled event of the API function: it reads the minutes that
            # passed, and forgets the deadline of a run that has ended (filed here in a past
            # minute, as if the run had been slow to be read).
            _deadline_file_in_the_past(package_table, dynamodb_local, done_id)
            swept = api.invoke(
                {
                    "detail-type": "Scheduled Event",
                    "resources": [
                        "arn:aws:events:us-east-1:123456789012:rule/"
                        "skymarshal-api-dev-invocations.sweeper.runs_sweep_event"
                    ],
                }
            )
            assert swept["minutes"] >= 1, swept
        finally:
            for process in processes:
                process.stop()
            hanging.stop()
        yield {
            "api": calls_read(files / "api.jsonl"),
            "worker": calls_read(files / "worker.jsonl"),
            "standin": [request["api"] for request in standin.requests],
        }


def _deadline_file_in_the_past(table: str, dynamodb: Server, request_id: str) -> None:
    from sessions.models import sessions_table_bind
    from sessions.services import run_deadline_item

    sessions_table_bind(table_name=table, endpoint_url=dynamodb.http_url)
    try:
        run_deadline_item(request_id, int(time.time() * 1000) - 10 * 60_000).save()
    finally:
        sessions_table_bind()


def _ops(calls: set[Call]) -> set[str]:
    return {str(call) for call in calls}


def test_the_scenario_reaches_every_aws_call_of_both_functions(recorded: dict[str, Any]) -> None:
    api, worker = _ops(recorded["api"]), _ops(recorded["worker"])
    websocket = f"bedrock-agentcore:{WEBSOCKET.split(':')[1]}"
    assert {
        "bedrock-agentcore-control:GetAgentRuntime",
        "dynamodb:DescribeTable",
        websocket,
        "lambda:Invoke",
        "dynamodb:TransactWriteItems",
    } <= api
    assert {websocket, "bedrock-agentcore:StopRuntimeSession", "lambda:Invoke"} <= worker
    assert "bedrock-agentcore:StopRuntimeSession" not in api
    assert {"GetAgentRuntime", "StopRuntimeSession", "Invoke"} <= set(recorded["standin"])
    dev = Stage.from_settings(stage_settings("dev"))
    for function in ("api", "worker"):
        assert call_resources_check(recorded[function], dev) == []


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", ["api", "worker"])
def test_each_policy_grants_exactly_what_its_function_calls(
    recorded: dict[str, Any], stage: str, function: str
) -> None:
    config = stage if function == "api" else f"{stage}_worker"
    settings = stage_settings(config)
    name = f"skymarshal-api-{stage}" + ("-worker" if function == "worker" else "")
    problems = policy_check(
        _policy(config),
        recorded[function],
        Stage.from_settings(settings),
        role_grants(name, settings),
    )
    assert problems == [], "\n".join(problems)


def _without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    changed = copy.deepcopy(policy)
    for statement in changed["Statement"]:
        statement["Action"] = [granted for granted in statement["Action"] if granted != action]
    changed["Statement"] = [statement for statement in changed["Statement"] if statement["Action"]]
    return changed


@pytest.mark.parametrize("function", ["api", "worker"])
def test_a_policy_without_the_websocket_action_fails(
    recorded: dict[str, Any], function: str
) -> None:
    config = "dev" if function == "api" else "dev_worker"
    settings = stage_settings(config)
    name = "skymarshal-api-dev" + ("-worker" if function == "worker" else "")
    policy = _without(_policy(config), WEBSOCKET)
    assert WEBSOCKET not in {action for action, _ in policy_grants(policy)}
    problems = policy_check(
        policy, recorded[function], Stage.from_settings(settings), role_grants(name, settings)
    )
    runtime = settings["environment_variables"]["AGENTCORE_RUNTIME_ARN"]
    assert problems == [
        f"bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream needs {WEBSOCKET} on "
        f"{runtime}: not granted",
        f"bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream needs {WEBSOCKET} on "
        f"{runtime}/runtime-endpoint/DEFAULT: not granted",
    ]


def test_a_new_aws_call_without_a_grant_fails(recorded: dict[str, Any]) -> None:
    settings = stage_settings("dev")
    stage = Stage.from_settings(settings)
    grants = role_grants("skymarshal-api-dev", settings)
    scan = Call("dynamodb", "Scan", (("TableName", stage.table),))
    problems = policy_check(_policy("dev"), recorded["api"] | {scan}, stage, grants)
    assert problems == [f"dynamodb:Scan needs dynamodb:Scan on {stage.table_arn()}: not granted"]

    # A call nobody has looked up yet: the message says what to do.
    send = Call("sqs", "SendMessage", (("QueueUrl", "https://sqs.example/runs"),))
    with pytest.raises(UnknownCall, match=r"sqs:SendMessage .*add it .*lambda-policy"):
        policy_check(_policy("dev"), recorded["api"] | {send}, stage, grants)


def test_a_grant_that_no_call_needs_fails(recorded: dict[str, Any]) -> None:
    settings = stage_settings("dev_worker")
    policy = _policy("dev_worker")
    runtime = settings["environment_variables"]["AGENTCORE_RUNTIME_ARN"]
    policy["Statement"].append(
        {"Effect": "Allow", "Action": ["bedrock-agentcore:InvokeAgentRuntime"], "Resource": runtime}
    )
    problems = policy_check(
        policy,
        recorded["worker"],
        Stage.from_settings(settings),
        role_grants("skymarshal-api-dev-worker", settings),
    )
    assert problems == [
        f"bedrock-agentcore:InvokeAgentRuntime on {runtime} is granted but no call needs it"
    ]
