"""The fault suite: every run ends in its true final state whatever fails, on real servers.

DynamoDB Local is stopped (killed, then started again on the same port and data
directory) or frozen (SIGSTOP: it accepts connections and answers nothing, longer than the
app's retries last, then SIGCONT) at each step of a run: its beginning (the write-ahead
record), mid-stream while its events are stored, its completion (the final transaction
fails and the outcome goes to the replay log); the API process is killed mid-run with a
synchronous run, a background run in its threads and one waiting for a thread that never
comes. A sweeper runs beside them as ``make run`` keeps one (``manage.py runs_sweep
--every``), and replay records are written back with ``manage.py sessions_replay_log``, as
an operator would.

After each case, by the run's deadline plus grace (short ones, from the servers'
environment), every run is final with the right error code, every interaction is final,
the session holds no run (a fresh API process accepts a new run on it) and a run that
succeeded at the runtime is recorded as a success, after replay where its completion could
not be written. Each run is a row of the table printed at the end of the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from scripts.stack import (
    Server,
    start_dynamodb_local,
    start_local_runtime,
    start_sweeper,
)
from sessions.models import sessions_table_bind
from sessions.records import REPLAY_MARKER, ReplayRecordFound, replay_log_read
from sessions.run_selectors import RunRecord, run_events_after, run_find, run_last_event_number
from sessions.selectors import session_get, session_history_get
from sessions.services import clock_ms
from skymarshal_api.web.errors import SessionNotFound
from tests.conftest import _ApiServers, sessions_table_create, terminal_section_print
from tests.invocations.live import BASE_ENV, PROMPT, App, assert_error, new_session_id
from tests.signing import DEV_PRINCIPAL, botocore_headers

# Short deadlines: a run is lost DEADLINE + GRACE seconds after it starts (plus QUEUE while
# it waits for a worker). The sweeper looks every SWEEP_EVERY seconds; a lost run is ended
# at most SWEEP_SLACK_MS after its deadline, or after DynamoDB came back if later (a
# sweep's own reads and writes, slow on a busy machine and on a DynamoDB Local just
# started, whose first requests may time out).
DEADLINE, GRACE, QUEUE = 6, 1, 1
SWEEP_EVERY = 0.5
SWEEP_SLACK_MS = 8000
# The app gives up on DynamoDB sooner than in production: one attempt, 0.5 s to connect,
# 3 s to answer (on a busy machine DynamoDB Local sometimes takes over a second).
READ_TIMEOUT = 3
STORAGE_ENV = {
    "DYNAMODB_MAX_RETRY_ATTEMPTS": "0",
    "DYNAMODB_CONNECT_TIMEOUT_SECONDS": "0.5",
    "DYNAMODB_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
}
RUN_ENV = {
    "AGENTCORE_DEADLINE_SECONDS": str(DEADLINE),
    "RUN_GRACE_SECONDS": str(GRACE),
    "RUN_QUEUE_TIMEOUT_SECONDS": str(QUEUE),
    "RUN_POLL_SECONDS": "0.05",
    "RUN_CANCEL_CHECK_SECONDS": "0.2",
    **STORAGE_ENV,
}
# Seven agents one after another: a run takes about 7 x the agent latency. Quick runs end
# well within DEADLINE; slow ones leave time to fault them midway.
QUICK, SLOW = 300, 800  # ms
# A run's events: start, two chunks per agent, then complete (or error).
EVENTS = 1 + 14 + 1
INTERACTION_OF = {
    "succeeded": "success",
    "failed": "error",
    "timed_out": "timeout",
    "cancelled": "cancelled",
}
# Starting DynamoDB Local, three runtimes, four API servers and the sweeper (the first
# case's setup: up to 90 s on a busy machine), restarting DynamoDB Local (6-20 s), waiting
# out deadlines: a case takes up to about half a minute.
pytestmark = pytest.mark.timeout(240)


# --- the stack ------------------------------------------------------------------------------


class Storage:
    """The suite's own DynamoDB Local, keeping its data on disk so that it can be killed
    and started again on the same port with everything it had."""

    def __init__(self, db_path: Path, log_dir: Path) -> None:
        self._db_path, self._log_dir = db_path, log_dir
        self.server = self.start()
        self.back_at_ms = clock_ms()  # when it last came back (the sweeper can work again)

    def start(self, port: int | None = None) -> Server:
        return start_dynamodb_local(port=port, db_path=self._db_path, log_dir=self._log_dir)

    @property
    def url(self) -> str:
        return self.server.http_url

    def kill(self) -> None:
        os.killpg(self.server.process.pid, signal.SIGKILL)
        self.server.process.wait(timeout=10)
        self.server.stop()  # closes its log

    def restart(self) -> None:
        self.server = self.start(self.server.port)
        self.back_at_ms = clock_ms()

    def freeze(self) -> None:
        os.kill(self.server.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.server.process.pid, signal.SIGCONT)
        self.back_at_ms = clock_ms()

    def sweep_due_ms(self, run: RunRecord) -> int:
        """When the sweeper must have ended ``run`` if it is lost: its deadline, or when
        DynamoDB came back if that was later, plus a sweep's slack."""
        return max(run.deadline_at, self.back_at_ms) + SWEEP_SLACK_MS

    @contextlib.contextmanager
    def down(self, how: str) -> Iterator[None]:
        """DynamoDB Local ``killed`` or ``frozen`` for the block, then back."""
        if how == "killed":
            self.kill()
        else:
            self.freeze()
        try:
            yield
        finally:
            if how == "killed":
                self.restart()
            else:
                self.resume()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        self.server.stop()


