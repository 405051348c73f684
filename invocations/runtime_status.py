"""Is the SkyMarshal runtime there? A probe that never invokes it.

Local mode asks the runtime container's own ``GET /ping`` (the AgentCore Runtime container
contract: ``{"status": "Healthy" | "HealthyBusy"}``). AWS mode asks the AgentCore control
plane (GetAgentRuntime) for the runtime's status; the data plane has no unsigned ping.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

logger = logging.getLogger(__name__)

RuntimeState = Literal["up", "busy", "down"]

# GetAgentRuntime statuses: READY serves; an update in progress still serves the old version.
_CONTROL_PLANE_STATES: dict[str, RuntimeState] = {"READY": "up", "UPDATING": "busy"}


@dataclass(frozen=True)
class RuntimeStatus:
    state: RuntimeState
    reason: str


def runtime_status_get() -> RuntimeStatus:
    """The runtime's state; never raises (a failure to ask is itself the answer ``down``)."""
    if settings.AGENTCORE_MODE == "local":
        return _local_ping(runtime_ping_url(settings.AGENTCORE_WS_URL))
    if not settings.AGENTCORE_RUNTIME_ARN:
        return RuntimeStatus("down", "AGENTCORE_RUNTIME_ARN is not set")
    return _control_plane_status(settings.AGENTCORE_RUNTIME_ARN)


def runtime_ping_url(ws_url: str) -> str:
    """The container's /ping URL beside its WebSocket URL (ws://host:port/ws → http://…/ping)."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/ping", "", ""))


def _local_ping(url: str) -> RuntimeStatus:
    if urlsplit(url).scheme not in ("http", "https"):
        return RuntimeStatus("down", "AGENTCORE_WS_URL is not a ws:// or wss:// URL")
    try:
        with urllib.request.urlopen(  # noqa: S310 (scheme checked above)  # nosec B310
            url, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS
        ) as response:
            body: Any = json.loads(response.read(4096))
    except (OSError, ValueError) as exc:
        logger.warning("Runtime /ping failed: %s", exc)
        return RuntimeStatus("down", "the runtime did not answer /ping")
    status = body.get("status") if isinstance(body, dict) else None
    if status == "Healthy":
        return RuntimeStatus("up", "Healthy")
    if status == "HealthyBusy":
        return RuntimeStatus("busy", "HealthyBusy")
    logger.warning("Runtime /ping answered an unknown status: %r", status)
    return RuntimeStatus("down", "the runtime answered /ping with an unknown status")


@cache
def _control_plane_client() -> Any:
    import boto3

    return boto3.client(
        "bedrock-agentcore-control",
        region_name=settings.AWS_REGION,
        config=Config(
            connect_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
            read_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def control_plane_client_reset() -> None:
    """Drop the control plane's client and its credentials (after a SnapStart restore)."""
    _control_plane_client.cache_clear()


def runtime_id_from_arn(runtime_arn: str) -> str:
    """``arn:aws:bedrock-agentcore:REGION:ACCOUNT:runtime/ID`` → ``ID``."""
    resource = runtime_arn.split(":", 5)[-1]
    kind, _, runtime_id = resource.partition("/")
    if kind != "runtime" or not runtime_id:
        raise ValueError(f"not an AgentCore runtime ARN: {runtime_arn!r}")
    return runtime_id


def _control_plane_status(runtime_arn: str) -> RuntimeStatus:
    try:
        response = _control_plane_client().get_agent_runtime(
            agentRuntimeId=runtime_id_from_arn(runtime_arn)
        )
    except (BotoCoreError, ClientError, ValueError) as exc:
        logger.warning("GetAgentRuntime failed: %s", exc)
        return RuntimeStatus("down", "the AgentCore control plane did not report the runtime")
    status = str(response.get("status", "UNKNOWN"))
    return RuntimeStatus(_CONTROL_PLANE_STATES.get(status, "down"), status)
