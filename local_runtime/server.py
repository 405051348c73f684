"""Serving the runtime with uvicorn, with one addition to its WebSocket protocol: the ASGI
scope carries a way to abort the TCP connection, which the ``refuse`` and
``drop-mid-stream`` faults need (ASGI itself can only close politely)."""

from __future__ import annotations

import logging

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from local_runtime.app import ABORT_EXTENSION, TRACE_LOGGER, RuntimeConfig, app_build


class AbortableWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The ASGI task was only scheduled by super(); it sees the scope as changed here.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][ABORT_EXTENSION] = {"abort": self.transport.abort}


def serve(config: RuntimeConfig, *, host: str, port: int, log_level: str) -> None:
    # bedrock_agentcore logs JSON through its own handler; ours gets a plain one.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("local_runtime")
    logger.addHandler(handler)
    logger.setLevel(log_level.upper())
    logger.propagate = False
    trace_handler = logging.StreamHandler()
    trace_handler.setFormatter(logging.Formatter("%(message)s"))
    trace_logger = logging.getLogger(TRACE_LOGGER)
    trace_logger.addHandler(trace_handler)
    trace_logger.setLevel(logging.INFO)
    trace_logger.propagate = False
    uvicorn.run(
        app_build(config),
        host=host,
        port=port,
        ws=AbortableWebSocketProtocol,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=2,
    )
