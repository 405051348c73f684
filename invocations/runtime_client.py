"""The SkyMarshal runtime over its WebSocket: the one module that talks to AgentCore Runtime.

AWS mode: the URL and SigV4 headers come from bedrock-agentcore's
``AgentCoreRuntimeClient.generate_ws_connection(runtime_arn, session_id=…)``, minus the
handshake headers it includes (websockets sets those itself and answers HTTP 400 when
they are given twice). Local mode: ``AGENTCORE_WS_URL`` with the
``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`` header. The API's session id is the
runtime session id.

The handshake carries the request's trace as InvokeAgentRuntime takes it (its service
model: the headers traceparent, tracestate, baggage and X-Amzn-Trace-Id), and W3C's three
again as ``X-Amzn-Bedrock-AgentCore-Runtime-Custom-Traceparent`` etc.: AgentCore Runtime
passes the agent only headers of that prefix and those of the runtime's
``requestHeaderAllowlist`` ("Pass custom headers to Amazon Bedrock AgentCore Runtime";
values at most 4 KB), so an agent reads traceparent either way.

Contract: one ``invoke`` message out; ``chunk`` messages, then one ``complete`` or one
``error`` in. The reader is tolerant: a ``complete`` message as design.md writes it (no
``final_decision``, no phases) is completed from the assessment and the chunks
(invocations/run_result.py); a message of an unknown type is skipped, logged and counted
(metric RuntimeMessagesSkipped); whatever follows the terminal message is never read.
Every failure becomes one of our errors:

=====================================  =========================================
could not connect (after 2 retries)     RuntimeConnectionFailed (502)
handshake refused (HTTP 401 or 403)     RuntimeAccessDenied (502), not retried
busy / throttled (HTTP 429 or 503)      RuntimeUnavailable (503, Retry-After)
connection lost mid-stream              RuntimeConnectionFailed (502)
an ``error`` message                    RuntimeFailed (502 RUNTIME_ERROR)
malformed, binary or oversize message   InvalidRuntimeResponse (502)
overall deadline passed                 RuntimeTimeout (504)
=====================================  =========================================

Only connecting is retried (1 s, then 2 s): once the invoke message is sent the run may
have started, and a second one would run it twice. The socket is closed on every path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings
from pydantic import ValidationError
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
)
from websockets.sync.client import ClientConnection, connect

from invocations.run_result import RunResult, run_result_resolve
from invocations.wire import (
    KNOWN_TYPES,
    ChunkData,
    ChunkMessage,
    CompleteMessage,
    ErrorMessage,
    InvokeMessage,
    InvokePayload,
    RuntimeMessage,
    UnknownMessage,
)
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import (
    InvalidRuntimeResponse,
    RuntimeAccessDenied,
    RuntimeConnectionFailed,
    RuntimeFailed,
    RuntimeTimeout,
    RuntimeUnavailable,
)

logger = logging.getLogger(__name__)

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
# Headers of the WebSocket handshake itself: websockets writes its own.
_HANDSHAKE_HEADERS = frozenset(
    {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "user-agent"}
)
_BUSY_STATUSES = frozenset({429, 503})
_DENIED_STATUSES = frozenset({401, 403})
_MAX_RUNTIME_MESSAGE = 500
_ABORT_CLOSE_TIMEOUT = 0.5
# The agents whose last result a run keeps to derive what a complete message leaves out.
_MAX_AGENTS_KEPT = 64
_MAX_LOGGED_TYPE = 64


@dataclass(frozen=True)
class RuntimeTarget:
    url: str
    headers: dict[str, str]


@dataclass
class RunStats:
    connect_attempts: int = 0
    first_chunk_ms: float | None = None
    chunks: int = 0
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def _agentcore_client(region: str) -> Any:
    from bedrock_agentcore.runtime import AgentCoreRuntimeClient

    return AgentCoreRuntimeClient(region)


def runtime_target(
    session_id: str, trace_headers: Mapping[str, str] | None = None
) -> RuntimeTarget:
    """Where to connect for ``session_id``, and with which headers: the session's, and
    ``trace_headers`` (``TraceContext.propagation_headers``) to carry the trace. In AWS
    mode these go after the SigV4 signature, unsigned, as the SDK adds the session header:
    SigV4 requires only host and x-amz-date to be signed, and X-Amzn-Trace-Id must not be
    (botocore leaves it out of every signature, since X-Ray may rewrite it in transit)."""
    extra = dict(trace_headers or {})
    if settings.AGENTCORE_MODE == "local":
        return RuntimeTarget(settings.AGENTCORE_WS_URL, {SESSION_HEADER: session_id, **extra})
    url, headers = _agentcore_client(settings.AWS_REGION).generate_ws_connection(
        settings.AGENTCORE_RUNTIME_ARN,
        session_id=session_id,
        endpoint_name=settings.AGENTCORE_ENDPOINT_NAME,
    )
    return RuntimeTarget(url, {**handshake_headers_drop(headers), **extra})


@cache
def _agentcore_data_client(region: str) -> Any:
    import boto3

    return boto3.client("bedrock-agentcore", region_name=region)


def runtime_clients_warm() -> None:
    """Create the AgentCore clients (their service models); no request is sent."""
    _agentcore_client(settings.AWS_REGION)
    _agentcore_data_client(settings.AWS_REGION)


def runtime_clients_reset() -> None:
    """Drop the AgentCore clients (and the credentials they resolved); the next call
    creates them again (after a SnapStart restore, skymarshal_api/snapstart.py)."""
    _agentcore_client.cache_clear()
    _agentcore_data_client.cache_clear()


def runtime_session_stop(session_id: str) -> None:
    """Ask AgentCore Runtime to stop the session's work (a cancelled run); in local mode
    closing the connection is enough. Never raises: the run is cancelled either way."""
    if settings.AGENTCORE_MODE == "local":
        return
    arguments: dict[str, str] = {
        "agentRuntimeArn": settings.AGENTCORE_RUNTIME_ARN or "",
        "runtimeSessionId": session_id,
    }
    if settings.AGENTCORE_ENDPOINT_NAME:
        arguments["qualifier"] = settings.AGENTCORE_ENDPOINT_NAME
    try:
        _agentcore_data_client(settings.AWS_REGION).stop_runtime_session(**arguments)
    except Exception as exc:  # a cancel must not fail because the stop call did
        logger.warning("StopRuntimeSession failed for %s: %s", session_id, type(exc).__name__)


# IAM authorizes the runtime's WebSocket with its own action, on the runtime and on its
# endpoints (Service Authorization Reference: Amazon Bedrock AgentCore).
WEBSOCKET_ACTION = "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream"


def runtime_access_denied(status: int) -> RuntimeAccessDenied:
    """The error for a handshake refused with 401/403, naming what to grant; logged and
    counted (RuntimeAccessDenied), since only a change of the role's policy fixes it."""
    resource = settings.AGENTCORE_RUNTIME_ARN or settings.AGENTCORE_WS_URL
    if settings.AGENTCORE_RUNTIME_ARN and settings.AGENTCORE_ENDPOINT_NAME:
        resource = (
            f"{settings.AGENTCORE_RUNTIME_ARN}/runtime-endpoint/{settings.AGENTCORE_ENDPOINT_NAME}"
        )
    logger.error(
        "The runtime refused the WebSocket handshake (HTTP %s): grant %s on %s",
        status,
        WEBSOCKET_ACTION,
        resource,
    )
    metric_count("RuntimeAccessDenied")
    return RuntimeAccessDenied(
        f"The SkyMarshal runtime refused this API's credentials (HTTP {status}): grant "
        f"{WEBSOCKET_ACTION} on {resource} to the API's role.",
        details={"runtime_status": status, "action": WEBSOCKET_ACTION, "resource": resource},
    )


