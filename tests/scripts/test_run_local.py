"""`make run` (scripts/run_local.py): the stack comes up, answers, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.stack import ROOT, free_port

pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(*words: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(word in cmdline for word in words):
            found.append(cmdline)
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    ports = {"api": free_port(), "runtime": free_port(), "dynamodb": free_port()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.run_local",
            "--api-port",
            str(ports["api"]),
            "--runtime-port",
            str(ports["runtime"]),
            "--dynamodb-port",
            str(ports["dynamodb"]),
            "--in-memory",
        ],
        cwd=ROOT,
        # Its own database (migrated at start), not the checkout's .local/db.sqlite3, which
        # a developer's `make run` may be using at the same time.
        env={
            **os.environ,
            "SKYMARSHAL_ENV": "local",
            "LOCAL_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if "Press Ctrl-C" in line:
            break
    else:
        process.kill()
    assert "Press Ctrl-C" in "".join(output), "".join(output)
    process.output = "".join(output)  # type: ignore[attr-defined]
    yield process, ports
    if process.poll() is None:
        process.kill()
        process.wait(10)


def _assert_nothing_left(ports: dict[str, int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [name for name, port in ports.items() if _port_open(port)]
        leftovers = _processes_mentioning(*(f"{port}" for port in ports.values()))
        if not alive and not leftovers:
            return
        time.sleep(0.2)
    raise AssertionError(f"still listening: {alive}; processes: {leftovers}")


def test_make_run_serves_a_healthy_stack_and_ctrl_c_stops_everything(
    stack: tuple[subprocess.Popen[str], dict[str, int]],
) -> None:
    process, ports = stack
    api = f"http://127.0.0.1:{ports['api']}"
    for url in ("/api/v1/health", "/api/v1/docs/", "/api/v1/redoc/", "/api/v1/schema/"):
        assert f"{api}{url}" in process.output  # type: ignore[attr-defined]
    assert "Sweeper        ends lost runs every 30 s" in process.output  # type: ignore[attr-defined]
    body = httpx.get(f"{api}/api/v1/health", timeout=15).json()
    assert body["status"] == "healthy"
    assert body["checks"]["agentcore"]["status"] == "healthy"
    assert body["checks"]["dynamodb"]["status"] == "healthy"

    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    _assert_nothing_left(ports)


def test_servers_do_not_outlive_a_killed_make_run(
    stack: tuple[subprocess.Popen[str], dict[str, int]],
) -> None:
    process, ports = stack
    process.kill()
    process.wait(10)
    _assert_nothing_left(ports)
