"""No silent loss: with DynamoDB Local stopped mid-invocation, the interaction comes out as
a replay record, and `sessions_replay_log` restores it once the database is back."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from scripts.stack import ROOT, Server, start_dynamodb_local
from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.records import (
    REPLAY_MARKER,
    REPLAY_PART_MARKER,
    replay_record_encode,
    replay_record_messages,
)
from sessions.selectors import session_history_get
from sessions.table import sessions_table_ensure

pytestmark = pytest.mark.slow

ALICE = "arn:aws:iam::111111111111:user/alice"
PROMPT = "Flight QF12 delayed 5 hours at LAX, crew out of hours, 300 passengers"


@pytest.fixture
def own_dynamodb(tmp_path: Path, log_dir: Path, settings: Any) -> Iterator[dict[str, Any]]:
    """A DynamoDB Local of this test's own, keeping its data on disk across restarts: for
    the tests that stop it."""
    state: dict[str, Any] = {"db_path": tmp_path / "db", "server": None, "table": "replay-test"}
    state["server"] = start_dynamodb_local(db_path=state["db_path"], log_dir=log_dir)
    _table_of(state, settings)
    yield state
    state["server"].stop()


@pytest.fixture
def shared_dynamodb(dynamodb_local: Server, settings: Any) -> dict[str, Any]:
    """The worker's DynamoDB Local and a table of this test's own: for the tests that
    leave DynamoDB running (a JVM of their own would cost about 3 s of CPU each)."""
    state: dict[str, Any] = {
        "server": dynamodb_local,
        "table": f"replay-test-{uuid.uuid4().hex[:12]}",
    }
    _table_of(state, settings)
    return state


def _table_of(state: dict[str, Any], settings: Any) -> None:
    """The sessions models on ``state``'s server and table, failing fast, the table made."""
    settings.DYNAMODB_ENDPOINT_URL = state["server"].http_url
    settings.SESSION_TABLE_NAME = state["table"]
    settings.DYNAMODB_MAX_RETRY_ATTEMPTS = 1
    settings.DYNAMODB_CONNECT_TIMEOUT_SECONDS = 0.5
    sessions_table_ensure()


def _restart(state: dict[str, Any], log_dir: Path) -> Server:
    port = state["server"].port
    state["server"] = start_dynamodb_local(port=port, db_path=state["db_path"], log_dir=log_dir)
    return state["server"]


def _replay(path: Path) -> str:
    out = io.StringIO()
    call_command("sessions_replay_log", str(path), stdout=out)
    return out.getvalue().strip()


