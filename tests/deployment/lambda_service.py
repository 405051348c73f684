"""A stand-in for the Lambda service, which cannot run here: its Invoke API for asynchronous
invocations (``X-Amz-Invocation-Type: Event``) and the event queue behind it, running each
event in containers of the unzipped package (scripts/lambda_invoke.py), as strict as AWS's
documentation ("Invoke" in the Lambda API Reference; "How Lambda handles errors and retries
with asynchronous invocation" in the Developer Guide):

- the request must be SigV4-signed for service ``lambda``; an unknown function, or a
  qualifier (``name:alias`` or ``?Qualifier=``) that is not one of its aliases, is 404
  ResourceNotFoundException; a payload over 256 KB is 413 RequestTooLargeException; an
  accepted event is 202 with an empty body;
- a function runs at most ``reserved_concurrency`` events at once, one per container;
  an event that finds them all busy is throttled: returned to the queue and retried with
  an interval growing from 1 s to at most 5 min, until its maximum event age, then dropped;
- an event whose invocation fails (the handler raised, or the function timed out: its
  container is then replaced) is retried ``max_retry_attempts`` times (at most 2), one
  minute after the first failure and two after the second, then dropped.

``time_scale`` shrinks every documented interval (1 s, 5 min, 1 and 2 min, the event age)
so that tests take seconds; nothing else changes.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from scripts.lambda_invoke import LambdaProcess

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024
THROTTLE_FIRST_RETRY_SECONDS = 1.0
THROTTLE_MAX_RETRY_SECONDS = 300.0
ERROR_RETRY_SECONDS = (60.0, 120.0)
MAX_EVENT_AGE_SECONDS = 6 * 3600.0


@dataclass
class Delivery:
    """One event's life in the queue."""

    event_id: str
    function: str
    qualifier: str | None
    payload: dict[str, Any]
    accepted_at: float
    attempts: int = 0  # invocations that ran (and failed, or succeeded last)
    throttles: int = 0
    outcome: str = "queued"  # queued | succeeded | dropped-retries | dropped-age
    errors: list[str] = field(default_factory=list)


@dataclass
class Function:
    name: str
    start_container: Callable[[], LambdaProcess]
    reserved_concurrency: int
    # The aliases that exist (Zappa's ``snapstart`` alias when snap_start is on).
    aliases: frozenset[str] = frozenset()
    timeout_seconds: float = 900.0
    max_retry_attempts: int = 2
    max_event_age_seconds: float = MAX_EVENT_AGE_SECONDS
    idle: list[LambdaProcess] = field(default_factory=list)
    busy: int = 0
    containers: list[LambdaProcess] = field(default_factory=list)


class LambdaService:
    def __init__(self, *, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.functions: dict[str, Function] = {}
        self.deliveries: list[Delivery] = []
        self.rejected: list[tuple[int, str]] = []
        self._lock = threading.Condition()
        self._timers: list[threading.Timer] = []
        self._closed = False
        service = self

        class Invoke(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                service._http_invoke(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # --- functions ---------------------------------------------------------------------------

    def function_add(self, function: Function) -> None:
        self.functions[function.name] = function

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        for function in self.functions.values():
            for container in function.containers:
                container.stop()

    # --- the Invoke API ----------------------------------------------------------------------

    def _http_invoke(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        url = urlsplit(request.path)
        match = INVOKE_PATH.match(unquote(url.path))
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 ") or "/lambda/aws4_request" not in (
            authorization
        ):
            self._refuse(request, 403, "AccessDeniedException", "The request is not signed.")
            return
        # FunctionName "my-function:alias" or the Qualifier parameter names an alias.
        name, _, qualifier = (match["name"] if match else request.path).partition(":")
        qualifier = qualifier or parse_qs(url.query).get("Qualifier", [""])[0]
        function = self.functions.get(name) if match else None
        if function is None or (qualifier and qualifier not in function.aliases):
            self._refuse(
                request,
                404,
                "ResourceNotFoundException",
                f"Function not found: {match['name'] if match else request.path}",
            )
            return
        if request.headers.get("X-Amz-Invocation-Type") != "Event":
            self._refuse(
                request,
                400,
                "InvalidParameterValueException",
                "This stand-in takes asynchronous invocations (Event) only.",
            )
            return
        if len(body) > MAX_ASYNC_PAYLOAD_BYTES:
            self._refuse(request, 413, "RequestTooLargeException", "Request must be smaller.")
            return
        delivery = Delivery(
            event_id=str(uuid.uuid4()),
            function=name,
            qualifier=qualifier or None,
            payload=json.loads(body),
            accepted_at=time.monotonic(),
        )
        with self._lock:
            self.deliveries.append(delivery)
        request.send_response(202)
        request.send_header("X-Amzn-RequestId", delivery.event_id)
        request.send_header("Content-Length", "0")
        request.end_headers()
        self._attempt(delivery)

    def _refuse(
        self, request: BaseHTTPRequestHandler, status: int, kind: str, message: str
    ) -> None:
        self.rejected.append((status, kind))
        body = json.dumps({"Type": "User", "message": message}).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("X-Amzn-ErrorType", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    # --- the event queue ---------------------------------------------------------------------

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            timer = threading.Timer(seconds * self.time_scale, action)
            timer.daemon = True
            self._timers.append(timer)
        timer.start()

    def _attempt(self, delivery: Delivery) -> None:
        function = self.functions[delivery.function]
        age = time.monotonic() - delivery.accepted_at
        if age > function.max_event_age_seconds * self.time_scale:
            delivery.outcome = "dropped-age"
            return
        with self._lock:
            if self._closed:
                return
            if function.busy >= function.reserved_concurrency:
                delivery.throttles += 1
                wait = min(
                    THROTTLE_FIRST_RETRY_SECONDS * 2 ** (delivery.throttles - 1),
                    THROTTLE_MAX_RETRY_SECONDS,
                )
                throttled = True
            else:
                function.busy += 1
                throttled = False
        if throttled:
            self._later(wait, lambda: self._attempt(delivery))
            return
        threading.Thread(target=self._run, args=(function, delivery), daemon=True).start()

    def _run(self, function: Function, delivery: Delivery) -> None:
        with self._lock:
            container = function.idle.pop() if function.idle else None
        if container is None:
            container = function.start_container()
            with self._lock:
                function.containers.append(container)
        delivery.attempts += 1
        timed_out = threading.Timer(function.timeout_seconds, container.process.kill)
        timed_out.start()
        error = None
        try:
            container.invoke(delivery.payload)
        except RuntimeError as exc:
            error = str(exc)
        finally:
            timed_out.cancel()
        alive = container.process.poll() is None
        with self._lock:
            function.busy -= 1
            if alive:
                function.idle.append(container)
        if error is None:
            delivery.outcome = "succeeded"
            return
        delivery.errors.append(error if alive else "Task timed out")
        retries = delivery.attempts - 1
        if retries >= function.max_retry_attempts:
            delivery.outcome = "dropped-retries"
            return
        self._later(ERROR_RETRY_SECONDS[retries], lambda: self._attempt(delivery))

    # --- what tests read ---------------------------------------------------------------------

    def running(self, function: str) -> int:
        with self._lock:
            return self.functions[function].busy

    def settled(self, within: float) -> list[Delivery]:
        """Every delivery once none is queued any more (or after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                if all(d.outcome != "queued" for d in self.deliveries):
                    return list(self.deliveries)
            time.sleep(0.1)
        with self._lock:
            return list(self.deliveries)
