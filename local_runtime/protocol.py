"""The runtime's wire messages (design.md, WebSocket Message Protocol).

Client → runtime: one ``{"action": "invoke", "payload": {"prompt", "session_id"}}``.
Runtime → client: ``chunk`` messages as each agent starts and finishes, then exactly one
``complete`` or one ``error``; then a close frame.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PROMPT_CHARS = 100_000


class InvokePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    session_id: str | None = Field(default=None, max_length=256)


class InvokeMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["invoke"]
    payload: InvokePayload


def chunk_message(
    *, sequence: int, agent: str, phase: str, status: str, partial_result: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "type": "chunk",
        "data": {
            "sequence": sequence,
            "agent": agent,
            "phase": phase,
            "status": status,
            "partial_result": partial_result,
        },
    }


def error_message(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}
