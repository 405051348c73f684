"""The runtime server: bedrock-agentcore's BedrockAgentCoreApp (the server real AgentCore
agents run in), so ``/ping``, ``/invocations`` and ``/ws`` behave as the AgentCore Runtime
container contract says, with the SkyMarshal simulation behind them.

Fault modes, chosen at start-up, make the runtime misbehave the ways a real one can:

=================  ==========================================================================
refuse             every WebSocket handshake is dropped without an answer (TCP reset)
deny               handshakes are rejected with HTTP 403, as AgentCore answers a caller whose
                   role lacks bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream
busy               handshakes are rejected with HTTP 429 and Retry-After; /ping says
                   HealthyBusy; POST /invocations answers 429
hang-before-first  the request is read, then nothing is sent until the client leaves
hang-mid-stream    ``fault_after`` chunks are sent, then nothing until the client leaves
drop-mid-stream    ``fault_after`` chunks are sent, then the TCP connection is aborted with
                   no close frame
malformed-json     ``fault_after`` chunks, then a text frame that is not JSON, then close 1000
error-message      ``fault_after`` chunks, then one ``error`` message, then close 1000
oversize-frame     ``fault_after`` chunks, then one chunk of ``oversize_bytes``, then close 1000
=================  ==========================================================================

Faults apply to the WebSocket; POST /invocations only honours ``busy``.

Each run logs, as one JSON line (logger ``local_runtime.trace``), the trace context its
request carried (trace_id, parent span id, tracestate, baggage), as a real agent's
OpenTelemetry would continue it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from bedrock_agentcore.runtime.context import BedrockAgentCoreContext, RequestContext
from bedrock_agentcore.runtime.models import PingStatus
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from local_runtime.protocol import InvokeMessage, InvokePayload, error_message
from local_runtime.runs import run_messages
from local_runtime.simulation import SessionMemory

logger = logging.getLogger("local_runtime")
# One JSON line per run with the trace context the runtime received, as an agent's
# OpenTelemetry reads it (``serve`` writes this logger's messages as they are).
TRACE_LOGGER = "local_runtime.trace"
_trace_logger = logging.getLogger(TRACE_LOGGER)
_CUSTOM_PREFIX = "x-amzn-bedrock-agentcore-runtime-custom-"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?")

Fault = Literal[
    "none",
    "refuse",
    "deny",
    "busy",
    "hang-before-first",
    "hang-mid-stream",
    "drop-mid-stream",
    "malformed-json",
    "error-message",
    "oversize-frame",
]
FAULTS: tuple[str, ...] = get_args(Fault)
# The scope extension our uvicorn protocol adds so a handler can abort the TCP connection.
ABORT_EXTENSION = "local_runtime.transport.abort"
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008


@dataclass(frozen=True)
class RuntimeConfig:
    agent_latency_ms: int = 40
    fault: Fault = "none"
    fault_after: int = 2
    oversize_bytes: int = 2 * 1024 * 1024
    retry_after_seconds: int = 1
    request_timeout_seconds: float = 30.0
    hang_seconds: float = 3600.0
    session_capacity: int = 10_000


def app_build(config: RuntimeConfig) -> BedrockAgentCoreApp:
    app = BedrockAgentCoreApp()
    memory = SessionMemory(config.session_capacity)
    if config.fault == "busy":
        app.force_ping_status(PingStatus.HEALTHY_BUSY)

    def session_of(context: RequestContext, payload: InvokePayload) -> str:
        # The header is what AgentCore Runtime sets; a payload id is a fallback for
        # direct callers, and a session is started when neither is given.
        return context.session_id or payload.session_id or str(uuid.uuid4())

    @app.entrypoint
    def invoke(payload: Any, context: RequestContext) -> Any:
        """POST /invocations: the same run as the WebSocket, as Server-Sent Events."""
        if config.fault == "busy":
            return _throttled_response(config)
        try:
            request = InvokePayload.model_validate(payload)
        except ValidationError as exc:
            return JSONResponse(
                {"error": "ValidationException", "details": _validation_details(exc)},
                status_code=400,
            )
        session_id = session_of(context, request)
        if context.request is not None:
            trace_context_log(context.request.headers, session_id=session_id, transport="http")
        return _paced_sync(
            run_messages(
                prompt=request.prompt,
                session_id=session_id,
                request_id=BedrockAgentCoreContext.get_request_id() or str(uuid.uuid4()),
                memory=memory,
            ),
            config,
        )

    @app.websocket
    async def websocket_invoke(websocket: WebSocket, context: RequestContext) -> None:
        if config.fault == "refuse":
            await _refuse(websocket)
            return
        if config.fault == "busy":
            await websocket.send_denial_response(_throttled_response(config))
            return
        if config.fault == "deny":
            await websocket.send_denial_response(_access_denied_response())
            return
        await websocket.accept()
        try:
            raw = await asyncio.wait_for(
                websocket.receive_text(), timeout=config.request_timeout_seconds
            )
            request = InvokeMessage.model_validate_json(raw)
        except TimeoutError:
            await _reject(websocket, "REQUEST_TIMEOUT", "No invoke message was received in time")
            return
        except ValidationError as exc:
            await _reject(
                websocket,
                "INVALID_REQUEST",
                'Expected {"action": "invoke", "payload": {"prompt": …, "session_id": …}}',
                {"errors": _validation_details(exc)},
            )
            return
        except KeyError:
            # A binary frame: receive_text() finds no "text" in the message.
            await _reject(websocket, "INVALID_REQUEST", "Send the invoke message as a text frame")
            return
        session_id = session_of(context, request.payload)
        logger.info("run session=%s fault=%s", session_id, config.fault)
        trace_context_log(websocket.headers, session_id=session_id, transport="websocket")
        messages = run_messages(
            prompt=request.payload.prompt,
            session_id=session_id,
            request_id=BedrockAgentCoreContext.get_request_id() or str(uuid.uuid4()),
            memory=memory,
        )
        await _stream(websocket, messages, config)

    return app


def trace_context_log(
    headers: Mapping[str, str], *, session_id: str, transport: Literal["websocket", "http"]
) -> None:
    """Log the trace context of a run's request: W3C traceparent (or, when AgentCore
    forwarded only its custom-prefixed copy, that), tracestate, baggage, and the X-Ray
    header. A request without a valid traceparent is logged with ``trace_id`` null, as an
    agent's OpenTelemetry would then start a trace of its own."""
    traceparent = headers.get("traceparent") or headers.get(f"{_CUSTOM_PREFIX}traceparent")
    match = _TRACEPARENT.fullmatch(traceparent or "")
    tracestate = headers.get("tracestate") or headers.get(f"{_CUSTOM_PREFIX}tracestate")
    baggage = headers.get("baggage") or headers.get(f"{_CUSTOM_PREFIX}baggage")
    line = {
        "message": "trace context",
        "session_id": session_id,
        "transport": transport,
        "trace_id": match[1] if match else None,
        "parent_span_id": match[2] if match else None,
        "sampled": bool(int(match[3], 16) & 1) if match else None,
        "traceparent": traceparent,
        "tracestate": tracestate,
        "baggage": baggage,
        "xray_trace_header": headers.get("x-amzn-trace-id"),
    }
    _trace_logger.info(json.dumps(line, separators=(",", ":")))


