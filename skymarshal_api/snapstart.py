"""Lambda SnapStart runtime hooks (the ``snapshot-restore-py`` library).

With ``snap_start`` on (zappa_settings.json), Lambda runs the function's init phase once
when a version is published, snapshots the execution environment's memory, and resumes
every new execution environment of that version from the snapshot. Zappa's handler builds
the app in that init phase (``INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT``); these hooks decide
what else the snapshot holds and what a restored environment must not reuse:

- **before the snapshot** (``snapshot_prepare``): what the first request would otherwise
  build: the URL resolver, the DRF serializers' fields, the table models' botocore client
  (DynamoDB's service model and endpoints), Zappa's asynchronous task client, and on AWS
  the AgentCore clients. No request leaves the function.
- **after a restore** (``restore_refresh``): every environment restored from one snapshot
  starts with the same memory, so anything that must be unique or fresh is made again:
  the table connections (botocore sessions, their credentials and connection pools; the
  table's client is created again in the hook, not by the first request), the
  AgentCore clients, boto3's default session and Zappa's Lambda client (credentials), the
  UDP socket to the X-Ray daemon, the health report cache (its clock), and the ``random``
  module's state, which would otherwise give every restored environment the same jitter.
  Request ids (uuid4) and secrets come from ``os.urandom``, which Lambda keeps unique
  across restores.

AWS Lambda Developer Guide: "Lambda SnapStart runtime hooks for Python" (before-snapshot
hooks run in the reverse order of registration, after-restore hooks in the order of
registration; an after-restore hook must finish within 10 s) and "Handling uniqueness with
Lambda SnapStart".
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_registered = threading.Lock()
_done = False
# What snapstart_state reported, kept alive so that a new object cannot take an old one's id.
_observed: list[Any] = []


def snapstart_hooks_register() -> None:
    """Register the hooks with the runtime (once per process; the app's ``ready``)."""
    global _done
    with _registered:
        if _done:
            return
        from snapshot_restore_py import register_after_restore, register_before_snapshot

        register_before_snapshot(snapshot_prepare)
        register_after_restore(restore_refresh)
        _done = True


def snapshot_prepare() -> None:
    """Build, before the snapshot, what the first request would otherwise build."""
    from django.conf import settings
    from django.urls import get_resolver

    from invocations import serializers as invocation_serializers
    from invocations.representation import API_URLCONF
    from sessions import serializers as session_serializers
    from sessions.models import sessions_connections_warm
    from skymarshal_api.limits.rate_limits import rate_limit_counter_load
    from skymarshal_api.web import serializers as api_serializers

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 - imports the URL conf and every view module
    resolver._populate()
    # A run's links are reversed against the API's own routes (invocations/representation.py).
    get_resolver(API_URLCONF)._populate()
    rate_limit_counter_load()
    for module in (api_serializers, invocation_serializers, session_serializers):
        _serializers_warm(module)
    sessions_connections_warm()
    if settings.RUN_EXECUTOR == "lambda":
        import zappa.asynchronous  # noqa: F401 - creates Zappa's task clients
    if settings.AGENTCORE_MODE != "local":
        from invocations.runtime_client import runtime_clients_warm

        runtime_clients_warm()


def _serializers_warm(module: Any) -> None:
    from rest_framework import serializers

    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, serializers.Serializer)
            and value.__module__ == module.__name__
        ):
            try:
                value().fields  # noqa: B018 - builds and caches the declared fields
            except Exception:  # a serializer that needs context: built on first use instead
                logger.debug("Serializer %s not warmed", value.__name__, exc_info=True)


def restore_refresh() -> None:
    """Make again, after a restore, everything that must be unique or fresh."""
    from health.checks import health_cache_clear
    from invocations.runtime_client import runtime_clients_reset
    from invocations.runtime_status import control_plane_client_reset
    from sessions.models import sessions_connections_reset, sessions_connections_warm
    from skymarshal_api.limits.rate_limits import rate_limit_leases_clear
    from skymarshal_api.telemetry.tracing import xray_socket_reset

    # An int seed: a bytes seed goes through SHA-512 (random imports _sha2 for it).
    random.seed(int.from_bytes(os.urandom(32)))
    sessions_connections_reset()
    runtime_clients_reset()
    control_plane_client_reset()
    # The data path's new client now, with this environment's credentials, rather than in
    # the first request (botocore's data is still parsed: only the session and client are
    # new). The health check's own client is left to the first health check.
    sessions_connections_warm(probe=False)
    xray_socket_reset()
    health_cache_clear()
    rate_limit_leases_clear()  # a restored environment has counted nothing yet
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
    tasks: Any = sys.modules.get("zappa.asynchronous")
    if tasks is not None and getattr(tasks, "LAMBDA_CLIENT", None) is not None:
        # Zappa's task sends go through this module-level client unless given a session;
        # a new one is created on the first send (creating it here would add about half
        # a second to every restore for a client most requests never use).
        tasks.LAMBDA_CLIENT = _LazyClient(lambda: tasks.boto3.Session().client("lambda"))


class _LazyClient:
    """A botocore client created, with a new session and credentials, when first used."""

    def __init__(self, create: Callable[[], Any]) -> None:
        self._create = create
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._create()
        return getattr(self._client, name)


def snapstart_state() -> dict[str, Any]:
    """What the hooks act on, for the test that simulates a snapshot and its restores:
    object identities, and values that must differ between restored environments."""
    from invocations import runtime_client, runtime_status
    from sessions.models import TABLE_MODELS
    from skymarshal_api.telemetry import tracing
    from skymarshal_api.telemetry.request_id import new_request_id

    connections = [model._connection for model in TABLE_MODELS]
    tasks: Any = sys.modules.get("zappa.asynchronous")
    boto3: Any = sys.modules.get("boto3")
    xray_socket = tracing._socket()  # as the first traced request opens it
    _observed.extend([*connections, xray_socket, tasks and getattr(tasks, "LAMBDA_CLIENT", None)])
    _observed.extend(c.connection._client for c in connections if c is not None)
    if boto3 is not None:
        _observed.append(boto3.DEFAULT_SESSION)
    return {
        "dynamodb_connections": [id(c) if c is not None else None for c in connections],
        "dynamodb_clients": [
            id(c.connection._client) if c is not None and c.connection._client else None
            for c in connections
        ],
        "agentcore_clients": runtime_client._agentcore_client.cache_info().currsize
        + runtime_client._agentcore_data_client.cache_info().currsize,
        "control_plane_clients": runtime_status._control_plane_client.cache_info().currsize,
        "xray_socket": id(xray_socket),
        "boto3_default_session": id(boto3.DEFAULT_SESSION)
        if boto3 and boto3.DEFAULT_SESSION
        else None,
        "zappa_lambda_client": (
            id(tasks.LAMBDA_CLIENT)
            if tasks is not None and hasattr(tasks, "LAMBDA_CLIENT")
            else None
        ),
        "random": random.random(),  # noqa: S311 - the jitter state, not a secret
        "request_id": new_request_id(),
        "modules": sorted(sys.modules),
    }
