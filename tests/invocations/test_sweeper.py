"""The sweeper ends lost runs whoever reads them or not: an /invoke run whose API process
was killed mid-run (nothing will ever read it: run_get finds only background runs) is
ended failed WORKER_LOST past its deadline plus grace, with its interaction, and its
session is released; by the service, the management command and the Lambda entry."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from scripts.stack import Server
from sessions.models import SESSION_ITEM_TIMESTAMP, SessionInteraction, SessionItem
from sessions.run_selectors import run_find
from tests.conftest import ApiFactory, RuntimeFactory
from tests.invocations.live import BASE_ENV, PROMPT, App

DEADLINE, GRACE = 5, 2
# Each test starts a runtime and an API and kills it mid-run: slow on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _interaction(session_id: str) -> SessionInteraction | None:
    items = [i for i in SessionInteraction.query(session_id, consistent_read=True) if i.timestamp]
    return items[0] if items else None


def _lost_invoke_run(api: Server, runtime: Server) -> tuple[str, str]:
    """An /invoke run whose API process is killed mid-run: its session and request ids."""
    session_id = str(uuid.uuid4())
    app = App(api=api, runtime=runtime)

    def call() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server dies under it
            app.invoke({"prompt": PROMPT, "session_id": session_id})

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    deadline = time.monotonic() + 30
    while (interaction := _interaction(session_id)) is None:
        assert time.monotonic() < deadline, "the run was never recorded"
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(api.process.pid, signal.SIGKILL)  # gunicorn and its workers, at once
    api.process.wait(timeout=10)
    caller.join(timeout=10)
    return session_id, interaction.request_id


@pytest.fixture
def lost_run(
    sessions_table: str, api_server_factory: ApiFactory, local_runtime_factory: RuntimeFactory
) -> tuple[str, str]:
    runtime = local_runtime_factory("--fault", "hang-mid-stream", "--fault-after", "2")
    api = api_server_factory(
        runtime=runtime,
        SESSION_TABLE_NAME=sessions_table,
        AGENTCORE_DEADLINE_SECONDS=str(DEADLINE),
        RUN_GRACE_SECONDS=str(GRACE),
        **BASE_ENV,
    )
    session_id, request_id = _lost_invoke_run(api, runtime)
    run = run_find(request_id)
    assert run is not None
    assert run.status == "running"
    return session_id, request_id


def _assert_ended_as_lost(session_id: str, request_id: str) -> None:
    run = run_find(request_id)
    assert run is not None
    assert run.status == "failed", run
    assert run.error is not None
    assert run.error["error_code"] == "WORKER_LOST"
    interaction = _interaction(session_id)
    assert interaction is not None
    assert interaction.status == "error"
    assert interaction.error_message.startswith("WORKER_LOST: ")
    session = SessionItem.get(session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    assert session.active_run is None  # released


def _past_deadline(request_id: str) -> None:
    run = run_find(request_id)
    assert run is not None
    time.sleep(max(0.0, run.deadline_at / 1000 - time.time() + 0.2))


def test_the_sweep_ends_a_lost_invoke_run_and_releases_its_session(
    lost_run: tuple[str, str],
) -> None:
    from invocations.sweeper import runs_sweep

    session_id, request_id = lost_run
    running = run_find(request_id)
    assert running is not None
    early = runs_sweep()
    if time.time() * 1000 < running.deadline_at:  # the sweep ended before the deadline
        assert early.ended == []
        assert run_find(request_id).status == "running"  # type: ignore[union-attr]

    _past_deadline(request_id)
    report = runs_sweep()

    assert early.ended + report.ended == [request_id]  # ended once, when it was due
    _assert_ended_as_lost(session_id, request_id)
    assert runs_sweep().ended == []  # nothing left to do


def test_the_management_command_sweeps(lost_run: tuple[str, str]) -> None:
    session_id, request_id = lost_run
    _past_deadline(request_id)
    out = StringIO()

    call_command("runs_sweep", stdout=out)

    assert "Ended 1 lost runs" in out.getvalue()
    _assert_ended_as_lost(session_id, request_id)


def test_the_lambda_scheduled_event_sweeps(lost_run: tuple[str, str]) -> None:
    from invocations.sweeper import runs_sweep_event

    session_id, request_id = lost_run
    _past_deadline(request_id)
    event: dict[str, Any] = {
        "detail-type": "Scheduled Event",
        "resources": ["arn:aws:events:us-east-1:1:rule/x-invocations.sweeper.runs_sweep_event"],
    }

    assert runs_sweep_event(event, None)["ended"] == 1
    _assert_ended_as_lost(session_id, request_id)


def _minute_has_left(seconds: float) -> None:
    """Wait for the next minute unless ``seconds`` are left in this one (the sweeper files
    deadlines by their minute)."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def _until(at_ms: int) -> None:
    time.sleep(max(0.0, at_ms / 1000 - time.time() + 0.1))


def test_a_deadline_moved_within_its_minute_stays_filed(sessions_table: str, settings: Any) -> None:
    """A background run's deadline is filed when it is accepted (its queue timeout
    included); starting it late moves the deadline past that. The sweep that finds the
    first deadline due files the new one, under the same minute and so the same key: it
    must not then forget it, or the run is never ended."""
    from invocations.sweeper import runs_sweep
    from sessions.begin import interaction_begin
    from sessions.models import SWEEP_BUCKET_MS
    from sessions.run_selectors import run_deadlines_in
    from sessions.run_services import run_start

    settings.AGENTCORE_DEADLINE_SECONDS, settings.RUN_GRACE_SECONDS = 5, 0
    settings.RUN_BACKGROUND_DEADLINE_SECONDS = 5
    settings.RUN_QUEUE_TIMEOUT_SECONDS = 3
    _minute_has_left(15)
    runs_sweep()  # the first sweep reads the last hour; the next ones, a minute
    request_id = str(uuid.uuid4())
    interaction_begin(
        session_id=None,
        request_id=request_id,
        prompt=PROMPT,
        principal_arn="arn:aws:iam::000000000000:user/sweeper-test",
        kind="invocation",
    )
    queued = run_find(request_id)
    assert queued is not None  # its deadline filed: accepted + 8 s
    _until(queued.created_at + 5000)
    assert run_start(queued) == "started"  # at about 5 s: its deadline moves to about 10 s
    running = run_find(request_id)
    assert running is not None
    assert running.deadline_at > queued.deadline_at
    assert running.deadline_at // SWEEP_BUCKET_MS == queued.deadline_at // SWEEP_BUCKET_MS

    _until(queued.deadline_at)
    assert runs_sweep().ended == []  # not lost yet: its deadline moved
    filed = run_deadlines_in(running.deadline_at // SWEEP_BUCKET_MS)
    assert [(e.request_id, e.deadline_at) for e in filed] == [(request_id, running.deadline_at)]

    _until(running.deadline_at)
    assert runs_sweep().ended == [request_id]
    ended = run_find(request_id)
    assert ended is not None
    assert ended.status == "failed"
    assert ended.error is not None
    assert ended.error["error_code"] == "WORKER_LOST"