def handshake_headers_drop(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HANDSHAKE_HEADERS}


class RuntimeRun:
    """One invocation's connection: created connected (``runtime_run_open``), iterated
    for its messages, closed on every path (also when iteration is abandoned)."""

    def __init__(
        self,
        connection: ClientConnection,
        *,
        deadline: float,
        seconds: float,
        stats: RunStats,
    ) -> None:
        self._connection = connection
        self._deadline = deadline
        self._seconds = seconds
        self.stats = stats
        self._started = time.monotonic()
        # Each agent's last chunk with a result, by agent name.
        self._agent_chunks: dict[str, ChunkData] = {}

    def __enter__(self) -> RuntimeRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def abort(self) -> None:
        """Close now (a cancelled run): a runtime that has stopped answering gets a short
        close timeout, not the usual one."""
        self._connection.close_timeout = min(
            self._connection.close_timeout or 0.5, _ABORT_CLOSE_TIMEOUT
        )
        self._connection.close()

    def chunks_then_complete(
        self, *, idle_seconds: float | None = None
    ) -> Iterator[ChunkData | RunResult | None]:
        """Each chunk's data, then the run's result; raises our errors. With
        ``idle_seconds``, ``None`` is yielded whenever the runtime has been silent that
        long (a streaming caller sends a heartbeat then)."""
        try:
            while True:
                message = self._receive(idle_seconds)
                if message is None:
                    yield None
                elif isinstance(message, ChunkMessage):
                    self.stats.chunks += 1
                    if self.stats.first_chunk_ms is None:
                        self.stats.first_chunk_ms = (time.monotonic() - self._started) * 1000
                    self._agent_chunk_keep(message.data)
                    yield message.data
                elif isinstance(message, CompleteMessage):
                    # Nothing after the terminal message is read: the socket is closed.
                    yield run_result_resolve(message.data, self._agent_chunks)
                    return
                elif isinstance(message, UnknownMessage):
                    self._skip(message)
                else:
                    # The runtime's code and message reach the caller; its details (which
                    # may hold an agent's internals) only the log.
                    logger.warning(
                        "Runtime error %s: %s %s",
                        message.error.code,
                        message.error.message,
                        message.error.details,
                    )
                    raise RuntimeFailed(
                        "The SkyMarshal runtime reported an error: "
                        f"{message.error.message[:_MAX_RUNTIME_MESSAGE]}",
                        details={"runtime_error_code": message.error.code},
                    )
        finally:
            self.close()

    def _agent_chunk_keep(self, chunk: ChunkData) -> None:
        if not chunk.partial_result:
            return
        if chunk.agent in self._agent_chunks or len(self._agent_chunks) < _MAX_AGENTS_KEPT:
            self._agent_chunks[chunk.agent] = chunk

    def _skip(self, message: UnknownMessage) -> None:
        self.stats.skipped += 1
        logger.warning(
            "Skipped a runtime message of unknown type %r", message.type[:_MAX_LOGGED_TYPE]
        )
        metric_count("RuntimeMessagesSkipped")

    def complete(self) -> RunResult:
        """Read the whole run and return its result (the buffered call)."""
        for event in self.chunks_then_complete():
            if isinstance(event, RunResult):  # chunks are not needed here
                return event
        raise InvalidRuntimeResponse("The runtime ended the run without a complete message.")

    def _receive(
        self, idle_seconds: float | None = None
    ) -> ChunkMessage | CompleteMessage | ErrorMessage | UnknownMessage | None:
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise runtime_timeout(self._seconds)
            wait = remaining if idle_seconds is None else min(remaining, idle_seconds)
            try:
                raw = self._connection.recv(timeout=wait)
            except TimeoutError:
                if idle_seconds is not None and wait == idle_seconds:
                    return None
                continue
            except ConnectionClosedOK:
                raise InvalidRuntimeResponse(
                    "The runtime closed the connection before the run was complete."
                ) from None
            except ConnectionClosed as exc:
                if isinstance(exc.__cause__, PayloadTooBig) or (exc.sent and exc.sent.code == 1009):
                    raise InvalidRuntimeResponse(
                        "The runtime sent a message larger than "
                        f"{settings.AGENTCORE_MAX_MESSAGE_BYTES} bytes.",
                    ) from None
                raise RuntimeConnectionFailed(
                    "The connection to the SkyMarshal runtime was lost mid-run."
                ) from None
            return _parse(raw)


