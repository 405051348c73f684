"""Run webhooks: a run's events sent to its caller's URL, signed, until the URL takes them.

A run accepted with ``webhook: {"url", "events"}`` keeps them on its item. When one of the
events happens (the run started, or ended as succeeded, failed, timed out or cancelled), a
sender is woken off the run's path (a thread of this process, or on Lambda an asynchronous
invocation of the worker function), which records a delivery for it in the sessions table
(``webhook_deliveries_ensure``: once per event, due at once) and sends it. Nothing depends
on that sender: every delivery's next attempt is filed for the sweeper
(invocations/webhook_sweep.py), and the sweeper records the deliveries of every run it
settles from the run's state, so a process that dies right after the run's last write
loses no event; the event only comes later (once the run's deadline has passed).

Each delivery is a Standard Webhooks message (standardwebhooks.Webhook signs it): the
same ``webhook-id`` on every attempt, the attempt's ``webhook-timestamp``, and
``webhook-signature`` with one ``v1,<base64 HMAC-SHA256>`` per signing secret of the run's
owner that is valid (the newest and, for 24 hours after a rotation, the one before). The
body is ``{"type", "timestamp", "data"}``, ``data`` being the run as GET
/api/v1/invocations/{id} shows it (never its prompt). A 2xx ends the delivery, a 410
stops it; any other answer, a timeout or a refused connection is tried again after the
next delay of WEBHOOK_RETRY_SCHEDULE_SECONDS (±10 % jitter) until the schedule ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from standardwebhooks import Webhook

from invocations.representation import invocation_representation, iso_time
from invocations.webhook_http import webhook_post
from sessions.run_selectors import RunRecord, run_find
from sessions.services import clock_ms
from sessions.webhook_selectors import (
    DeliveryRecord,
    webhook_deliveries_of,
    webhook_secrets_valid,
)
from sessions.webhook_services import (
    SecretCreated,
    webhook_attempt_record,
    webhook_delivery_claim,
    webhook_delivery_create,
    webhook_redelivery_schedule,
    webhook_secret_create,
)
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import (
    ApplicationError,
    DeliveryNotFound,
    InvalidRequest,
    InvocationNotFound,
    RedeliveryLimitReached,
)

logger = logging.getLogger(__name__)

RUN_STARTED = "run.started"
END_EVENTS = ("run.succeeded", "run.failed", "run.timed_out", "run.cancelled")
WEBHOOK_EVENTS = (RUN_STARTED, *END_EVENTS)
END_EVENT_OF_STATUS = dict(
    zip(("succeeded", "failed", "timed_out", "cancelled"), END_EVENTS, strict=True)
)
# A run has at most two deliveries: its start and its end.
SLOT_STARTED, SLOT_ENDED = 1, 2
# Attempts one delivery may have, redeliveries included (the schedule takes 8).
MAX_ATTEMPTS = 50
USER_AGENT = "SkyMarshal-Webhooks/1.0"
# A sender that has just tried waits in place for a retry due this soon (the 5 s one)
# rather than leave it to the sweeper's next pass.
_INLINE_RETRY_SECONDS = 10.0
# How long a sender holds a delivery beyond the attempt's own timeout.
_HOLD_MARGIN_MS = 30_000


def delivery_id_of(request_id: str, slot: int) -> str:
    """The delivery's Standard Webhooks message id (``webhook-id``): fixed by the run and
    the event's slot, so whoever records it (the run's process, the sweeper) records the
    same one."""
    return "msg_" + hashlib.sha256(f"{request_id}\n{slot}".encode()).hexdigest()[:32]


def _due_events(run: RunRecord) -> Iterator[tuple[int, str, int]]:
    """(slot, event, when) of each event of the run that has happened and its webhook
    asks for."""
    if run.webhook is None:
        return
    if RUN_STARTED in run.webhook.events and run.started_at is not None:
        yield SLOT_STARTED, RUN_STARTED, run.started_at
    event = END_EVENT_OF_STATUS.get(run.status)
    if event is not None and event in run.webhook.events:
        yield SLOT_ENDED, event, run.finished_at or clock_ms()


def webhook_deliveries_ensure(run: RunRecord) -> int:
    """Record the deliveries of what has happened to the run (each once, due now): how
    many were new. Raises StorageUnavailable."""
    if run.webhook is None:
        return 0
    created = 0
    for slot, event, occurred_at in _due_events(run):
        created += webhook_delivery_create(
            request_id=run.request_id,
            slot=slot,
            delivery_id=delivery_id_of(run.request_id, slot),
            owner=run.owner,
            event=event,
            url=run.webhook.url,
            occurred_at=occurred_at,
            now_ms=clock_ms(),
        )
    return created


def webhook_payload(run: RunRecord, delivery: DeliveryRecord) -> str:
    """The delivery's body: the event, when it happened, and the run as its caller sees
    it (for run.started, as it was when it started). The same on every attempt."""
    data = invocation_representation(run)
    if run.kind != "invocation":
        # A run of /invoke is not an invocation resource: only these links resolve.
        data["links"] = {name: data["links"][name] for name in ("session", "deliveries")}
    if delivery.event == RUN_STARTED:
        data.update(
            status="running",
            queued_behind=None,
            finished_at=None,
            cancel_requested=False,
            result=None,
            error=None,
        )
    document = {"type": delivery.event, "timestamp": iso_time(delivery.occurred_at), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def webhook_signature(secrets: list[str], *, msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` per secret, space-separated."""
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets
    )