@dataclass
class Suite:
    storage: Storage
    table: str
    quick: App  # quick runs, short deadlines
    patient: App  # slow runs, a deadline far enough to fault them and recover
    doomed: App  # slow runs, short deadlines, one worker thread: a case kills it
    checker: App  # a fresh API process that only checks sessions are free
    replay_dir: Path

    def replay(self, app: App, request_id: str) -> str:
        """``manage.py sessions_replay_log`` over the API's log lines of this run (as an
        operator replays a log export): what it printed."""
        lines = [
            line
            for line in app.api.log_path.read_text(encoding="utf-8").splitlines()
            if REPLAY_MARKER in line and request_id in line
        ]
        path = self.replay_dir / f"{request_id}.log"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out = StringIO()
        call_command("sessions_replay_log", str(path), stdout=out)
        return out.getvalue().strip()


def _all_stopped(servers: list[Server]) -> None:
    """Stop servers at once (stopping is mostly waiting for them to exit)."""
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        list(pool.map(Server.stop, servers))


@pytest.fixture(scope="module")
def suite(
    tmp_path_factory: pytest.TempPathFactory, log_dir: Path, local_runtime: Server
) -> Iterator[Suite]:
    # Started one after the other: a server dies with the thread that started it
    # (scripts/stack.py, PR_SET_PDEATHSIG).
    storage = Storage(tmp_path_factory.mktemp("faults-dynamodb"), log_dir)
    started: list[Server] = []

    def kept(server: Server) -> Server:
        started.append(server)
        return server

    try:
        quick_runtime = kept(start_local_runtime("--agent-latency-ms", str(QUICK), log_dir=log_dir))
        slow_runtime = kept(start_local_runtime("--agent-latency-ms", str(SLOW), log_dir=log_dir))
        table = sessions_table_create(storage.server, "sessions-faults")
        apis = _ApiServers(log_dir, storage.server, local_runtime)
        env = {"SESSION_TABLE_NAME": table, **BASE_ENV, **RUN_ENV}
        quick = kept(apis(runtime=quick_runtime, **env))
        patient = kept(apis(runtime=slow_runtime, **{**env, "AGENTCORE_DEADLINE_SECONDS": "30"}))
        doomed = kept(apis(runtime=slow_runtime, **env, RUN_WORKERS="1"))
        checker = kept(apis(**env))
        sweeper_env = {"SKYMARSHAL_ENV": "test", "DYNAMODB_ENDPOINT_URL": storage.url, **env}
        kept(start_sweeper(env=sweeper_env, every=SWEEP_EVERY, log_dir=log_dir))
        # This process reads the table through the app's own selectors, and replays into it.
        sessions_table_bind(table_name=table, endpoint_url=storage.url)
        yield Suite(
            storage=storage,
            table=table,
            quick=App(api=quick, runtime=quick_runtime),
            patient=App(api=patient, runtime=slow_runtime),
            doomed=App(api=doomed, runtime=slow_runtime),
            checker=App(api=checker, runtime=local_runtime),
            replay_dir=tmp_path_factory.mktemp("faults-replay"),
        )
    finally:
        sessions_table_bind()
        _all_stopped(started)
        storage.stop()


