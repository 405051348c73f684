"""Cancelling a run in AWS mode also stops its AgentCore Runtime session
(StopRuntimeSession, a control call that cannot run here: botocore's Stubber stands in at
the client's boundary)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from invocations import runtime_client

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/skymarshal-Ab12Cd34Ef"
SESSION = "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b"


@pytest.fixture
def data_plane(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.AGENTCORE_MODE = "aws"
    settings.AGENTCORE_RUNTIME_ARN = ARN
    runtime_client._agentcore_data_client.cache_clear()
    client = runtime_client._agentcore_data_client(settings.AWS_REGION)
    with Stubber(client) as stubber:
        yield stubber
    runtime_client._agentcore_data_client.cache_clear()


def test_stopping_names_the_runtime_its_endpoint_and_the_session(
    data_plane: Stubber, settings: Any
) -> None:
    settings.AGENTCORE_ENDPOINT_NAME = "production"
    data_plane.add_response(
        "stop_runtime_session",
        {"runtimeSessionId": SESSION, "statusCode": 200},
        {"agentRuntimeArn": ARN, "runtimeSessionId": SESSION, "qualifier": "production"},
    )
    runtime_client.runtime_session_stop(SESSION)
    data_plane.assert_no_pending_responses()


def test_a_failed_stop_does_not_fail_the_cancel(
    data_plane: Stubber, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AGENTCORE_ENDPOINT_NAME = None
    data_plane.add_client_error(
        "stop_runtime_session",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"agentRuntimeArn": ARN, "runtimeSessionId": SESSION},
    )
    runtime_client.runtime_session_stop(SESSION)
    data_plane.assert_no_pending_responses()
    assert "StopRuntimeSession failed" in caplog.text


def test_local_mode_makes_no_call(settings: Any) -> None:
    settings.AGENTCORE_MODE = "local"
    runtime_client._agentcore_data_client.cache_clear()
    runtime_client.runtime_session_stop(SESSION)
    assert runtime_client._agentcore_data_client.cache_info().currsize == 0
