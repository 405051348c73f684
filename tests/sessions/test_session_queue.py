"""One session's queue of runs, against DynamoDB Local: runs start in the order they were
accepted, one at a time; a new run never jumps the queue, not even when runs in it were
cancelled before their turn; a run that might not get its turn in time is refused at once
with Retry-After. A hypothesis state machine drives random submits, enqueues, starts,
completions and cancels against a model of the queue."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sessions.begin import interaction_begin
from sessions.complete import interaction_complete
from sessions.models import SESSION_ITEM_TIMESTAMP, SessionItem
from sessions.run_selectors import run_find
from sessions.run_services import run_cancel_request, run_start
from sessions.services import InteractionStarted, TurnBudget
from skymarshal_api.web.errors import SessionBusy

pytestmark = pytest.mark.slow

ALICE = "arn:aws:iam::111111111111:user/alice"
PROMPT = "Flight AA123 delayed 3 hours due to weather at ORD"
# Room for any queue the tests build: nothing is refused for lack of time.
ROOMY = TurnBudget(wait_ms=3_600_000, run_ms=60_000)


def _begin(session_id: str | None = None, **options: Any) -> InteractionStarted:
    options.setdefault("budget", ROOMY)
    return interaction_begin(
        session_id=session_id,
        request_id=str(uuid.uuid4()),
        prompt=PROMPT,
        principal_arn=ALICE,
        **options,
    )


def _end(started: InteractionStarted, status: Any = "success") -> None:
    assert interaction_complete(started, status=status, response=None, execution_time_ms=1)


def _cancel(started: InteractionStarted) -> None:
    """What DELETE does to a run: ask it to stop, and end it (its worker would)."""
    assert run_cancel_request(started.request_id)
    _end(started, "cancelled")


def _start(started: InteractionStarted) -> str:
    run = run_find(started.request_id)
    assert run is not None
    return run_start(run)


def test_a_new_run_waits_behind_the_queue_even_when_the_session_is_let_go(
    sessions_table: str,
) -> None:
    first = _begin()
    second = _begin(first.session_id, on_conflict="enqueue")
    _end(first)  # the session is let go, but the second run has not started yet
    with pytest.raises(SessionBusy) as busy:
        _begin(first.session_id)  # on_conflict "reject": it may not overtake
    assert busy.value.details == {
        "session_id": first.session_id,
        "active_request_id": second.request_id,
    }
    third = _begin(first.session_id, on_conflict="enqueue")
    assert third.queued_after == second.request_id
    assert _start(third) == "wait"
    assert _start(second) == "started"
    _end(second)
    assert _start(third) == "started"
    _end(third)
    _end(_begin(first.session_id))  # the queue has drained: a new run takes the session


def test_a_run_cancelled_before_its_turn_lets_no_later_run_overtake_an_earlier_one(
    sessions_table: str,
) -> None:
    first = _begin()
    second = _begin(first.session_id, on_conflict="enqueue")
    third = _begin(first.session_id, on_conflict="enqueue")
    fourth = _begin(first.session_id, on_conflict="enqueue")
    _cancel(third)
    _end(first)
    # The fourth was queued behind the third, which has ended; the second still waits.
    assert _start(fourth) == "wait"
    assert _start(second) == "started"
    assert _start(fourth) == "wait"
    _end(second)
    assert _start(fourth) == "started"


def test_a_cancelled_tail_does_not_open_the_session_to_a_new_run(sessions_table: str) -> None:
    first = _begin()
    second = _begin(first.session_id, on_conflict="enqueue")
    third = _begin(first.session_id, on_conflict="enqueue")
    _cancel(third)
    _end(first)
    with pytest.raises(SessionBusy):
        _begin(first.session_id)  # the second still waits for its turn
    fifth = _begin(first.session_id, on_conflict="enqueue")
    assert fifth.queued_after == second.request_id
    session = SessionItem.get(first.session_id, SESSION_ITEM_TIMESTAMP, consistent_read=True)
    assert session.queue_tail == fifth.request_id


def test_a_run_that_might_not_get_its_turn_in_time_is_refused_at_once(
    sessions_table: str,
) -> None:
    run_ms = 60_000
    began = time.monotonic()
    first = _begin(budget=TurnBudget(wait_ms=0, run_ms=run_ms))
    # Behind API Gateway a synchronous run may not wait at all: refused, with the time
    # the run ahead may still take.
    with pytest.raises(SessionBusy) as busy:
        _begin(first.session_id, on_conflict="enqueue", budget=TurnBudget(wait_ms=0, run_ms=run_ms))
    assert busy.value.details is not None
    assert busy.value.details["wait_limit_seconds"] == 0
    assert busy.value.details["active_request_id"] == first.request_id
    retry_after = int(busy.value.headers["Retry-After"])
    # The first run's 60 s, less what has passed since it was accepted (a loaded machine
    # may take seconds over these two calls).
    assert run_ms / 1000 - (time.monotonic() - began) <= retry_after <= run_ms / 1000
    assert "background run" in busy.value.message

    # With 90 s to wait, one run fits behind the first (it may end 60 s from now), a second
    # does not (its turn may come 120 s from now).
    budget = TurnBudget(wait_ms=90_000, run_ms=run_ms)
    second = _begin(first.session_id, on_conflict="enqueue", budget=budget)
    assert second.queued_after == first.request_id
    with pytest.raises(SessionBusy) as busy:
        _begin(first.session_id, on_conflict="enqueue", budget=budget, kind="invocation")
    # The queue drains 120 s after the first run's acceptance; its turn must come within
    # 90 s of now: 30 s too late, less the time since that acceptance.
    retry_after = int(busy.value.headers["Retry-After"])
    assert 30 - (time.monotonic() - began) <= retry_after <= 30
    assert "background run" not in busy.value.message
    run = run_find(second.request_id)
    assert run is not None
    assert run.status == "queued"  # the refusal changed nothing in the queue


@dataclass
class _Run:
    started: InteractionStarted
    position: int  # in acceptance order
    state: str = "waiting"  # waiting -> running -> ended, or waiting/running -> ended


@dataclass
class _Model:
    runs: list[_Run] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    def live(self) -> list[_Run]:
        return [run for run in self.runs if run.state != "ended"]

    def running(self) -> list[_Run]:
        return [run for run in self.runs if run.state == "running"]


class SessionQueueMachine(RuleBasedStateMachine):
    """One session; the model says what the table must do. Every run is accepted with room
    enough (ROOMY), so the only refusals are SESSION_BUSY for ``reject``."""

    def __init__(self) -> None:
        super().__init__()
        self.session_id: str | None = None
        self.model = _Model()

    def _accept(self, on_conflict: str) -> None:
        busy = bool(self.model.live())
        try:
            started = _begin(self.session_id, on_conflict=on_conflict)
        except SessionBusy:
            assert busy, "refused a run on a free session"
            assert on_conflict == "reject", "refused to queue a run"
            return
        assert not (busy and on_conflict == "reject"), "a run overtook the queue"
        self.session_id = started.session_id
        run = _Run(started, position=len(self.model.runs))
        if started.queued_after is None:
            assert not busy
            run.state = "running"  # a synchronous run on a free session holds it at once
            self.model.starts.append(run.position)
        self.model.runs.append(run)

    @rule()
    def submit(self) -> None:
        self._accept("reject")

    @rule()
    def enqueue(self) -> None:
        self._accept("enqueue")

    @precondition(lambda self: any(run.state == "waiting" for run in self.model.runs))
    @rule(data=st.data())
    def try_start(self, data: st.DataObject) -> None:
        waiting = [run for run in self.model.runs if run.state == "waiting"]
        run = data.draw(st.sampled_from(waiting))
        ahead_live = any(r.state != "ended" for r in self.model.runs[: run.position])
        outcome = _start(run.started)
        if ahead_live:
            assert outcome == "wait", f"run {run.position} started out of turn"
        else:
            assert outcome == "started", f"run {run.position} did not start in its turn"
            run.state = "running"
            self.model.starts.append(run.position)

    @precondition(lambda self: bool(self.model.running()))
    @rule()
    def complete(self) -> None:
        [run] = self.model.running()
        _end(run.started)
        run.state = "ended"

    @precondition(lambda self: bool(self.model.live()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from(self.model.live()))
        _cancel(run.started)
        run.state = "ended"

    @invariant()
    def one_run_at_a_time_in_acceptance_order(self) -> None:
        assert self.model.starts == sorted(self.model.starts)
        running = [
            run.position
            for run in self.model.runs
            if (found := run_find(run.started.request_id)) is not None and found.status == "running"
        ]
        assert running == [run.position for run in self.model.running()]
        assert len(running) <= 1


# Hundreds of DynamoDB Local round trips: minutes while the suite's other workers (and other
# jobs) load the machine; the 120 s default would cut a test that is not hung.
@pytest.mark.timeout(300)
def test_a_session_queue_under_random_submits_enqueues_starts_completions_and_cancels(
    sessions_table: str,
) -> None:
    run_state_machine_as_test(
        SessionQueueMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=14,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