def _next_delay_ms(done: int) -> int | None:
    """When to try again after ``done`` scheduled attempts failed (None: give up)."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    if done > len(schedule):
        return None
    delay = schedule[done - 1] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter
    return int(delay * 1000)


def _host(url: str) -> str:
    """What a log line may say of a URL: its host (the path or query may hold a token)."""
    return urlsplit(url).hostname or "?"


def webhook_attempt(request_id: str, slot: int) -> DeliveryRecord | None:
    """Send a due delivery once, if no other sender holds it, and record the attempt and
    what comes next: the delivery as it was claimed, or None when it was not due or
    held elsewhere. Raises StorageUnavailable."""
    now = clock_ms()
    hold_ms = int(settings.WEBHOOK_TIMEOUT_SECONDS * 1000) + _HOLD_MARGIN_MS
    claimed = webhook_delivery_claim(request_id, slot, now_ms=now, hold_ms=hold_ms)
    if claimed is None:
        return None
    run = run_find(request_id)
    secrets = [s.secret for s in webhook_secrets_valid(claimed.owner, now_ms=now)]
    attempted_at = clock_ms()
    status_code: int | None
    error: str | None
    if run is None:
        status_code, latency_ms, error = None, 0, "the invocation no longer exists"
    elif not secrets:
        status_code, latency_ms, error = (
            None,
            0,
            "the caller has no signing secret this API can read (POST /api/v1/webhook-secrets)",
        )
    else:
        body = webhook_payload(run, claimed)
        timestamp = datetime.fromtimestamp(attempted_at // 1000, UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": claimed.delivery_id,
            "webhook-timestamp": str(attempted_at // 1000),
            "webhook-signature": webhook_signature(
                secrets, msg_id=claimed.delivery_id, timestamp=timestamp, body=body
            ),
        }
        outcome = webhook_post(
            claimed.url, body.encode(), headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        )
        status_code, latency_ms, error = outcome.status_code, outcome.latency_ms, outcome.error
    scheduled = claimed.scheduled_attempts + (0 if claimed.redelivery else 1)
    next_attempt_at: int | None = None
    if status_code is not None and 200 <= status_code < 300:
        status = "delivered"
    elif status_code == 410:
        status = "gone"
    elif run is None or claimed.redelivery:
        status = "failed"
    else:
        delay = _next_delay_ms(scheduled)
        status = "pending" if delay is not None else "failed"
        next_attempt_at = None if delay is None else clock_ms() + delay
    attempt = {
        "attempted_at": attempted_at,
        "status_code": status_code,
        "latency_ms": latency_ms,
        "error": error,
        "redelivery": claimed.redelivery,
    }
    recorded = webhook_attempt_record(
        claimed,
        attempt=attempt,
        status=status,
        next_attempt_at=next_attempt_at,
        scheduled_attempts=scheduled,
    )
    logger.info(
        "webhook attempt",
        extra={
            "webhook_request_id": request_id,
            "webhook_id": claimed.delivery_id,
            "webhook_event": claimed.event,
            "webhook_host": _host(claimed.url),
            "webhook_status_code": status_code,
            "webhook_latency_ms": latency_ms,
            "webhook_error": error,
            "webhook_delivery_status": status,
            "webhook_recorded": recorded,
        },
    )
    metric_count("WebhookAttempts", outcome="delivered" if status == "delivered" else "failed")
    return claimed


def webhook_notify(request_id: str) -> None:
    """Record the deliveries of what has happened to the run and send those due now (and
    their retries due within a few seconds). Raises StorageUnavailable."""
    run = run_find(request_id)
    if run is None or run.webhook is None:
        return
    webhook_deliveries_ensure(run)
    give_up = time.monotonic() + 60.0
    while time.monotonic() < give_up:
        soonest: int | None = None
        for delivery in webhook_deliveries_of(request_id):
            if delivery.status != "pending" or delivery.next_attempt_at is None:
                continue
            if delivery.next_attempt_at <= clock_ms():
                if webhook_attempt(request_id, delivery.slot) is not None:
                    soonest = clock_ms()  # look again at what it left
            elif soonest is None or delivery.next_attempt_at < soonest:
                soonest = delivery.next_attempt_at
        if soonest is None:
            return
        wait = (soonest - clock_ms()) / 1000
        if wait > _INLINE_RETRY_SECONDS:
            return  # the sweeper sends it when it is due
        time.sleep(max(0.0, wait))


def _notify_logged(request_id: str) -> None:
    try:
        webhook_notify(request_id)
    except Exception:
        # The sweeper sends what this left (its due notes and the run's state say what).
        logger.exception("Webhooks of run %s: the sender failed", request_id)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="skymarshal-webhook")


def webhook_notify_soon(request_id: str) -> None:
    """Wake a sender for the run's webhooks, off the caller's path: a thread here, or on
    Lambda an asynchronous invocation of the worker function. Never raises: what a sender
    does not do, the sweeper does."""
    try:
        if settings.RUN_EXECUTOR == "lambda":
            from zappa.asynchronous import run as zappa_task_run

            zappa_task_run(
                webhook_task,
                args=[request_id],
                remote_aws_lambda_function_name=settings.RUN_WORKER_FUNCTION,
                remote_aws_region=settings.AWS_REGION,
            )
            return
        _pool().submit(_notify_logged, request_id)
    except Exception as exc:
        metric_count("WebhookDispatchFailures")
        logger.warning(
            "Webhooks of run %s: no sender could be woken (%s); the sweeper sends them",
            request_id,
            type(exc).__name__,
        )
        try:
            run = run_find(request_id)
            if run is not None:
                webhook_deliveries_ensure(run)
        except ApplicationError as error:
            logger.warning("Webhooks of run %s: %s", request_id, error.message)


def webhook_task(request_id: str) -> None:
    """The Zappa task on the worker function: send the run's due webhooks."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") is None:  # pragma: no cover - Lambda only
        logger.warning("webhook_task runs outside Lambda")
    _notify_logged(request_id)


