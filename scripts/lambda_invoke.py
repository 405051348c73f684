"""Run an unzipped Lambda package's ``handler.lambda_handler`` on this machine, the way the
Lambda python3.13 runtime does: a fresh interpreter whose import path is the package
directory and the standard library only (``-I -S``: no site-packages, no PYTHONPATH), its
working directory the package, one process for many events (a warm container).

The parent sends one JSON line per invocation on the child's stdin, ``{"event": …,
"trace_header": …}``; as the runtime does, the child puts the invocation's X-Ray trace
header (``Root=…;Parent=…;Sampled=…``) in ``_X_AMZN_TRACE_ID`` for the invocation, or
removes it. The child answers each with one JSON line: ``{"result": …, "seconds": …}`` or
``{"error": "…"}``. The first line the child writes, before any event, is ``{"ready": true,
"import_seconds": …}`` (the handler module imported).

SnapStart, simulated (no Lambda here snapshots a microVM): ``{"snapshot": true}`` runs
the before-snapshot hooks the package registered with ``snapshot_restore_py`` (in the
reverse order of registration, as the runtime does); ``{"restore": true}`` runs the
after-restore hooks (in the order of registration) in this process; ``{"fork": {…}}``
forks a child of this process, that is an environment restored from the same memory, which
runs the after-restore hooks, then the ``event`` given (if any) and the function
``"module:name"`` given as ``call``, and answers ``{"result": {"restore_seconds",
"handler", "call"}}``; ``{"call": "module:name"}`` answers that function's result here.

Opt-in, for the IAM policy test: with ``SKYMARSHAL_AWS_CALLS_FILE`` naming a file, the child
appends one JSON line there for every AWS call the handler makes: each botocore operation
(``BaseClient._make_api_call``, which boto3's clients and PynamoDB's both go through) as
``{"service", "operation", "resources"}``, and the AgentCore runtime's WebSocket handshake,
a SigV4-signed request that is not a botocore operation, as the operation
``InvokeAgentRuntimeWithWebSocketStream`` of ``bedrock-agentcore`` (recorded when
``AgentCoreRuntimeClient.generate_ws_connection`` signs it). ``resources`` holds only the
parameters that name what the call acts on (table, index, function, runtime, qualifier,
and each transaction item's kind and table), never an item's content. With
``SKYMARSHAL_AGENTCORE_WS_STANDIN`` naming a ws:// URL, the signed handshake goes there
(a local runtime) instead of to AgentCore, which cannot run here.

Standard library only: the child half runs inside the package's interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import IO, Any


class FakeLambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes Zappa reads)."""

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/23/[$LATEST]0123456789abcdef"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# The request parameters that say which resource an AWS call acts on.
_RESOURCE_PARAMETERS = (
    "TableName",
    "IndexName",
    "FunctionName",
    "Qualifier",
    "agentRuntimeId",
    "agentRuntimeArn",
    "qualifier",
)


