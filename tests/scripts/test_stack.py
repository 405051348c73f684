"""The local stack: DynamoDB Local with telemetry off and its files kept out of the checkout;
servers forked for the tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import (
    DYNAMODB_LOCAL_HOME,
    ROOT,
    ForkedProcess,
    Server,
    servers_forked,
    start_local_runtime,
)


def test_dynamodb_local_runs_without_telemetry_in_its_own_directory(
    dynamodb_local: Server,
) -> None:
    pid = dynamodb_local.process.pid
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"-disableTelemetry" in command
    assert b"DDB_LOCAL_TELEMETRY=0" in environment
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == DYNAMODB_LOCAL_HOME
    assert DYNAMODB_LOCAL_HOME.is_relative_to(ROOT / ".local")
    # The metadata file it writes where it runs is not in the checkout's root.
    assert not (ROOT / "dynamodb-local-metadata.json").exists()


@pytest.fixture
def forking_restored() -> Iterator[None]:
    yield
    servers_forked(True)  # the suite's choice (tests/conftest.py)


def test_a_forked_server_is_a_process_of_its_own_and_stops(
    log_dir: Path, forking_restored: None
) -> None:
    """Forked (the suite's choice), a runtime is forked from the fork server: a
    session of its own (stopping it stops its group), not this process's child, writing
    its log, and it ends on stop with its status; otherwise a subprocess of our own."""
    servers_forked(True)
    forked = start_local_runtime(log_dir=log_dir)
    try:
        assert isinstance(forked.process, ForkedProcess)
        pid = forked.process.pid
        assert os.getsid(pid) == pid
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert parent != os.getpid()
        assert forked.process.poll() is None
        assert forked.log_tail()  # uvicorn's start-up lines, in the server's own log
    finally:
        forked.stop()
    assert forked.process.poll() is not None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()

    servers_forked(False)
    spawned = start_local_runtime(log_dir=log_dir)
    try:
        assert isinstance(spawned.process, subprocess.Popen)
    finally:
        spawned.stop()