def runtime_timeout(seconds: float) -> RuntimeTimeout:
    """The run passed its deadline of ``seconds``; when that was the gateway's limit on a
    request rather than the runtime's deadline, the message says how to run longer."""
    message = f"The SkyMarshal runtime did not finish within {seconds:g} s."
    if seconds < settings.AGENTCORE_DEADLINE_SECONDS:
        message += (
            " That is the longest a request may last behind API Gateway; run long "
            "assessments in the background with POST /api/v1/invocations."
        )
    return RuntimeTimeout(message, details={"deadline_seconds": seconds})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse(raw: str | bytes) -> ChunkMessage | CompleteMessage | ErrorMessage | UnknownMessage:
    if not isinstance(raw, str):
        raise InvalidRuntimeResponse(
            "The runtime sent a binary frame; its protocol is JSON in text frames.",
            details={"problem": "binary_frame"},
        )
    try:
        # NaN and Infinity are not JSON: they would break the response and the record.
        document = json.loads(raw, parse_constant=_reject_constant)
        if (
            isinstance(document, dict)
            and isinstance(document.get("type"), str)
            and document["type"] not in KNOWN_TYPES
        ):
            return UnknownMessage.model_validate(document)
        return RuntimeMessage.model_validate({"message": document}).message
    except (ValueError, ValidationError, RecursionError) as exc:
        raise InvalidRuntimeResponse(
            "The runtime sent a message that is not part of its protocol.",
            details={"problem": type(exc).__name__},
        ) from None