async def _stream(
    websocket: WebSocket, messages: Iterator[dict[str, Any]], config: RuntimeConfig
) -> None:
    started = time.monotonic()
    if config.fault == "hang-before-first":
        await _hang(websocket, config)
        return
    chunks_sent = 0
    for message in messages:
        fault_due = message["type"] == "chunk" and chunks_sent == config.fault_after
        if fault_due and await _misbehave(websocket, message, config):
            return
        if message["type"] == "complete":
            message["data"]["execution_time_ms"] = int((time.monotonic() - started) * 1000)
        await websocket.send_text(json.dumps(message))
        if message["type"] == "chunk":
            chunks_sent += 1
            if message["data"]["status"] == "analyzing":
                await asyncio.sleep(config.agent_latency_ms / 1000)
    await websocket.close(CLOSE_NORMAL)


async def _misbehave(websocket: WebSocket, message: dict[str, Any], config: RuntimeConfig) -> bool:
    """Apply a mid-stream fault in place of ``message``; True when the run ends here."""
    fault = config.fault
    if fault == "hang-mid-stream":
        await _hang(websocket, config)
        return True
    if fault == "drop-mid-stream":
        _abort(websocket)
        return True
    if fault == "malformed-json":
        await websocket.send_text('{"type": "chunk", "data": {"agent": ')
    elif fault == "error-message":
        agent = message["data"]["agent"]
        await websocket.send_text(
            json.dumps(
                error_message(
                    "AGENT_EXECUTION_FAILED",
                    f"Agent {agent} failed: simulated fault",
                    {"agent": agent, "phase": message["data"]["phase"]},
                )
            )
        )
    elif fault == "oversize-frame":
        padded = json.loads(json.dumps(message))
        padded["data"]["partial_result"] = {"padding": "x" * config.oversize_bytes}
        await websocket.send_text(json.dumps(padded))
    else:
        return False
    await _close_quietly(websocket, CLOSE_NORMAL)
    return True


async def _hang(websocket: WebSocket, config: RuntimeConfig) -> None:
    """Send nothing; return when the client goes away (or after ``hang_seconds``)."""
    deadline = time.monotonic() + config.hang_seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=remaining)
        except TimeoutError:
            break
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
    await _close_quietly(websocket, CLOSE_NORMAL)


def _abort(websocket: WebSocket) -> None:
    abort: Callable[[], None] | None = (
        websocket.scope.get("extensions", {}).get(ABORT_EXTENSION, {}).get("abort")
    )
    if abort is None:
        raise RuntimeError(
            "This fault needs the local runtime's uvicorn protocol; start it with "
            "`python -m local_runtime`."
        )
    abort()


async def _refuse(websocket: WebSocket) -> None:
    try:
        _abort(websocket)
    except RuntimeError:
        await websocket.close(CLOSE_POLICY_VIOLATION)


async def _reject(
    websocket: WebSocket, code: str, message: str, details: dict[str, Any] | None = None
) -> None:
    await websocket.send_text(json.dumps(error_message(code, message, details)))
    await _close_quietly(websocket, CLOSE_POLICY_VIOLATION)


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code)


def _paced_sync(messages: Iterator[dict[str, Any]], config: RuntimeConfig) -> Iterator[Any]:
    started = time.monotonic()
    for message in messages:
        if message["type"] == "complete":
            message["data"]["execution_time_ms"] = int((time.monotonic() - started) * 1000)
        yield message
        if message["type"] == "chunk" and message["data"]["status"] == "analyzing":
            time.sleep(config.agent_latency_ms / 1000)


def _throttled_response(config: RuntimeConfig) -> JSONResponse:
    return JSONResponse(
        {"error": "ThrottlingException", "message": "The runtime is busy; retry later"},
        status_code=429,
        headers={"Retry-After": str(config.retry_after_seconds)},
    )


def _access_denied_response() -> JSONResponse:
    return JSONResponse(
        {
            "message": "User is not authorized to perform: "
            "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream"
        },
        status_code=403,
        headers={"x-amzn-ErrorType": "AccessDeniedException"},
    )


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
