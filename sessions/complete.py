"""Recording a run's outcome: the interaction, the run, its last event and the session's
release in one transaction, or a replay record in the log when DynamoDB cannot take it."""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from sessions.models import (
    RUN_ITEM_TIMESTAMP,
    SESSION_ITEM_TIMESTAMP,
    RunEvent,
    RunItem,
    SessionInteraction,
    SessionItem,
)
from sessions.records import replay_record_messages
from sessions.services import (
    RUN_ACTIVE_STATUSES,
    RUN_STATUS_OF,
    InteractionStarted,
    InteractionStatus,
    aws_error_code,
    clock_ms,
    run_event_item,
    run_key,
)
from skymarshal_api.telemetry.metrics import metric_count
from skymarshal_api.web.errors import StorageUnavailable

logger = logging.getLogger(__name__)


replay_logger = logging.getLogger("sessions.replay")


def interaction_complete(
    started: InteractionStarted,
    *,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None = None,
    run_response: dict[str, Any] | None = None,
    run_error: dict[str, Any] | None = None,
    http_status: int | None = None,
    final_event: tuple[int, str, str] | None = None,
) -> bool:
    """Record the interaction's outcome, its run's (``run_response`` or ``run_error`` with
    ``http_status``), the run's last event when given (number, name, JSON data), and free
    the session, in one transaction. True when saved; False when DynamoDB failed even
    after retries, in which case the whole interaction was logged as a replay record and a
    metric counted (never a silent loss). A response DynamoDB cannot hold is left out, with
    a note in error_message. Completing an interaction twice changes nothing."""
    # The parts still to write: each part whose condition fails is already done (or never
    # was this run's to do) and is left out of the next attempt.
    parts = {"interaction", "run", "session"} | ({"event"} if final_event else set())
    run_outcome = {
        "status": RUN_STATUS_OF[status],
        "response": run_response,
        "error": run_error,
        "http_status": http_status,
    }
    for _ in range(8):
        if not parts & {"interaction", "run"}:
            return True
        now = clock_ms()
        order: list[str] = []
        try:
            with TransactWrite(connection=SessionItem._get_connection().connection) as write:
                if final_event is not None and "event" in parts:
                    number, event, data = final_event
                    order.append("event")
                    write.save(
                        run_event_item(
                            started.request_id,
                            number,
                            event=event,
                            data=data,
                            interaction_timestamp=started.timestamp,
                        ),
                        condition=RunEvent.session_id.does_not_exist(),
                    )
                if "interaction" in parts:
                    order.append("interaction")
                    write.update(
                        SessionInteraction(started.session_id, started.timestamp),
                        actions=[
                            SessionInteraction.status.set(status),
                            SessionInteraction.response.set(response)
                            if response is not None
                            else SessionInteraction.response.remove(),
                            SessionInteraction.execution_time_ms.set(execution_time_ms),
                            SessionInteraction.error_message.set(error_message)
                            if error_message is not None
                            else SessionInteraction.error_message.remove(),
                        ],
                        condition=SessionInteraction.status == "in_progress",
                    )
                if "run" in parts:
                    order.append("run")
                    write.update(
                        RunItem(run_key(started.request_id), RUN_ITEM_TIMESTAMP),
                        actions=[
                            RunItem.status.set(RUN_STATUS_OF[status]),
                            RunItem.finished_at.set(now),
                            RunItem.response.set(run_response)
                            if run_response is not None
                            else RunItem.response.remove(),
                            RunItem.error.set(run_error)
                            if run_error is not None
                            else RunItem.error.remove(),
                            RunItem.http_status.set(http_status)
                            if http_status is not None
                            else RunItem.http_status.remove(),
                        ],
                        condition=RunItem.status.is_in(*RUN_ACTIVE_STATUSES),
                    )
                if "session" in parts:
                    order.append("session")
                    write.update(
                        SessionItem(started.session_id, SESSION_ITEM_TIMESTAMP),
                        actions=[
                            SessionItem.active_run.remove(),
                            SessionItem.active_until.remove(),
                        ],
                        condition=SessionItem.active_run == started.request_id,
                    )
        except TransactWriteError as exc:
            reasons = {
                name: reason.code
                for name, reason in zip(order, exc.cancellation_reasons or [], strict=False)
                if reason is not None and reason.code != "None"
            }
            done = {name for name, code in reasons.items() if code == "ConditionalCheckFailed"}
            if done:
                if "interaction" in done:
                    logger.warning(
                        "Interaction %s/%s was already complete",
                        started.session_id,
                        started.timestamp,
                    )
                if "run" in done:
                    # A run already ended has its last event and has let its session go.
                    done |= {"event", "session"}
                parts -= done
                continue
            if "ValidationException" in (*reasons.values(), aws_error_code(exc)) and (
                response is not None or run_response is not None
            ):
                # DynamoDB will never take this response (an item over 400 KB even
                # compressed): keep the interaction without it rather than log a record
                # that could never be replayed either.
                logger.warning("Response of %s not storable", started.request_id)
                response = run_response = None
                error_message, final_event = _response_left_out(error_message, final_event)
                continue
            if "TransactionConflict" in reasons.values():
                time.sleep(random.uniform(0.02, 0.1))  # noqa: S311 - jitter, not secrecy
                continue
            _record_unsaved(
                started, status, response, execution_time_ms, error_message, exc, run_outcome
            )
            return False
        except ValueError:
            # Not JSON (NaN, an infinity: json_document_encode refuses them, as DynamoDB
            # refused them in a Map): kept without the response, as above.
            if response is None and run_response is None:
                raise
            logger.warning("Response of %s not storable", started.request_id)
            response = run_response = None
            error_message, final_event = _response_left_out(error_message, final_event)
            continue
        except (PynamoDBException, BotoCoreError) as exc:
            _record_unsaved(
                started, status, response, execution_time_ms, error_message, exc, run_outcome
            )
            return False
        return True
    _record_unsaved(
        started,
        status,
        response,
        execution_time_ms,
        error_message,
        StorageUnavailable("retries exhausted"),
        run_outcome,
    )
    return False


def _response_left_out(
    error_message: str | None, final_event: tuple[int, str, str] | None
) -> tuple[str, tuple[int, str, str] | None]:
    """The error message and last event of an interaction kept without its response."""
    note = "The response could not be stored in the session history."
    if final_event is not None:
        final_event = (final_event[0], final_event[1], json.dumps({"note": note}))
    return (f"{error_message} {note}" if error_message else note), final_event


def _record_unsaved(
    started: InteractionStarted,
    status: InteractionStatus,
    response: dict[str, Any] | None,
    execution_time_ms: int,
    error_message: str | None,
    cause: Exception,
    run_outcome: dict[str, Any],
) -> None:
    record = {
        "version": 1,
        "session_id": started.session_id,
        "timestamp": started.timestamp,
        "request_id": started.request_id,
        "prompt": started.prompt,
        "user_id": started.user_id,
        "status": status,
        "response": response,
        "execution_time_ms": execution_time_ms,
        "error_message": error_message,
        # The run's outcome too: replayed, it ends the run as it truly ended, even over a
        # WORKER_LOST expiry written meanwhile.
        "run": run_outcome,
    }
    for message in replay_record_messages(record):  # more than one for a long record
        replay_logger.error(
            "%s session_id=%s request_id=%s cause=%s",
            message,
            started.session_id,
            started.request_id,
            type(cause).__name__,
        )
    metric_count("SessionWriteFailures")
