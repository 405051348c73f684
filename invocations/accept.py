"""Accepting a run: the validated request, its Idempotency-Key claim, and the write-ahead
record (interaction, run, the session's turn) before anything runs."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from invocations.deadlines import turn_budget_of
from invocations.wait import run_wait_ended, turn_wait
from invocations.webhooks import webhook_secret_require
from sessions.begin import interaction_begin
from sessions.models import IDEMPOTENCY_KEY_PREFIX
from sessions.run_selectors import RunRecord, run_find
from sessions.services import (
    IdempotencyClaim,
    IdempotentReplay,
    InteractionStarted,
    OnConflict,
    RunKind,
    RunWebhook,
)
from skymarshal_api.telemetry.logs import prompt_fingerprint
from skymarshal_api.telemetry.observation import request_fields_add, request_session_bind
from skymarshal_api.telemetry.timing import timed
from skymarshal_api.telemetry.trace_context import trace_context_current
from skymarshal_api.web.errors import RETRYABLE_ERROR_CODES, StorageUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvocationRequest:
    """A validated invocation: what /invoke and /invocations were asked to run."""

    prompt: str
    session_id: str | None
    principal_arn: str
    request_id: str
    on_conflict: OnConflict = "reject"
    idempotency_key: str | None = None
    streaming: bool = False
    webhook: RunWebhook | None = None
    # The id a new session takes (session_id None), when it must be known before the
    # write-ahead record: the runtime is connected for it meanwhile.
    new_session_id: str | None = None


def _idempotency_claim(request: InvocationRequest, kind: RunKind) -> IdempotencyClaim | None:
    if request.idempotency_key is None:
        return None
    key_hash = hashlib.sha256(
        f"{request.principal_arn}\n{request.idempotency_key}".encode()
    ).hexdigest()
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "session_id": request.session_id,
        "on_conflict": request.on_conflict,
        "streaming": request.streaming,
    }
    if request.webhook is not None:
        body["webhook"] = {"url": request.webhook.url, "events": list(request.webhook.events)}
    request_hash = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    return IdempotencyClaim(
        key_hash=f"{IDEMPOTENCY_KEY_PREFIX}{key_hash}", request_hash=request_hash
    )


@dataclass(frozen=True)
class Replayed:
    """An Idempotency-Key that already ran this request: its run, ended (or, for a
    background run, in whatever state it is)."""

    run: RunRecord


def _retryable(run: RunRecord) -> bool:
    """Ended with a failure that an Idempotency-Key does not keep as its answer."""
    return (
        not run.active
        and run.error is not None
        and run.error.get("error_code") in RETRYABLE_ERROR_CODES
    )


_IDEMPOTENT_ATTEMPTS = 4


def _trace_kept(kind: RunKind) -> dict[str, str] | None:
    """What a background run keeps of the accepting request's trace, for its worker."""
    context = trace_context_current()
    return context.stored() if kind == "invocation" and context is not None else None


def run_accept(request: InvocationRequest, kind: RunKind) -> InteractionStarted | Replayed:
    """Record the run (``interaction_begin``), or the original run of a repeated
    Idempotency-Key; a key whose run failed retryably (RETRYABLE_ERROR_CODES) is taken
    over by this request, which runs again."""
    fingerprint = prompt_fingerprint(request.prompt)
    request_fields_add(**fingerprint)
    claim = _idempotency_claim(request, kind)
    if request.webhook is not None:
        webhook_secret_require(request.principal_arn)
    for _ in range(_IDEMPOTENT_ATTEMPTS):
        try:
            with timed("persistence"):
                started = interaction_begin(
                    session_id=request.session_id,
                    request_id=request.request_id,
                    prompt=request.prompt,
                    principal_arn=request.principal_arn,
                    kind=kind,
                    on_conflict=request.on_conflict,
                    idempotency=claim,
                    budget=turn_budget_of(kind),
                    webhook=request.webhook,
                    trace=_trace_kept(kind),
                    new_session_id=request.new_session_id,
                )
        except IdempotentReplay as replay:
            if kind == "invoke":
                run = run_wait_ended(replay.request_id)
            else:
                found = run_find(replay.request_id)
                if found is None:  # pragma: no cover - written in one transaction with the key
                    raise StorageUnavailable(
                        "The Idempotency-Key's invocation is missing."
                    ) from None
                run = found
            if claim is not None and _retryable(run):
                logger.info(
                    "Idempotency-Key retried after a retryable failure",
                    extra={"failed_request_id": run.request_id, "kind": kind},
                )
                claim = replace(claim, supersedes=run.request_id)
                continue
            logger.info(
                "invocation replayed",
                extra={"replayed_request_id": replay.request_id, "kind": kind},
            )
            return Replayed(run)
        break
    else:
        raise StorageUnavailable("The Idempotency-Key kept changing hands; retry.")
    request_session_bind(started.session_id)
    logger.info(
        "invocation accepted",
        extra={
            **fingerprint,
            "kind": kind,
            "streaming": request.streaming,
            "new_session": started.new_session,
            "queued_after": started.queued_after,
        },
    )
    return started


def run_accept_in_turn(request: InvocationRequest) -> tuple[InteractionStarted, float] | Replayed:
    """Accept a synchronous run and, when it was queued behind another, wait for its turn:
    the run holding its session, and when its deadline starts (its turn: only where no
    gateway bounds the request may it wait, see ``turn_budget_of``); or the original of a repeated
    Idempotency-Key. Raises what ``run_accept`` raises, and RuntimeTimeout when the turn did
    not come in time (recorded so)."""
    accepted = run_accept(request, "invoke")
    if isinstance(accepted, Replayed):
        return accepted
    began = time.monotonic()
    if accepted.queued_after is not None:
        turn_wait(accepted, began)
        began = time.monotonic()  # its deadline runs from its turn
    return accepted, began