# --- what a case did, and what it must come to ---------------------------------------------


@dataclass
class Outcome:
    """One run of a case: what the client was told, and the final state it must reach.
    ``expected`` is (run status, error code); ("not recorded", None) for a run refused
    before anything was written."""

    path: str
    session_id: str
    request_id: str
    expected: tuple[str, str | None]
    runtime_succeeded: bool
    notes: list[str] = field(default_factory=list)
    replayed: bool = False
    events: int | None = None  # how many events a background run must have stored
    missed: list[str] = field(default_factory=list)  # how the fault missed what it aimed at


@dataclass
class Row:
    case: str
    path: str
    expected: str
    observed: str = "-"
    interaction: str = "-"
    session_free: str = "-"
    success_kept: str = "-"
    notes: str = ""
    passed: bool = False


def _show(status: str, code: str | None) -> str:
    return f"{status} {code}" if code else status


def _post(app: App, path: str, document: dict[str, Any], timeout: float = 30) -> httpx.Response:
    url = f"{app.api.http_url}/api/v1/{path}"
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    signed = botocore_headers("POST", url, body=body, headers=headers)
    return httpx.post(url, content=body, headers={**headers, **signed}, timeout=timeout)


def _submit(app: App, session_id: str) -> str:
    response = _post(app, "invocations", {"prompt": PROMPT, "session_id": session_id})
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


def _recorded(request_id: str, *, within: float = 15) -> RunRecord:
    deadline = time.monotonic() + within
    while (run := run_find(request_id)) is None:
        assert time.monotonic() < deadline, f"{request_id} was never recorded"
        time.sleep(0.05)
    return run


