"""The SkyMarshal runtime's WebSocket messages (design.md, WebSocket Message Protocol), as
pydantic models: what the runtime sends is checked before the API passes any of it on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class InvokePayload(BaseModel):
    prompt: str
    session_id: str


class InvokeMessage(BaseModel):
    action: Literal["invoke"] = "invoke"
    payload: InvokePayload


class ChunkData(BaseModel):
    model_config = ConfigDict(extra="allow")

    agent: str
    status: str
    phase: str | None = None
    sequence: int | None = None
    partial_result: dict[str, Any] | None = None


class ChunkMessage(BaseModel):
    type: Literal["chunk"]
    data: ChunkData


class CompleteData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = "success"
    assessment: dict[str, Any]
    safety_phase: dict[str, Any] = Field(default_factory=dict)
    business_phase: dict[str, Any] = Field(default_factory=dict)
    final_decision: Literal["approved", "rejected", "conditional"]
    recommendations: list[str] = Field(default_factory=list)
    execution_time_ms: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CompleteMessage(BaseModel):
    type: Literal["complete"]
    data: CompleteData


class RuntimeErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorMessage(BaseModel):
    type: Literal["error"]
    error: RuntimeErrorBody


class RuntimeMessage(BaseModel):
    """Any message; ``message`` is the parsed chunk, complete or error."""

    message: ChunkMessage | CompleteMessage | ErrorMessage = Field(discriminator="type")
