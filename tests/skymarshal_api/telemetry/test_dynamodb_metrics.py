"""The metrics an instrumented DynamoDB client records per call: botocore's retries of a call
(DynamoDbRetries) and transactions cancelled by a conflicting write (DynamoDbConflicts), from
the answers DynamoDB gives (a stand-in on 127.0.0.1 answering as the DynamoDB API Reference
documents: an InternalServerError 500, which botocore retries, and TransactionCanceledException
with its CancellationReasons)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from skymarshal_api.telemetry.metrics import (
    MetricSample,
    metrics_collect_flush,
    metrics_collect_start,
)
from skymarshal_api.telemetry.observation import dynamodb_client_instrument

_PREFIX = "com.amazonaws.dynamodb.v20120810#"
INTERNAL = (500, {"__type": f"{_PREFIX}InternalServerError", "message": "Internal error"})
OK = (200, {})


def _cancelled(*codes: str) -> tuple[int, dict[str, Any]]:
    return 400, {
        "__type": f"{_PREFIX}TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific "
        f"reasons [{', '.join(codes)}]",
        "CancellationReasons": [{"Code": code} for code in codes],
    }


class StandIn(ThreadingHTTPServer):
    answers: list[tuple[int, dict[str, Any]]]
    targets: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.targets.append(self.headers["X-Amz-Target"])
        status, body = self.server.answers.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "STANDINREQUEST0000000000000000000000000000000000")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def dynamodb() -> Iterator[StandIn]:
    server = StandIn(("127.0.0.1", 0), _Handler)
    server.answers, server.targets = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: StandIn) -> Any:
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="us-east-1",
        aws_access_key_id="AKIDSTANDIN000000000",
        aws_secret_access_key="stand-in-secret",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    dynamodb_client_instrument(client)
    return client


def _transact(client: Any) -> None:
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}},
        ]
    )


def _recorded(call: Any) -> dict[str, list[float]]:
    """Run ``call`` as a request would, and the values of each metric it recorded."""
    metrics_collect_start()
    try:
        call()
    finally:
        samples: list[MetricSample] = metrics_collect_flush()
    values: dict[str, list[float]] = {}
    for sample in samples:
        assert dict(sample.dimensions)["operation"] == "TransactWriteItems"
        values.setdefault(sample.name, []).append(sample.value)
    return values


def test_a_retried_call_that_ends_in_a_conflict_counts_both(dynamodb: StandIn) -> None:
    dynamodb.answers = [INTERNAL, _cancelled("None", "TransactionConflict")]
    client = _client(dynamodb)

    def call() -> None:
        with pytest.raises(botocore.exceptions.ClientError):
            _transact(client)

    values = _recorded(call)
    assert dynamodb.targets == ["DynamoDB_20120810.TransactWriteItems"] * 2
    assert values["DynamoDbCalls"] == [1.0]
    assert values["DynamoDbRetries"] == [1.0]
    assert values["DynamoDbConflicts"] == [1.0]
    assert values["DynamoDbFailures"] == [1.0]


def test_unmet_conditions_are_neither_a_conflict_nor_a_failure(dynamodb: StandIn) -> None:
    dynamodb.answers = [_cancelled("ConditionalCheckFailed")]
    client = _client(dynamodb)

    def call() -> None:
        with pytest.raises(botocore.exceptions.ClientError):
            _transact(client)

    values = _recorded(call)
    assert values["DynamoDbCalls"] == [1.0]
    assert {"DynamoDbRetries", "DynamoDbConflicts", "DynamoDbFailures"}.isdisjoint(values)


def test_a_call_answered_at_once_counts_no_retry(dynamodb: StandIn) -> None:
    dynamodb.answers = [OK]
    values = _recorded(lambda: _transact(_client(dynamodb)))
    assert values["DynamoDbCalls"] == [1.0]
    assert {"DynamoDbRetries", "DynamoDbConflicts", "DynamoDbFailures"}.isdisjoint(values)


def test_retries_are_counted_per_attempt_beyond_the_first(dynamodb: StandIn) -> None:
    dynamodb.answers = [INTERNAL, INTERNAL, OK]
    values = _recorded(lambda: _transact(_client(dynamodb)))
    assert len(dynamodb.targets) == 3
    assert values["DynamoDbRetries"] == [2.0]
    assert "DynamoDbFailures" not in values
