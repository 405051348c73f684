"""X-Ray on Lambda: the packaged handler, given the invocation's trace header as Lambda
gives it, sends the request as an independent subsegment of Lambda's segment to the daemon
at AWS_XRAY_DAEMON_ADDRESS (here a UDP socket on 127.0.0.1); an unsampled invocation sends
nothing."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.lambda_invoke import LambdaProcess
from scripts.stack import Server
from tests.deployment.conftest import STAGE, lambda_environment
from tests.deployment.events import iam_identity, response_json, rest_event
from tests.xray_daemon import daemon_address, documents_receive

PROMPT = "Flight NZ1 delayed 3 hours at AKL due to a bird strike inspection"


@pytest.fixture(scope="module")
def traced_lambda(
    lambda_package_dir: Path,
    package_table: str,
    dynamodb_local: Server,
    local_runtime: Server,
    log_dir: Path,
    daemon: socket.socket,
) -> Iterator[LambdaProcess]:
    env = lambda_environment(dynamodb_local, local_runtime)
    env["AWS_XRAY_DAEMON_ADDRESS"] = daemon_address(daemon)
    process = LambdaProcess(lambda_package_dir, env, log_path=log_dir / "lambda-traced.log")
    yield process
    process.stop()


def _trace_header(sampled: bool) -> tuple[str, str, str]:
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    parent = os.urandom(8).hex()
    return f"Root={root};Parent={parent};Sampled={int(sampled)}", root, parent


def test_a_sampled_invocation_is_a_subsegment_of_lambdas_segment(
    traced_lambda: LambdaProcess, daemon: socket.socket
) -> None:
    header, root, parent = _trace_header(sampled=True)
    result = traced_lambda.invoke(
        rest_event("POST", "/api/v1/invoke", body={"prompt": PROMPT}, identity=iam_identity()),
        trace_header=header,
    )
    assert result["statusCode"] == 200, result
    request_id = response_json(result)["request_id"]

    [document] = [d for d in documents_receive(daemon, 1.0) if d.get("trace_id") == root]
    assert document["type"] == "subsegment"
    assert document["parent_id"] == parent
    assert document["name"] == f"## POST /{STAGE}/api/v1/invoke"  # the URL the caller used
    assert len(document["id"]) == 16
    assert int(document["id"], 16) >= 0
    assert document["start_time"] < document["end_time"]
    assert document["annotations"]["request_id"] == request_id
    assert document["http"]["response"]["status"] == 200
    names = [child["name"] for child in document["subsegments"]]
    assert names == [
        "DynamoDB UpdateItem",
        "agentcore-runtime-websocket",  # connected while the write-ahead record is written
        "DynamoDB TransactWriteItems",
        "DynamoDB TransactWriteItems",
    ], names
    assert len({child["id"] for child in document["subsegments"]} | {document["id"]}) == 5


def test_an_unsampled_invocation_sends_nothing(
    traced_lambda: LambdaProcess, daemon: socket.socket
) -> None:
    header, _, _ = _trace_header(sampled=False)
    result = traced_lambda.invoke(rest_event("GET", "/api/v1/health"), trace_header=header)
    assert result["statusCode"] == 200, result
    # Nor does an invocation without a trace header (tracing on, but nothing to join).
    result = traced_lambda.invoke(rest_event("GET", "/api/v1/health"))
    assert result["statusCode"] == 200, result
    assert documents_receive(daemon, 1.0) == []


def test_a_callers_traceparent_on_lambda_is_a_segment_of_the_callers_trace(
    traced_lambda: LambdaProcess, daemon: socket.socket
) -> None:
    """A caller's own trace (not Lambda's) is continued: the response's traceparent and the
    request's segment are in it, the caller's span the segment's parent."""
    header, lambda_root, _ = _trace_header(sampled=True)
    trace_id, caller_span = os.urandom(16).hex(), os.urandom(8).hex()
    event = rest_event("GET", "/api/v1/health")
    event["headers"]["traceparent"] = f"00-{trace_id}-{caller_span}-01"
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    result = traced_lambda.invoke(event, trace_header=header)
    assert result["statusCode"] == 200, result
    headers = {name.lower(): value for name, value in result["headers"].items()}
    version, returned_trace, span, flags = headers["traceparent"].split("-")
    assert (version, returned_trace, flags) == ("00", trace_id, "01")

    xray_trace = f"1-{trace_id[:8]}-{trace_id[8:]}"
    received = documents_receive(daemon, 1.0)
    [document] = [d for d in received if d.get("trace_id") == xray_trace]
    assert "type" not in document  # a segment, not a subsegment of Lambda's
    assert (document["id"], document["parent_id"]) == (span, caller_span)
    assert not [d for d in received if d.get("trace_id") == lambda_root]