def _call_resources(parameters: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {
        name: parameters[name] for name in _RESOURCE_PARAMETERS if name in parameters
    }
    if "TransactItems" in parameters:
        resources["TransactItems"] = [
            {"kind": kind, "TableName": item.get("TableName")}
            for entry in parameters["TransactItems"]
            for kind, item in entry.items()
        ]
    return resources


def _aws_calls_record(path: str) -> None:
    """Runs in the child, before the handler is imported: record every AWS call to
    ``path`` (see the module docstring), then make it as it would have been made."""
    import threading

    import botocore.client
    from bedrock_agentcore.runtime import AgentCoreRuntimeClient

    lock = threading.Lock()

    def record(service: str, operation: str, resources: dict[str, Any]) -> None:
        line = json.dumps({"service": service, "operation": operation, "resources": resources})
        with lock, open(path, "a", encoding="utf-8") as calls:
            calls.write(line + "\n")

    # Patched through Any: these are private (botocore) and typed (bedrock-agentcore)
    # attributes that only this recorder replaces.
    client_class: Any = botocore.client.BaseClient
    runtime_client_class: Any = AgentCoreRuntimeClient
    make_api_call = client_class._make_api_call

    def recorded_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        record(client.meta.service_model.service_name, operation_name, _call_resources(api_params))
        return make_api_call(client, operation_name, api_params)

    generate_ws_connection = runtime_client_class.generate_ws_connection

    def recorded_ws_connection(
        client: Any,
        runtime_arn: str,
        session_id: str | None = None,
        endpoint_name: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        record(
            "bedrock-agentcore",
            "InvokeAgentRuntimeWithWebSocketStream",
            {"agentRuntimeArn": runtime_arn, "qualifier": endpoint_name},
        )
        url, headers = generate_ws_connection(
            client, runtime_arn, session_id=session_id, endpoint_name=endpoint_name
        )
        return os.environ.get("SKYMARSHAL_AGENTCORE_WS_STANDIN") or url, headers

    client_class._make_api_call = recorded_api_call
    runtime_client_class.generate_ws_connection = recorded_ws_connection


def _call(name: str) -> Any:
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)()


def _hooks_run(kind: str) -> int:
    """Run the package's SnapStart hooks of ``kind`` as the runtime does."""
    import snapshot_restore_py

    if kind == "snapshot":
        hooks = list(reversed(snapshot_restore_py.get_before_snapshot()))
    else:
        hooks = list(snapshot_restore_py.get_after_restore())
    for function, args, kwargs in hooks:
        function(*args, **kwargs)
    return len(hooks)


def _forked(handler: Any, function_name: str, order: dict[str, Any]) -> dict[str, Any]:
    """Fork an environment restored from this process's memory; its answer."""
    import random
    import warnings

    # The random module reseeds itself in a forked child (os.register_at_fork); a restore
    # from a snapshot does not, so the child starts from the state the parent had.
    snapshot_random = random.getstate()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python warns that a fork of a process with threads may deadlock; the child
        # takes no lock a thread of this process could hold (it is idle between events).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the restored environment
        os.close(read_end)
        random.setstate(snapshot_random)
        try:
            began = time.perf_counter()
            _hooks_run("restore")
            answer: dict[str, Any] = {"restore_seconds": time.perf_counter() - began}
            if order.get("event") is not None:
                began = time.perf_counter()
                context = FakeLambdaContext(function_name, 300)
                answer["handler"] = handler.lambda_handler(order["event"], context)
                answer["handler_seconds"] = time.perf_counter() - began
            if order.get("call"):
                answer["call"] = _call(order["call"])
            data = json.dumps({"result": answer}, default=str).encode()
        except Exception:
            data = json.dumps({"error": traceback.format_exc()}).encode()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    forked: dict[str, Any] = json.loads(data) if data else {"error": "the fork died"}
    return forked


def _control(message: dict[str, Any], handler: Any, function_name: str) -> dict[str, Any]:
    """Answer a message that is not an event (see the module docstring)."""
    if message.get("snapshot"):
        return {"result": _hooks_run("snapshot")}
    if message.get("restore"):
        return {"result": _hooks_run("restore")}
    if "fork" in message:
        return _forked(handler, function_name, message["fork"])
    if "call" in message:
        return {"result": _call(message["call"])}
    return {"error": f"unknown message: {sorted(message)}"}


def _child(package_dir: str) -> None:
    """Runs in the package's interpreter: import the handler, then answer events."""
    out: IO[str] = sys.stdout
    # The handler, Django and the app log to stdout/stderr as on Lambda: keep this
    # process's protocol on its own descriptor and send their stdout to stderr.
    sys.stdout = sys.stderr
    os.chdir(package_dir)
    sys.path.insert(0, package_dir)
    started = time.perf_counter()
    if os.environ.get("SKYMARSHAL_AWS_CALLS_FILE"):
        _aws_calls_record(os.environ["SKYMARSHAL_AWS_CALLS_FILE"])
    import handler  # the zip's handler.py (Zappa's)

    out.write(json.dumps({"ready": True, "import_seconds": time.perf_counter() - started}))
    out.write("\n")
    out.flush()
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "skymarshal-api")
    for line in sys.stdin:
        message = json.loads(line)
        if "event" not in message:
            began = time.perf_counter()
            try:
                reply = _control(message, handler, function_name)
            except Exception:
                reply = {"error": traceback.format_exc()}
            reply.setdefault("seconds", time.perf_counter() - began)
            out.write(json.dumps(reply, default=str) + "\n")
            out.flush()
            continue
        event = message["event"]
        if message.get("trace_header"):
            os.environ["_X_AMZN_TRACE_ID"] = message["trace_header"]
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        context = FakeLambdaContext(function_name, 300)
        began = time.perf_counter()
        try:
            result = handler.lambda_handler(event, context)
            answer: dict[str, Any] = {"result": result, "seconds": time.perf_counter() - began}
        except Exception:
            answer = {"error": traceback.format_exc()}
        out.write(json.dumps(answer, default=str))
        out.write("\n")
        out.flush()


class LambdaProcess:
    """The parent half: start the child on ``package_dir`` with exactly ``env`` (nothing
    of this process's environment leaks in), send events, stop it."""

    def __init__(
        self,
        package_dir: Path,
        env: dict[str, str],
        *,
        log_path: Path | None = None,
        python_options: tuple[str, ...] = (),
    ) -> None:
        self._log = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
        started = time.perf_counter()
        self.process = subprocess.Popen(
            # -B: nothing is written beside the package's modules, as on Lambda, where the
            # function's directory (/var/task) is read-only: a module without bytecode in
            # the package is compiled again by every new environment.
            # ``python_options``: more of the interpreter's (the bench's ``-X importtime``).
            [
                sys.executable,
                "-I",
                "-S",
                "-B",
                *python_options,
                str(Path(__file__).resolve()),
                str(package_dir),
            ],
            cwd=package_dir,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "LAMBDA_TASK_ROOT": str(package_dir),
                **env,
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        ready = self._read()
        self.start_seconds = time.perf_counter() - started
        self.import_seconds = float(ready["import_seconds"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(10)
            raise RuntimeError(f"the Lambda process exited ({code}); see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def invoke(self, event: dict[str, Any], *, trace_header: str | None = None) -> dict[str, Any]:
        """The handler's result for ``event`` (in the X-Ray trace ``trace_header``, if any);
        raises RuntimeError if the handler raised."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"event": event, "trace_header": trace_header}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"lambda_handler raised:\n{answer['error']}")
        self.last_seconds = float(answer["seconds"])
        result: dict[str, Any] = answer["result"]
        return result

    def control(self, message: dict[str, Any]) -> Any:
        """The answer to a SnapStart message (see the module docstring); raises
        RuntimeError if it failed."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{sorted(message)} failed:\n{answer['error']}")
        self.last_seconds = float(answer["seconds"])
        return answer["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not isinstance(self._log, int):
            self._log.close()


if __name__ == "__main__":
    _child(sys.argv[1])
