"""Typed results: one dataclass per response schema of openapi.yaml (same name, same fields).

Each keeps the decoded JSON it was built from in ``raw``, so a field the API adds later is
still reachable before this client names it (tests/clients/ fails until it does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Model")

FINAL_STATUSES = frozenset({"succeeded", "failed", "timed_out", "cancelled"})


@dataclass(frozen=True)
class Model:
    #: nested fields: name → the model of its value (or of each item of a list).
    nested: ClassVar[dict[str, type[Model]]] = {}
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "raw" or item.name not in data:
                continue
            value = data[item.name]
            model = cls.nested.get(item.name)
            if model is not None and isinstance(value, dict):
                value = model.from_dict(value)
            elif model is not None and isinstance(value, list):
                value = [model.from_dict(v) if isinstance(v, dict) else v for v in value]
            values[item.name] = value
        return cls(**values, raw=data)


@dataclass(frozen=True)
class HealthCheck(Model):
    status: str = ""
    latency_ms: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class HealthChecks(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"agentcore": HealthCheck, "dynamodb": HealthCheck}
    agentcore: HealthCheck | None = None
    dynamodb: HealthCheck | None = None


@dataclass(frozen=True)
class HealthResponse(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"checks": HealthChecks}
    status: str = ""
    version: str = ""
    timestamp: str = ""
    checks: HealthChecks | None = None


@dataclass(frozen=True)
class IdentityResponse(Model):
    principal: str = ""
    owner: str | None = None
    identity_mode: str | None = None
    account_id: str | None = None
    caller: str | None = None
    authenticated_by: str | None = None


@dataclass(frozen=True)
class InvokeResponse(Model):
    status: str = ""
    request_id: str = ""
    session_id: str = ""
    execution_time_ms: int = 0
    assessment: dict[str, Any] = field(default_factory=dict)
    safety_phase: dict[str, Any] = field(default_factory=dict)
    business_phase: dict[str, Any] = field(default_factory=dict)
    final_decision: str = ""
    recommendations: list[Any] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class InvocationLinks(Model):
    self: str = ""
    events: str = ""
    wait: str = ""
    session: str = ""
    deliveries: str = ""


@dataclass(frozen=True)
class Invocation(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"result": InvokeResponse, "links": InvocationLinks}
    request_id: str = ""
    session_id: str = ""
    status: str = ""
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    queued_behind: str | None = None
    cancel_requested: bool = False
    result: InvokeResponse | None = None
    error: dict[str, Any] | None = None
    links: InvocationLinks | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class WebhookRunLinks(InvocationLinks):
    """The links of a webhook's run: a run of /invoke has session and deliveries only."""


@dataclass(frozen=True)
class WebhookRun(Invocation):
    """The run a webhook carries: as GET /api/v1/invocations/{id} shows it."""

    nested: ClassVar[dict[str, type[Model]]] = {"result": InvokeResponse, "links": WebhookRunLinks}


@dataclass(frozen=True)
class WebhookPayload(Model):
    """The body of a webhook delivery: the event, when it happened, and the run."""

    nested: ClassVar[dict[str, type[Model]]] = {"data": WebhookRun}
    type: str = ""
    timestamp: str = ""
    data: WebhookRun | None = None


@dataclass(frozen=True)
class WebhookAttempt(Model):
    attempted_at: str = ""
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = None
    redelivery: bool = False


@dataclass(frozen=True)
class WebhookDelivery(Model):
    """One webhook message of a run (``delivery_id`` is its webhook-id) and its attempts."""

    nested: ClassVar[dict[str, type[Model]]] = {
        "attempts": WebhookAttempt,
        "payload": WebhookPayload,
    }
    delivery_id: str = ""
    event: str = ""
    url: str = ""
    status: str = ""
    created_at: str = ""
    next_attempt_at: str | None = None
    attempts: list[WebhookAttempt] = field(default_factory=list)
    payload: WebhookPayload | None = None


@dataclass(frozen=True)
class WebhookDeliveryList(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"deliveries": WebhookDelivery}
    request_id: str = ""
    deliveries: list[WebhookDelivery] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookSecret(Model):
    secret_id: str = ""
    created_at: str = ""
    expires_at: str | None = None


@dataclass(frozen=True)
class WebhookSecretCreated(Model):
    """A new signing secret: ``secret`` (whsec_…) is shown this once."""

    nested: ClassVar[dict[str, type[Model]]] = {"rotated": WebhookSecret}
    secret_id: str = ""
    secret: str = field(default="", repr=False)
    created_at: str = ""
    rotated: list[WebhookSecret] = field(default_factory=list)


@dataclass(frozen=True)
class SessionSummary(Model):
    session_id: str = ""
    created_at: int = 0
    last_interaction_at: int = 0
    interaction_count: int = 0
    expired: bool = False


@dataclass(frozen=True)
class SessionList(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"sessions": SessionSummary}
    sessions: list[SessionSummary] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class SessionInteraction(Model):
    session_id: str = ""
    request_id: str = ""
    timestamp: int = 0
    prompt: str = ""
    response: dict[str, Any] | None = None
    status: str = ""
    execution_time_ms: int | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class SessionHistory(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"interactions": SessionInteraction}
    session_id: str = ""
    created_at: int = 0
    last_interaction_at: int = 0
    interaction_count: int = 0
    expired: bool = False
    interactions: list[SessionInteraction] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class ErrorResponse(Model):
    status: str = "error"
    request_id: str = ""
    error_code: str = ""
    error_message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: str = ""


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: ``start``, ``chunk``, ``complete`` or ``error``, its ``id``
    and its JSON ``data``."""

    id: int | None
    event: str
    data: Any

    @classmethod
    def parse(cls, event_id: str | None, event: str, data: str) -> Event:
        try:
            decoded: Any = json.loads(data) if data else None
        except ValueError:
            decoded = data
        number = int(event_id) if event_id and event_id.isdigit() else None
        return cls(id=number, event=event or "message", data=decoded)

    @property
    def final(self) -> bool:
        return self.event in ("complete", "error")

    @property
    def agent(self) -> str | None:
        """For a ``chunk``: the agent it is about (None when the chunk names none)."""
        if isinstance(self.data, dict):
            for key in ("agent", "agent_name", "name"):
                if isinstance(self.data.get(key), str):
                    return str(self.data[key])
        return None


#: response schema name in openapi.yaml → the model this client returns for it.
MODELS_BY_SCHEMA: dict[str, type[Model]] = {
    cls.__name__: cls
    for cls in (
        HealthCheck,
        HealthChecks,
        HealthResponse,
        IdentityResponse,
        InvokeResponse,
        InvocationLinks,
        Invocation,
        WebhookRunLinks,
        WebhookRun,
        WebhookPayload,
        WebhookAttempt,
        WebhookDelivery,
        WebhookDeliveryList,
        WebhookSecret,
        WebhookSecretCreated,
        SessionSummary,
        SessionList,
        SessionInteraction,
        SessionHistory,
        ErrorResponse,
    )
}
