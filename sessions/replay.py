"""Replaying the outcomes logged while DynamoDB was unavailable (manage.py
sessions_replay_log)."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RUN_ITEM_TIMESTAMP,
    SESSION_ITEM_TIMESTAMP,
    RunEvent,
    RunItem,
    SessionInteraction,
    SessionItem,
    event_data_storable,
)
from sessions.services import (
    RUN_ACTIVE_STATUSES,
    aws_error_code,
    clock_ms,
    run_event_item,
    run_key,
    ttl_for,
)
from skymarshal_api.web.errors import StorageUnavailable

logger = logging.getLogger(__name__)


ReplayOutcome = Literal["restored", "completed", "superseded", "already_present"]


LOST_PREFIX = "WORKER_LOST: "


def interaction_replay(record: dict[str, Any]) -> ReplayOutcome:
    """Write a replay record back, idempotently: ``restored`` when the interaction was
    missing, ``completed`` when it was still in progress, ``superseded`` when it had been
    ended as lost (WORKER_LOST) meanwhile, ``already_present`` otherwise. A record that
    carries its run's outcome ends the run so too (over a WORKER_LOST expiry as well) and
    releases its session. Raises StorageUnavailable when DynamoDB fails."""
    outcome = _interaction_replay(record)
    if isinstance(record.get("run"), dict):
        _run_replay(record)
    return outcome


def _run_replay(record: dict[str, Any]) -> None:
    run: dict[str, Any] = record["run"]
    request_id = str(record["request_id"])
    actions: list[Action] = [
        RunItem.status.set(run["status"]),
        RunItem.finished_at.set(clock_ms()),
        RunItem.response.set(run["response"])
        if run.get("response") is not None
        else RunItem.response.remove(),
        RunItem.error.set(run["error"]) if run.get("error") is not None else RunItem.error.remove(),
        RunItem.http_status.set(run["http_status"])
        if run.get("http_status") is not None
        else RunItem.http_status.remove(),
    ]
    item = RunItem(run_key(request_id), RUN_ITEM_TIMESTAMP)
    try:
        item.update(
            actions=actions,
            condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES)
            | (RunItem.error["error_code"] == "WORKER_LOST"),
        )
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise StorageUnavailable(f"Could not replay the run: {exc}") from exc
        return  # the run ended otherwise (or never was recorded)
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the run: {exc}") from exc
    if item.kind == "invocation":
        _run_final_event_replay(record)
    try:
        SessionItem(str(record["session_id"]), SESSION_ITEM_TIMESTAMP).update(
            actions=[SessionItem.active_run.remove(), SessionItem.active_until.remove()],
            condition=SessionItem.active_run == request_id,
        )
    except UpdateError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise StorageUnavailable(f"Could not release the session: {exc}") from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not release the session: {exc}") from exc


def _run_final_event_replay(record: dict[str, Any]) -> None:
    """Store a replayed background run's last event as its completion would have (the
    InvokeResponse as ``complete``, or the error as ``error``), so that its events end
    with its true outcome: after the events stored, or in place of the WORKER_LOST
    ``error`` an expiry stored meanwhile. Raises StorageUnavailable."""
    run: dict[str, Any] = record["run"]
    request_id = str(record["request_id"])
    event, data = (
        ("complete", run.get("response"))
        if run["status"] == "succeeded"
        else ("error", run.get("error"))
    )
    if data is None:
        return
    try:
        last = next(
            iter(
                RunEvent.query(
                    run_key(request_id),
                    RunEvent.timestamp > RUN_ITEM_TIMESTAMP,
                    consistent_read=True,
                    scan_index_forward=False,
                    limit=1,
                )
            ),
            None,
        )
        number = 1 if last is None else int(last.timestamp)
        if last is not None and last.event != "error":  # not the expiry's last event
            number += 1
        run_event_item(
            request_id,
            number,
            event=event,
            data=event_data_storable(json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
            interaction_timestamp=int(record["timestamp"]),
        ).save()
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the run's last event: {exc}") from exc


def _interaction_replay(record: dict[str, Any]) -> ReplayOutcome:
    session_id, timestamp = str(record["session_id"]), int(record["timestamp"])
    interaction = SessionInteraction(
        session_id,
        timestamp,
        request_id=record["request_id"],
        prompt=record["prompt"],
        status=record["status"],
        response=record.get("response"),
        execution_time_ms=record.get("execution_time_ms"),
        error_message=record.get("error_message"),
        user_id=record["user_id"],
        ttl=ttl_for(timestamp),
    )
    try:
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                write.update(
                    SessionItem(session_id, SESSION_ITEM_TIMESTAMP),
                    actions=[
                        SessionItem.owner.set(SessionItem.owner | record["user_id"]),
                        SessionItem.created_at.set(SessionItem.created_at | timestamp),
                        SessionItem.last_interaction_at.set(
                            SessionItem.last_interaction_at | timestamp
                        ),
                        SessionItem.interaction_count.add(1),
                        SessionItem.ttl.set(SessionItem.ttl | ttl_for(timestamp)),
                    ],
                )
                write.save(interaction, condition=SessionInteraction.session_id.does_not_exist())
            return "restored"
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            if not reasons or reasons[0] != "ConditionalCheckFailed":  # the put
                raise
        try:
            interaction.save(condition=SessionInteraction.status == "in_progress")
        except PutError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise
        else:
            return "completed"
        if str(record.get("error_message") or "").startswith(LOST_PREFIX):
            return "already_present"
        try:
            interaction.save(condition=SessionInteraction.error_message.startswith(LOST_PREFIX))
        except PutError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return "already_present"
            raise
        return "superseded"
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"Could not replay the interaction: {exc}") from exc