def _events_stored(request_id: str, count: int, *, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while run_last_event_number(request_id) < count:
        assert time.monotonic() < deadline, f"{request_id} never stored {count} events"
        time.sleep(0.03)


def _ended_within(request_id: str, seconds: float) -> RunRecord:
    deadline = time.monotonic() + seconds
    while (run := _recorded(request_id)).active:
        assert time.monotonic() < deadline, f"{request_id} still {run.status}"
        time.sleep(0.05)
    return run


def _ended_by_sweeper(storage: Storage, request_id: str) -> RunRecord:
    """The run once the sweeper has ended it (after its deadline)."""
    while (run := _recorded(request_id)).active:
        assert clock_ms() < storage.sweep_due_ms(run), f"{request_id} still {run.status}"
        time.sleep(0.1)
    return run


class _Invoke:
    """A synchronous /invoke in a thread: its response, or None when the server died
    under it."""

    def __init__(self, app: App, session_id: str) -> None:
        self.response: httpx.Response | None = None
        document = {"prompt": PROMPT, "session_id": session_id}
        self._thread = threading.Thread(target=self._call, args=(app, document), daemon=True)
        self._thread.start()

    def _call(self, app: App, document: dict[str, Any]) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.response = _post(app, "invoke", document, timeout=60)

    def join(self) -> httpx.Response | None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the invoke never returned"
        return self.response


def _interaction_request_id(session_id: str, *, within: float = 15) -> str:
    """The request id of the session's (first) interaction, once it is recorded."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(SessionNotFound):
            interactions = session_history_get(
                session_id=session_id, principal_arn=DEV_PRINCIPAL
            ).interactions
            if interactions:
                return interactions[0].request_id
        assert time.monotonic() < deadline, f"no interaction recorded on {session_id}"
        time.sleep(0.03)


def _succeeded_response(response: httpx.Response | None) -> dict[str, Any]:
    assert response is not None
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert body["status"] == "success"
    return body


# --- the cases ------------------------------------------------------------------------------


def case_begin(suite: Suite, how: str) -> list[Outcome]:
    """DynamoDB down when the runs arrive: the write-ahead record cannot be written, so
    each is refused with 503 STORAGE_UNAVAILABLE. Killed, nothing was written and nothing
    runs. Frozen, DynamoDB Local had already received the record and writes it once it
    resumes (as DynamoDB may apply a request whose answer timed out): a run nobody runs,
    holding its session, which the sweeper ends as lost at its deadline."""
    sessions = {"/invoke": new_session_id(), "/invocations": new_session_id()}
    with suite.storage.down(how), ThreadPoolExecutor(max_workers=2) as pool:
        responses = {
            path: pool.submit(
                _post, suite.quick, path[1:], {"prompt": PROMPT, "session_id": session_id}
            )
            for path, session_id in sessions.items()
        }
        refused = [(path, sessions[path], answer.result()) for path, answer in responses.items()]
    outcomes = []
    for path, session_id, response in refused:
        assert_error(response, 503, "STORAGE_UNAVAILABLE")
        assert response.headers["Retry-After"]
        request_id = response.headers["X-Request-ID"]
        notes = ["503 STORAGE_UNAVAILABLE"]
        expected: tuple[str, str | None] = ("not recorded", None)
        if how == "frozen":
            _recorded(request_id)  # the write lands when DynamoDB Local resumes
            notes.append("written late")
            expected = ("failed", "WORKER_LOST")
        outcomes.append(
            Outcome(
                path=path,
                session_id=session_id,
                request_id=request_id,
                expected=expected,
                runtime_succeeded=False,
                notes=notes,
            )
        )
    return outcomes


def case_mid_stream_frozen(suite: Suite) -> list[Outcome]:
    """DynamoDB frozen mid-stream for longer than storing one event retries: the run goes
    on, keeps its events, stores them once DynamoDB answers again and succeeds."""
    session_id = new_session_id()
    request_id = _submit(suite.patient, session_id)
    _events_stored(request_id, 3)
    failures = _storage_failures(suite.patient)
    with suite.storage.down("frozen"):
        time.sleep(READ_TIMEOUT + 1)  # longer than one attempt to store an event
    _ended_within(request_id, 40)  # (a failure is logged once its timeout is over)
    hit = _storage_failures(suite.patient) > failures  # (the app runs nothing else meanwhile)
    return [
        Outcome(
            path="/invocations",
            session_id=session_id,
            request_id=request_id,
            expected=("succeeded", None),
            runtime_succeeded=True,
            notes=["events stored late"],
            missed=[] if hit else ["the freeze missed the run"],
            events=EVENTS,
        )
    ]


def _storage_failures(app: App) -> int:
    """How many times the API has seen DynamoDB fail so far (to store an event, or to read
    whether the run was cancelled)."""
    return app.api.log_path.read_text(encoding="utf-8").count("DynamoDB failed to ")


def case_stream_lost_to_the_end(suite: Suite, at_event: int) -> list[Outcome]:
    """DynamoDB killed while a background run stores its events (from event ``at_event``)
    and still down when it completes: its outcome goes to the replay log; DynamoDB comes
    back after the run's deadline, the sweeper ends the run as lost, and replaying the
    log restores the success over WORKER_LOST."""
    session_id = new_session_id()
    request_id = _submit(suite.quick, session_id)
    _events_stored(request_id, at_event)
    suite.storage.kill()
    try:
        [record] = _replay_records(suite.quick, request_id, within=30)
    finally:
        suite.storage.restart()
    swept = _ended_by_sweeper(suite.storage, request_id)
    replayed = suite.replay(suite.quick, request_id)
    return [
        Outcome(
            path="/invocations",
            session_id=session_id,
            request_id=request_id,
            expected=("succeeded", None),
            runtime_succeeded=record["status"] == "success",
            notes=[
                f"logged {record['status']}",
                f"swept {_show(swept.status, _code(swept))}",
                f"replay: {_replay_summary(replayed)}",
            ],
            replayed=True,
            missed=_missed(swept, replayed, "replaced a lost run's record"),
        )
    ]


def case_invoke_completion(suite: Suite, how: str, *, sweep_first: bool) -> list[Outcome]:
    """DynamoDB down (killed or frozen) from mid-run to after a synchronous run completes:
    the client gets its 200 with a warning, the outcome goes to the replay log, and
    replaying it (before the sweep, or after the sweeper ended the run as lost) records
    the success and frees the session."""
    app = suite.quick if sweep_first or how == "frozen" else suite.patient
    session_id = new_session_id()
    call = _Invoke(app, session_id)
    request_id = _interaction_request_id(session_id)
    with suite.storage.down(how):
        body = _succeeded_response(call.join())
    notes = ["200 with a warning"]
    missed = [] if body.get("warnings") else ["the completion was written (no warning)"]
    if how == "frozen":
        # DynamoDB Local writes the completion it had received once it resumes.
        with contextlib.suppress(AssertionError):
            _ended_within(request_id, 5)
    if sweep_first:
        swept = _ended_by_sweeper(suite.storage, request_id)
        notes.append(f"swept {_show(swept.status, _code(swept))}")
        replayed = suite.replay(app, request_id)
        missed += _missed(swept, replayed, "replaced a lost run's record")
    else:
        replayed = suite.replay(app, request_id)
        # Frozen, the completion DynamoDB Local had received may have been written.
        wanted = ("1 completed", "1 already present") if how == "frozen" else ("1 completed",)
        if not any(says in replayed for says in wanted):
            missed.append(f"the replay did not say {' or '.join(wanted)}")
    notes.append(f"replay: {_replay_summary(replayed)}")
    return [
        Outcome(
            path="/invoke",
            session_id=session_id,
            request_id=request_id,
            expected=("succeeded", None),
            runtime_succeeded=True,
            notes=notes,
            replayed=True,
            missed=missed,
        )
    ]


def case_api_killed(suite: Suite) -> list[Outcome]:
    """The API process killed (SIGKILL) with a synchronous run mid-stream, a background
    run running in its one worker thread and another waiting for that thread: nothing is
    left to end them but the sweeper, at each one's deadline."""
    app = suite.doomed
    invoke_session, running_session, waiting_session = (new_session_id() for _ in range(3))
    running = _submit(app, running_session)
    _events_stored(running, 3)
    waiting = _submit(app, waiting_session)
    call = _Invoke(app, invoke_session)
    invoked = _interaction_request_id(invoke_session)
    time.sleep(0.5)  # the synchronous run is mid-stream
    assert _recorded(waiting).status == "queued"
    os.killpg(app.api.process.pid, signal.SIGKILL)  # gunicorn and its worker, at once
    app.api.process.wait(timeout=10)
    assert call.join() is None
    lost = ("failed", "WORKER_LOST")
    return [
        Outcome("/invoke", invoke_session, invoked, lost, False, ["killed mid-run"]),
        Outcome("/invocations", running_session, running, lost, False, ["killed mid-run"]),
        Outcome(
            "/invocations", waiting_session, waiting, lost, False, ["its worker never started"]
        ),
    ]


def _missed(swept: RunRecord, replayed: str, replay_says: str) -> list[str]:
    """How a case that meant the sweeper to end a run as lost, then the replay to restore
    it, missed that."""
    missed = []
    if _code(swept) != "WORKER_LOST":
        missed.append(f"the sweeper did not end it ({_show(swept.status, _code(swept))})")
    if replay_says not in replayed:
        missed.append(f"the replay did not say {replay_says}")
    return missed


def _replay_records(app: App, request_id: str, *, within: float) -> list[dict[str, Any]]:
    """The run's replay records in the API's log, once there is one."""
    deadline = time.monotonic() + within
    while True:
        lines = [
            line
            for line in app.api.log_path.read_text(encoding="utf-8").splitlines()
            if REPLAY_MARKER in line and request_id in line
        ]
        found = [f.record for f in replay_log_read(lines) if isinstance(f, ReplayRecordFound)]
        if found:
            return found
        assert time.monotonic() < deadline, f"{request_id} logged no replay record"
        time.sleep(0.1)


def _replay_summary(printed: str) -> str:
    """``1 records: 0 restored, 1 completed, ...`` → ``completed`` (its non-zero counts)."""
    counts = printed.split(":", 1)[1].split(",")
    return ", ".join(part.strip() for part in counts if not part.strip().startswith("0 "))


CASES: dict[str, Callable[[Suite], list[Outcome]]] = {
    "begin, DynamoDB killed": lambda suite: case_begin(suite, "killed"),
    "begin, DynamoDB frozen": lambda suite: case_begin(suite, "frozen"),
    "mid-stream, DynamoDB frozen": case_mid_stream_frozen,
    "mid-stream to completion, killed": lambda suite: case_stream_lost_to_the_end(suite, 3),
    # Killed while the sixth of seven agents works: its last events and the outcome fail.
    "completion, DynamoDB killed": lambda suite: case_stream_lost_to_the_end(suite, EVENTS - 4),
    "completion, killed, replay first": lambda suite: case_invoke_completion(
        suite, "killed", sweep_first=False
    ),
    "completion, killed, swept first": lambda suite: case_invoke_completion(
        suite, "killed", sweep_first=True
    ),
    "completion, DynamoDB frozen": lambda suite: case_invoke_completion(
        suite, "frozen", sweep_first=False
    ),
    "API process killed": case_api_killed,
}


# --- checking a run's final state ----------------------------------------------------------


def _check(suite: Suite, case: str, outcome: Outcome) -> Row:
    """Fill in the row of one run as observed now (its deadline has passed, or it ended)."""
    row = Row(case=case, path=outcome.path, expected=_show(*outcome.expected))
    row.notes = "; ".join(outcome.notes)
    problems: list[str] = list(outcome.missed)
    run = run_find(outcome.request_id)
    if outcome.expected[0] == "not recorded":
        row.observed = "not recorded" if run is None else _show(run.status, _code(run))
        if run is not None:
            problems.append("a refused run was recorded")
    else:
        if run is None:
            row.observed = "not recorded"
            problems.append("the run was not recorded")
        else:
            while run.active and clock_ms() < suite.storage.sweep_due_ms(run):
                time.sleep(0.1)
                run = run_find(outcome.request_id) or run
            row.observed = _show(run.status, _code(run))
            if (run.status, _code(run)) != outcome.expected:
                problems.append(f"expected {row.expected}")
            if (
                not outcome.replayed
                and _code(run) == "WORKER_LOST"
                and run.finished_at is not None
                and run.finished_at > suite.storage.sweep_due_ms(run)
            ):
                problems.append(f"ended {run.finished_at - run.deadline_at} ms after its deadline")
            if run.kind == "invocation":
                events = run_events_after(run.request_id, 0)
                last = events[-1].event if events else "none"
                wanted = "complete" if run.status == "succeeded" else "error"
                row.notes = "; ".join(
                    [*outcome.notes, f"events stored: {len(events)}, last {last}"]
                )
                if last != wanted:
                    problems.append(f"its events end with {last}, not {wanted}")
                if outcome.events is not None and [e.number for e in events] != list(
                    range(1, outcome.events + 1)
                ):
                    problems.append(f"not its {outcome.events} events in order")

    # Every interaction of the session is final, and this run's matches the run.
    try:
        interactions = session_history_get(
            session_id=outcome.session_id, principal_arn=DEV_PRINCIPAL
        ).interactions
    except SessionNotFound:
        interactions = []
    mine = [i for i in interactions if i.request_id == outcome.request_id]
    row.interaction = mine[0].status if mine else "none"
    if any(i.status == "in_progress" for i in interactions):
        problems.append("an interaction is still in progress")
    if run is not None and (not mine or INTERACTION_OF.get(run.status) != mine[0].status):
        problems.append("the interaction does not match the run")
    if run is None and mine:
        problems.append("an interaction was recorded for a refused run")

    # The session holds no run: none is recorded on it, and a fresh API process accepts one.
    held = None
    with contextlib.suppress(SessionNotFound):
        held = session_get(session_id=outcome.session_id, principal_arn=DEV_PRINCIPAL).active_run
    follow_up = _post(suite.checker, "invoke", {"prompt": PROMPT, "session_id": outcome.session_id})
    free = held is None and follow_up.status_code == 200
    row.session_free = "yes" if free else f"no (held by {held}, new run {follow_up.status_code})"
    if not free:
        problems.append("the session is held")

    # A success at the runtime is recorded as one (after replay where it had to be).
    if outcome.runtime_succeeded:
        kept = (
            run is not None
            and run.status == "succeeded"
            and run.response is not None
            and run.response.get("final_decision") is not None
            and bool(mine)
            and mine[0].status == "success"
            and mine[0].response is not None
        )
        row.success_kept = "yes" if kept else "LOST"
        if not kept:
            problems.append("the success was lost")
    if problems:
        row.notes = "; ".join([row.notes, *problems]) if row.notes else "; ".join(problems)
    row.passed = not problems
    return row


def _code(run: RunRecord) -> str | None:
    return str(run.error["error_code"]) if run.error else None


# --- the table ------------------------------------------------------------------------------

COLUMNS = (
    ("case", "case"),
    ("path", "path"),
    ("expected", "expected"),
    ("observed", "run"),
    ("interaction", "interaction"),
    ("session_free", "session free"),
    ("success_kept", "success kept"),
    ("passed", "ok"),
    ("notes", "notes"),
)


def table_lines(rows: list[Row]) -> list[str]:
    cells = [[title for _, title in COLUMNS]] + [
        [
            ("yes" if row.passed else "NO") if name == "passed" else str(getattr(row, name))
            for name, _ in COLUMNS
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return lines


@pytest.fixture(scope="module")
def fault_table(request: pytest.FixtureRequest) -> Iterator[list[Row]]:
    """The rows of every case; printed in the test output once the module is done."""
    rows: list[Row] = []
    yield rows
    terminal_section_print(
        request.config,
        [
            f"Fault suite: {sum(r.passed for r in rows)} of {len(rows)} runs "
            "in their true final state",
            *table_lines(rows),
        ],
    )


@pytest.mark.parametrize("case", list(CASES))
def test_every_run_reaches_its_true_final_state(
    case: str, suite: Suite, fault_table: list[Row]
) -> None:
    try:
        outcomes = CASES[case](suite)
    except Exception as exc:
        fault_table.append(Row(case=case, path="-", expected="-", notes=f"case failed: {exc!r}"))
        raise
    rows = [_check(suite, case, outcome) for outcome in outcomes]
    fault_table.extend(rows)
    failed = [row for row in rows if not row.passed]
    assert not failed, "\n".join(table_lines(failed))
