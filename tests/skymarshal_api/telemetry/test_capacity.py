"""DYNAMODB_CAPACITY_LOG: each DynamoDB call that can report its consumed capacity asks
for it and logs it, against DynamoDB Local (which reports units by item size)."""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

import pytest

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SessionInteraction
from sessions.selectors import session_history_get, sessions_table_status
from sessions.table import sessions_table_ensure
from skymarshal_api.telemetry.capacity import consumed_units

ALICE = "arn:aws:iam::111111111111:user/alice"
PROMPT = "Flight AA123 delayed 3 hours due to weather at ORD"


def _capacity_lines(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [r for r in caplog.records if r.name == "skymarshal_api.telemetry.capacity"]


def _one_interaction() -> str:
    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    # Random text: stored compressed, it still takes over 3 KB.
    response = {"final_decision": "conditional", "summary": secrets.token_urlsafe(3000)}
    assert interaction_complete(started, status="success", response=response, execution_time_ms=9)
    return started.session_id


def test_each_call_logs_the_units_dynamodb_reports(
    dynamodb_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dynamodb_settings.DYNAMODB_CAPACITY_LOG = True
    sessions_table_ensure()
    with caplog.at_level(logging.INFO, logger="skymarshal_api.telemetry.capacity"):
        assert sessions_table_status() == "ACTIVE"  # DescribeTable: nothing to report
        assert _capacity_lines(caplog) == []
        session_id = _one_interaction()
        writes = _capacity_lines(caplog)
        caplog.clear()
        session_history_get(session_id=session_id, principal_arn=ALICE)
        reads = _capacity_lines(caplog)
    assert [r.operation for r in writes] == ["TransactWriteItems", "TransactWriteItems"]
    assert all(r.reported and r.read_units == 0 and r.write_units >= 2 for r in writes)
    # A transaction costs two write units per KB of each item: the completion writes a
    # response of over 3 KB (DynamoDB Developer Guide, "Read/write capacity mode").
    assert writes[1].write_units > writes[0].write_units
    assert [r.operation for r in reads] == ["Query"]  # the session item and the page
    assert all(r.reported and r.write_units == 0 and r.read_units > 0 for r in reads)


def test_nothing_is_asked_or_logged_when_off(
    sessions_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PynamoDB asks every call for TOTAL; with the log off, DynamoDB is asked for none
    and answers none (seen in botocore's parsed answers, at the client's boundary)."""
    answers: list[tuple[str, dict[str, Any]]] = []

    def seen(*, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        answers.append((model.name, parsed))

    events = SessionInteraction._get_connection().connection.client.meta.events
    events.register("after-call.dynamodb", seen, unique_id="test-capacity-seen")
    try:
        with caplog.at_level(logging.INFO, logger="skymarshal_api.telemetry.capacity"):
            session_history_get(session_id=_one_interaction(), principal_arn=ALICE)
    finally:
        events.unregister("after-call.dynamodb", unique_id="test-capacity-seen")
    assert _capacity_lines(caplog) == []
    assert [name for name, _ in answers] == ["TransactWriteItems", "TransactWriteItems", "Query"]
    assert [name for name, parsed in answers if "ConsumedCapacity" in parsed] == []


@pytest.mark.parametrize(
    ("operation", "consumed", "units"),
    [
        ("GetItem", {"TableName": "t", "CapacityUnits": 0.5}, (0.5, 0.0)),
        ("PutItem", {"TableName": "t", "CapacityUnits": 3.0}, (0.0, 3.0)),
        ("TransactWriteItems", [{"CapacityUnits": 4.0}, {"CapacityUnits": 2.0}], (0.0, 6.0)),
        (
            "TransactGetItems",
            {"CapacityUnits": 4.0, "ReadCapacityUnits": 4.0, "WriteCapacityUnits": 0.0},
            (4.0, 0.0),
        ),
        ("Query", None, (0.0, 0.0)),
    ],
)
def test_units_are_read_or_write_by_operation(
    operation: str, consumed: Any, units: tuple[float, float]
) -> None:
    assert consumed_units(operation, consumed) == units
