"""In AWS mode the runtime check asks the AgentCore control plane (GetAgentRuntime).

The control plane cannot run here, so it is stubbed at its boundary with botocore's
Stubber; DynamoDB is the real DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from django.test import Client

from health.checks import health_cache_clear
from invocations import runtime_status

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/skymarshal-Ab12Cd34Ef"


@pytest.fixture
def control_plane(sessions_table: str, settings: Any) -> Iterator[Stubber]:
    settings.AGENTCORE_MODE = "aws"
    settings.AGENTCORE_RUNTIME_ARN = ARN
    settings.HEALTH_CACHE_SECONDS = 0
    # The DynamoDB check, not under test here, is not cut short by a loaded machine (its
    # first DescribeTable, with a new client, took over the default 2 s under load).
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 30
    health_cache_clear()
    runtime_status._control_plane_client.cache_clear()
    client = runtime_status._control_plane_client()
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    runtime_status._control_plane_client.cache_clear()
    health_cache_clear()


def _runtime(status: str) -> dict[str, Any]:
    return {
        "agentRuntimeArn": ARN,
        "agentRuntimeName": "skymarshal",
        "agentRuntimeId": "skymarshal-Ab12Cd34Ef",
        "agentRuntimeVersion": "3",
        "createdAt": "2026-01-01T00:00:00Z",
        "lastUpdatedAt": "2026-01-01T00:00:00Z",
        "roleArn": "arn:aws:iam::123456789012:role/skymarshal",
        "networkConfiguration": {"networkMode": "PUBLIC"},
        "lifecycleConfiguration": {},
        "status": status,
    }


@pytest.mark.parametrize(
    ("runtime_state", "http_status", "health"),
    [("READY", 200, "healthy"), ("UPDATING", 200, "degraded"), ("CREATE_FAILED", 503, "unhealthy")],
)
def test_runtime_check_uses_get_agent_runtime(
    control_plane: Stubber, runtime_state: str, http_status: int, health: str
) -> None:
    control_plane.add_response(
        "get_agent_runtime", _runtime(runtime_state), {"agentRuntimeId": "skymarshal-Ab12Cd34Ef"}
    )
    response = Client().get("/api/v1/health")
    assert response.status_code == http_status
    assert response.json()["checks"]["agentcore"]["status"] == health
    assert response.json()["checks"]["agentcore"]["message"] == runtime_state


def test_control_plane_error_is_unhealthy(control_plane: Stubber) -> None:
    control_plane.add_client_error(
        "get_agent_runtime", "AccessDeniedException", http_status_code=403
    )
    response = Client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["agentcore"]["status"] == "unhealthy"
