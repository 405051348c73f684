"""The SkyMarshal runtime's WebSocket messages (design.md, WebSocket Message Protocol), as
pydantic models: what the runtime sends is checked before the API passes any of it on.

The reader is tolerant: design.md's ``complete`` message carries only ``status``,
``assessment``, ``recommendations`` and ``execution_time_ms``; ``final_decision`` and the
phases are optional here and derived when absent (invocations/run_result.py). A message of
a type this API does not know is an ``UnknownMessage``, skipped by the reader, so a newer
runtime does not break an older API."""

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
    assessment: dict[str, Any] = Field(default_factory=dict)
    safety_phase: dict[str, Any] | None = None
    business_phase: dict[str, Any] | None = None
    final_decision: Literal["approved", "rejected", "conditional"] | None = None
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


KNOWN_TYPES = frozenset({"chunk", "complete", "error"})


class UnknownMessage(BaseModel):
    """A message with a ``type`` this API does not know (a newer runtime's): skipped."""

    model_config = ConfigDict(extra="allow")

    type: str


class RuntimeMessage(BaseModel):
    """A message of a known type; ``message`` is the parsed chunk, complete or error."""

    message: ChunkMessage | CompleteMessage | ErrorMessage = Field(discriminator="type")
