"""A minimal client of the runtime's WebSocket protocol, for the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


@dataclass
class Exchange:
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw_frames: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    close_frame_received: bool = False
    ended_by: str = ""

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "chunk"]

    @property
    def terminal(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") in ("complete", "error")]


def invoke(
    ws_url: str,
    prompt: str | None,
    *,
    session_id: str | None = None,
    request: Any = None,
    recv_timeout: float = 10.0,
    max_size: int | None = 16 * 1024 * 1024,
) -> Exchange:
    """Send one invoke and read until the runtime closes, stops talking, or breaks."""
    headers = {SESSION_HEADER: session_id} if session_id else {}
    body = request if request is not None else {"action": "invoke", "payload": {"prompt": prompt}}
    exchange = Exchange()
    with connect(ws_url, additional_headers=headers, open_timeout=5, max_size=max_size) as ws:
        ws.send(body if isinstance(body, str) else json.dumps(body))
        while True:
            try:
                frame = ws.recv(timeout=recv_timeout)
            except TimeoutError:
                exchange.ended_by = "timeout"
                break
            except ConnectionClosed as closed:
                exchange.ended_by = type(closed).__name__
                exchange.close_frame_received = closed.rcvd is not None
                exchange.close_code = closed.rcvd.code if closed.rcvd else None
                break
            exchange.raw_frames.append(frame)
            try:
                exchange.messages.append(json.loads(frame))
            except ValueError:
                exchange.messages.append({"type": "<not json>"})
    return exchange