class RuntimeConnection:
    """A connection to the runtime on which nothing has been sent yet (``runtime_connect``):
    ``run`` sends the invoke message; ``close`` gives it up (the runtime was asked
    nothing)."""

    def __init__(
        self, connection: ClientConnection, *, deadline: float, seconds: float, stats: RunStats
    ) -> None:
        self._connection = connection
        self._deadline = deadline
        self._seconds = seconds
        self._stats = stats

    def run(self, *, prompt: str, session_id: str) -> RuntimeRun:
        """Send the invoke message: the run to read. Raises RuntimeConnectionFailed when
        the runtime has closed the connection meanwhile; RuntimeTimeout when the run's
        deadline has passed."""
        if time.monotonic() >= self._deadline:
            self._connection.close()
            raise runtime_timeout(self._seconds)
        try:
            self._connection.send(
                InvokeMessage(
                    payload=InvokePayload(prompt=prompt, session_id=session_id)
                ).model_dump_json()
            )
        except ConnectionClosed:
            self._connection.close()
            raise RuntimeConnectionFailed(
                "The SkyMarshal runtime closed the connection before the request was sent."
            ) from None
        return RuntimeRun(
            self._connection, deadline=self._deadline, seconds=self._seconds, stats=self._stats
        )

    def close(self) -> None:
        self._connection.close()


def runtime_run_open(
    *,
    prompt: str,
    session_id: str,
    retry_delays: tuple[float, ...] | None = None,
    seconds: float | None = None,
    since: float | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> RuntimeRun:
    """Connect (``runtime_connect``) and send the invoke message: the run to read, which
    must end ``seconds`` (AGENTCORE_DEADLINE_SECONDS by default) after ``since`` (a
    ``time.monotonic()``; now by default). Raises RuntimeConnectionFailed,
    RuntimeAccessDenied, RuntimeUnavailable, RuntimeTimeout."""
    connection = runtime_connect(
        session_id=session_id,
        retry_delays=retry_delays,
        seconds=seconds,
        since=since,
        trace_headers=trace_headers,
    )
    return connection.run(prompt=prompt, session_id=session_id)


def runtime_connect(
    *,
    session_id: str,
    retry_delays: tuple[float, ...] | None = None,
    seconds: float | None = None,
    since: float | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> RuntimeConnection:
    """Connect for ``session_id``, retrying connection failures only; nothing is sent.
    ``trace_headers`` go with the handshake (see ``runtime_target``). Raises
    RuntimeConnectionFailed, RuntimeAccessDenied, RuntimeUnavailable, RuntimeTimeout."""
    delays = retry_delays if retry_delays is not None else settings.AGENTCORE_RETRY_DELAYS
    seconds = settings.AGENTCORE_DEADLINE_SECONDS if seconds is None else seconds
    deadline = (time.monotonic() if since is None else since) + seconds
    stats = RunStats()
    last_problem = ""
    for attempt in range(len(delays) + 1):
        if attempt:
            time.sleep(min(delays[attempt - 1], max(0.0, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            raise runtime_timeout(seconds)
        stats.connect_attempts += 1
        try:
            target = runtime_target(session_id, trace_headers)
            connection = connect(
                target.url,
                additional_headers=target.headers,
                open_timeout=min(
                    settings.AGENTCORE_OPEN_TIMEOUT_SECONDS, deadline - time.monotonic()
                ),
                close_timeout=settings.AGENTCORE_CLOSE_TIMEOUT_SECONDS,
                max_size=settings.AGENTCORE_MAX_MESSAGE_BYTES,
                proxy=None if settings.AGENTCORE_MODE == "local" else True,
                compression=None,
                # The connection outlives this function; its owner closes it on every path.
                legacy=True,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in _BUSY_STATUSES:
                retry_after = exc.response.headers.get("Retry-After", "1")
                raise RuntimeUnavailable(
                    "The SkyMarshal runtime is busy; retry later.",
                    details={"runtime_status": status},
                    headers={"Retry-After": retry_after if retry_after.isdigit() else "1"},
                ) from None
            if status in _DENIED_STATUSES:
                raise runtime_access_denied(status) from None
            last_problem = f"handshake answered HTTP {status}"
            if status < 500:
                break  # refused for good: retrying cannot help
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # e.g. no AWS credentials, a malformed URL
            # Not a passing network fault: retrying cannot help.
            logger.error("Cannot connect to the runtime: %s: %s", type(exc).__name__, exc)
            last_problem = type(exc).__name__
            break
        else:
            return RuntimeConnection(connection, deadline=deadline, seconds=seconds, stats=stats)
        logger.warning(
            "Runtime connection attempt %s failed: %s", stats.connect_attempts, last_problem
        )
    logger.error("Runtime unreachable after %s attempts: %s", stats.connect_attempts, last_problem)
    raise RuntimeConnectionFailed(
        f"Could not connect to the SkyMarshal runtime after {stats.connect_attempts} attempts.",
        details={"attempts": stats.connect_attempts},
    )
