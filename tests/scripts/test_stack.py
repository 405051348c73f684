"""The local stack's DynamoDB Local: telemetry off, its files kept out of the checkout."""

from __future__ import annotations

import os
from pathlib import Path

from scripts.stack import DYNAMODB_LOCAL_HOME, ROOT, Server


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