# --- what the API offers ------------------------------------------------------------------


def _owned_run(request_id: str, principal_arn: str) -> RunRecord:
    run = run_find(request_id)
    if run is None or run.owner != principal_arn:
        raise InvocationNotFound()
    return run


def webhook_deliveries_list(*, request_id: str, principal_arn: str) -> list[DeliveryRecord]:
    """The caller's run's deliveries (of /invoke runs too) with their attempts. Raises
    InvocationNotFound, StorageUnavailable."""
    _owned_run(request_id, principal_arn)
    return webhook_deliveries_of(request_id)


def webhook_redeliver(*, request_id: str, delivery_id: str, principal_arn: str) -> DeliveryRecord:
    """Send a delivery of the caller's run again now, with the same webhook-id and body:
    one more attempt for a delivery that had ended, the next attempt now for one still
    pending. The delivery as scheduled (the attempt follows at once, off this request).
    Raises InvocationNotFound, DeliveryNotFound, RedeliveryLimitReached,
    StorageUnavailable."""
    _owned_run(request_id, principal_arn)
    delivery = next(
        (d for d in webhook_deliveries_of(request_id) if d.delivery_id == delivery_id), None
    )
    if delivery is None:
        raise DeliveryNotFound()
    scheduled = webhook_redelivery_schedule(delivery, now_ms=clock_ms(), max_attempts=MAX_ATTEMPTS)
    if scheduled is None:
        raise RedeliveryLimitReached(
            f"The delivery has had {MAX_ATTEMPTS} attempts, the most a delivery may have.",
            details={"attempts": len(delivery.attempts)},
        )
    webhook_notify_soon(request_id)
    return scheduled


# Callers seen to have a signing secret, until when (monotonic seconds): a caller's newest
# secret never expires, so once seen it need not be read again on every run's path.
_SIGNERS_SEEN: dict[str, float] = {}
_SIGNER_SEEN_SECONDS = 300.0


def webhook_secret_require(principal_arn: str) -> None:
    """Raise InvalidRequest unless the caller has a signing secret (a webhook it could not
    verify would be of no use). Raises StorageUnavailable."""
    if _SIGNERS_SEEN.get(principal_arn, 0.0) > time.monotonic():
        return
    if not webhook_secrets_valid(principal_arn, now_ms=clock_ms()):
        raise InvalidRequest(
            "The request is not valid; see details for each field.",
            details={"fields": {"webhook": [MISSING_SIGNER_MESSAGE]}},
        )
    if len(_SIGNERS_SEEN) > 10_000:
        _SIGNERS_SEEN.clear()
    _SIGNERS_SEEN[principal_arn] = time.monotonic() + _SIGNER_SEEN_SECONDS


MISSING_SIGNER_MESSAGE = (
    "The caller has no webhook signing secret: create one with POST /api/v1/webhook-secrets "
    "(keep the whsec_ value it answers), then send the request again."
)


def webhook_secret_issue(*, principal_arn: str) -> SecretCreated:
    """A new signing secret for the caller (the current one, if any, stays valid for
    WEBHOOK_SECRET_OVERLAP_HOURS). Raises TooManyWebhookSecrets, StorageUnavailable."""
    created = webhook_secret_create(owner=principal_arn, now_ms=clock_ms())
    logger.info(
        "webhook secret created",
        extra={
            "webhook_secret_id": created.secret.secret_id,
            "rotated_secret_ids": [secret.secret_id for secret in created.rotated],
        },
    )
    return created