def test_an_interaction_unsaved_while_dynamodb_was_down_is_replayed(
    own_dynamodb: dict[str, Any],
    log_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    own_dynamodb["server"].stop()  # the database goes away mid-invocation

    response = {"final_decision": "rejected", "recommendations": ["Call standby crew"]}
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        saved = interaction_complete(
            started, status="success", response=response, execution_time_ms=2300
        )
    assert saved is False
    lines = [r.getMessage() for r in caplog.records if r.name == "sessions.replay"]
    assert len(lines) == 1
    assert REPLAY_MARKER in lines[0]
    assert PROMPT not in lines[0]
    assert "QF12" not in lines[0]
    log_file = tmp_path / "exported.log"
    log_file.write_text(
        "2026-11-23 10:00:00 INFO other line\n"
        + "".join(f"2026-11-23 10:00:01 ERROR sessions.replay {line}\n" for line in lines)
    )

    _restart(own_dynamodb, log_dir)
    assert _replay(log_file) == "1 records: 0 restored, 1 completed, 0 already present"
    [interaction] = session_history_get(
        session_id=started.session_id, principal_arn=ALICE
    ).interactions
    assert interaction.status == "success"
    assert interaction.response == response
    assert interaction.execution_time_ms == 2300
    assert interaction.prompt == PROMPT

    assert _replay(log_file) == "1 records: 0 restored, 0 completed, 1 already present"


def test_a_record_of_a_missing_interaction_is_restored_once(
    shared_dynamodb: dict[str, Any], tmp_path: Path
) -> None:
    session_id = str(uuid.uuid4())
    record = {
        "version": 1,
        "session_id": session_id,
        "timestamp": 1_795_000_000_000,
        "request_id": str(uuid.uuid4()),
        "prompt": PROMPT,
        "user_id": ALICE,
        "status": "error",
        "response": None,
        "execution_time_ms": 40,
        "error_message": "runtime unreachable",
    }
    log_file = tmp_path / "records.jsonl"
    log_file.write_text('{"level": "ERROR", "message": "' + replay_record_encode(record) + '"}\n')
    assert _replay(log_file) == "1 records: 1 restored, 0 completed, 0 already present"
    assert _replay(log_file) == "1 records: 0 restored, 0 completed, 1 already present"
    history = session_history_get(
        session_id=session_id, principal_arn=ALICE, now_ms=1_795_000_000_000
    )
    assert history.interaction_count == 1
    assert [i.error_message for i in history.interactions] == ["runtime unreachable"]


def test_a_record_under_another_secret_key_is_reported(
    shared_dynamodb: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    record = {"session_id": str(uuid.uuid4()), "timestamp": 1}
    line = replay_record_encode(record)
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789abcdefghijklmnop"
    log_file = tmp_path / "foreign.log"
    log_file.write_text(line + "\n")
    errors = io.StringIO()
    with pytest.raises(CommandError, match=r"1 line\(s\) could not be read .*: line\(s\) 1$"):
        call_command("sessions_replay_log", str(log_file), stdout=io.StringIO(), stderr=errors)
    assert "line 1: the replay record does not decrypt" in errors.getvalue()


def _record(session_id: str, *, response: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "session_id": session_id,
        "timestamp": 1_795_000_000_000,
        "request_id": str(uuid.uuid4()),
        "prompt": PROMPT,
        "user_id": ALICE,
        "status": "success",
        "response": response,
        "execution_time_ms": 40,
        "error_message": None,
    }


def _json_line(message: str) -> str:
    return json.dumps({"level": "ERROR", "name": "sessions.replay", "message": message}) + "\n"


def test_replay_skips_and_reports_bad_lines_and_reassembles_a_record_split_across_lines(
    shared_dynamodb: dict[str, Any], tmp_path: Path
) -> None:
    """A corrupted line, a part whose record never completes and a record larger than one
    CloudWatch Logs event (256 KB, split across lines when written): the good records are
    restored, the bad lines reported by number, and the exit status is not zero."""
    small_session, large_session = str(uuid.uuid4()), str(uuid.uuid4())
    # About 260 KB of response: its token (about 350 KB) is more than one log event.
    large_response = {"recommendations": [f"{i:04d} " + "x" * 1300 for i in range(200)]}
    small = replay_record_messages(_record(small_session))
    large = replay_record_messages(_record(large_session, response=large_response))
    orphan = replay_record_messages(_record(str(uuid.uuid4()), response=large_response))
    assert len(small) == 1
    assert len(large) >= 2
    for message in large:
        assert message.startswith(REPLAY_PART_MARKER)
        assert len(_json_line(message).encode()) < 256 * 1024  # one CloudWatch Logs event
    token = small[0].split(" ", 1)[1]
    corrupted = f"{REPLAY_MARKER} {token[:40]}{'A' if token[40] != 'A' else 'B'}{token[41:]}"
    lines = [
        "2026-11-23 10:00:00 INFO an ordinary line",  # 1
        _json_line(large[0]).rstrip("\n"),  # 2
        _json_line(corrupted).rstrip("\n"),  # 3: damaged in transit
        _json_line(small[0]).rstrip("\n"),  # 4
        "2026-11-23 10:00:02 INFO another ordinary line",  # 5
        *(_json_line(m).rstrip("\n") for m in large[1:]),  # 6..
        _json_line(orphan[0]).rstrip("\n"),  # the first part of a record cut short
    ]
    orphan_line = len(lines)
    log_file = tmp_path / "export.jsonl"
    log_file.write_text("\n".join(lines) + "\n")

    result = _manage_replay(shared_dynamodb, log_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 records: 2 restored, 0 completed, 0 already present" in result.stdout
    assert "line 3: the replay record does not decrypt" in result.stderr
    assert f"line {orphan_line}: part of a replay record whose other" in result.stderr
    assert f"2 line(s) could not be read and were skipped: line(s) 3, {orphan_line}" in (
        result.stderr
    )
    small_history = session_history_get(
        session_id=small_session, principal_arn=ALICE, now_ms=1_795_000_000_000
    )
    assert small_history.interaction_count == 1
    [interaction] = session_history_get(
        session_id=large_session, principal_arn=ALICE, now_ms=1_795_000_000_000
    ).interactions
    assert interaction.response == large_response

    again = _manage_replay(shared_dynamodb, log_file)  # idempotent; still reports the bad lines
    assert again.returncode == 1
    assert "2 records: 0 restored, 0 completed, 2 already present" in again.stdout


def _manage_replay(dynamodb: dict[str, Any], log_file: Path) -> subprocess.CompletedProcess[str]:
    """``manage.py sessions_replay_log`` as an operator runs it (its exit status)."""
    return subprocess.run(
        [sys.executable, "manage.py", "sessions_replay_log", str(log_file)],
        cwd=ROOT,
        env={
            **os.environ,
            "SKYMARSHAL_ENV": "test",
            "DYNAMODB_ENDPOINT_URL": dynamodb["server"].http_url,
            "SESSION_TABLE_NAME": dynamodb["table"],
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_replayed_success_supersedes_a_worker_lost_expiry(
    own_dynamodb: dict[str, Any],
    log_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from invocations.expire import run_expire
    from sessions.models import SESSION_ITEM_TIMESTAMP, SessionItem
    from sessions.run_selectors import run_find

    started = interaction_begin(
        session_id=None, request_id=str(uuid.uuid4()), prompt=PROMPT, principal_arn=ALICE
    )
    own_dynamodb["server"].stop()  # the database goes away as the run completes
    response = {"final_decision": "rejected", "recommendations": ["Call standby crew"]}
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        saved = interaction_complete(
            started,
            status="success",
            response=response,
            execution_time_ms=2300,
            run_response={"status": "success", **response},
            http_status=200,
        )
    assert saved is False
    lines = [r.getMessage() for r in caplog.records if r.name == "sessions.replay"]
    log_file = tmp_path / "exported.log"
    log_file.write_text("".join(f"ERROR sessions.replay {line}\n" for line in lines))
    _restart(own_dynamodb, log_dir)
    # Its deadline passes before anyone replays the log: the run is ended as lost.
    lost = run_find(started.request_id)
    assert lost is not None
    assert lost.status == "running"
    run_expire(lost)
    expired = run_find(started.request_id)
    assert expired is not None
    assert expired.error is not None
    assert expired.error["error_code"] == "WORKER_LOST"

    assert _replay(log_file) == (
        "1 records: 0 restored, 0 completed, 0 already present, 1 replaced a lost run's record"
    )

    run = run_find(started.request_id)
    assert run is not None
    assert run.status == "succeeded"
    assert run.error is None
    assert run.response == {"status": "success", **response}
    assert run.http_status == 200
    [interaction] = session_history_get(
        session_id=started.session_id, principal_arn=ALICE
    ).interactions
    assert interaction.status == "success"
    assert interaction.response == response
    session = SessionItem.get(started.session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    assert session.active_run is None
    assert _replay(log_file) == "1 records: 0 restored, 0 completed, 1 already present"


@pytest.mark.parametrize("expired_first", [False, True], ids=["replayed", "expired-then-replayed"])
def test_a_replayed_background_run_ends_its_events_with_its_outcome(
    own_dynamodb: dict[str, Any],
    log_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    expired_first: bool,
) -> None:
    """A background run's events end with its outcome (``complete`` or ``error``), which
    is stored with it: replayed, the outcome is stored as the last event too, after the
    events stored, or in place of the WORKER_LOST ``error`` of an expiry meanwhile."""
    from invocations.expire import run_expire
    from sessions.run_selectors import run_events_after, run_find
    from sessions.run_services import run_event_append, run_start

    started = interaction_begin(
        session_id=None,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=ALICE,
        kind="invocation",
    )
    queued = run_find(started.request_id)
    assert queued is not None
    assert run_start(queued) == "started"
    run_event_append(queued, number=1, event="start", data='{"request_id":"r"}')
    run_event_append(queued, number=2, event="chunk", data='{"agent":"cargo"}')
    own_dynamodb["server"].stop()  # the database goes away as the run completes
    response = {"status": "success", "final_decision": "approved", "recommendations": []}
    with caplog.at_level(logging.ERROR, logger="sessions.replay"):
        saved = interaction_complete(
            started,
            status="success",
            response=response,
            execution_time_ms=2300,
            run_response=response,
            http_status=200,
            final_event=(3, "complete", json.dumps(response)),
        )
    assert saved is False
    lines = [r.getMessage() for r in caplog.records if r.name == "sessions.replay"]
    log_file = tmp_path / "exported.log"
    log_file.write_text("".join(f"ERROR sessions.replay {line}\n" for line in lines))
    _restart(own_dynamodb, log_dir)
    if expired_first:
        lost = run_find(started.request_id)
        assert lost is not None
        run_expire(lost)
        assert [e.event for e in run_events_after(started.request_id, 0)][-1] == "error"

    _replay(log_file)

    events = run_events_after(started.request_id, 0)
    assert [(e.number, e.event) for e in events] == [(1, "start"), (2, "chunk"), (3, "complete")]
    assert json.loads(events[-1].data) == response
    run = run_find(started.request_id)
    assert run is not None
    assert run.status == "succeeded"
    _replay(log_file)  # once more: nothing changes
    assert run_events_after(started.request_id, 0) == events
