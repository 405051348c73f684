"""How long a run may wait for its turn and how long it may last, where it runs."""

from __future__ import annotations

from django.conf import settings

from sessions.services import RunKind, TurnBudget, default_turn_budget, turn_budget


def sync_run_seconds() -> float:
    """How long a synchronous run may last from its acceptance (its turn on the session
    included): the runtime's deadline, and behind API Gateway (RESPONSE_MODE=buffered) no
    longer than a request may hold the function (REQUEST_HOLD_SECONDS)."""
    if settings.RESPONSE_MODE == "buffered":
        return min(settings.AGENTCORE_DEADLINE_SECONDS, settings.REQUEST_HOLD_SECONDS)
    return float(settings.AGENTCORE_DEADLINE_SECONDS)


def turn_budget_of(kind: RunKind) -> TurnBudget:
    """How long a run may wait for its turn on a busy session and how long it then lasts.
    Behind API Gateway (RESPONSE_MODE=buffered) a synchronous run never waits: its request
    has REQUEST_HOLD_SECONDS in all, under the gateway's 29 s, and a wait there would cut
    its run short; on a busy session it is refused at once (a background run may queue).
    Elsewhere a run waits up to RUN_QUEUE_TIMEOUT_SECONDS and then has its whole
    deadline."""
    if kind == "invoke" and settings.RESPONSE_MODE == "buffered":
        return turn_budget(wait_seconds=0, run_seconds=sync_run_seconds())
    return default_turn_budget(kind)


_LAMBDA_MARGIN_SECONDS = 10.0


def lambda_wait_seconds() -> float:
    """How long a Lambda task may wait for its turn and still finish its run in time."""
    return max(
        1.0,
        settings.RUN_TASK_TIMEOUT_SECONDS
        - settings.AGENTCORE_DEADLINE_SECONDS
        - _LAMBDA_MARGIN_SECONDS,
    )
