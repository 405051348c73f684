"""The load test scenario of design.md: each user invokes SkyMarshal, then waits 1 to 3 s.

Each user signs its requests with SigV4 (botocore, as SDK callers do) with a key of its own
(benchmarks/load_users.py); ``make load`` (benchmarks/load.py) starts the stack with those
keys. A response counts as an error unless it is a 200 InvokeResponse.

Every request that ends once all users have started is recorded with its exact time (locust's
own percentiles are rounded to two significant digits), the server's Server-Timing spans and
its X-Request-ID, and written, when locust quits, to the JSON file named by
SKYMARSHAL_LOAD_RESULTS.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.load_users import load_key

PROMPT = "Flight delayed 2 hours due to maintenance"
REGION = "us-east-1"
PATH = "/api/v1/invoke"


_numbers = itertools.count()


def server_timing_parse(header: str) -> dict[str, float]:
    """``persistence;dur=12.30, runtime;dur=2001.07, total;dur=2015.84`` as a dict."""
    spans: dict[str, float] = {}
    for entry in header.split(","):
        name, _, parameters = entry.strip().partition(";")
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if name and key == "dur":
                with contextlib.suppress(ValueError):
                    spans[name] = float(value)
    return spans


class _Recorder:
    def __init__(self) -> None:
        self.full_load_at: float | None = None
        self.stopping_at: float | None = None
        self.requests: list[dict[str, Any]] = []

    def on_spawning_complete(self, user_count: int, **_: Any) -> None:
        self.full_load_at = time.time()

    def on_test_stopping(self, **_: Any) -> None:
        self.stopping_at = time.time()

    def on_request(
        self, response_time: float, exception: Any, response: Any = None, **_: Any
    ) -> None:
        if self.full_load_at is not None:
            headers = getattr(response, "headers", None) or {}
            self.requests.append(
                {
                    "ended": time.time(),
                    "ms": response_time,
                    "error": None if exception is None else str(exception)[:300],
                    # Where the server says the time went, and the request's id (its
                    # metrics in the server's log carry it).
                    "server_timing": server_timing_parse(headers.get("Server-Timing") or ""),
                    "request_id": headers.get("X-Request-ID"),
                }
            )

    def on_quitting(self, **_: Any) -> None:
        path = os.environ.get("SKYMARSHAL_LOAD_RESULTS")
        if path:
            with open(path, "w") as results:
                json.dump(
                    {
                        "full_load_at": self.full_load_at,
                        "stopping_at": self.stopping_at,
                        "requests": self.requests,
                    },
                    results,
                )


_recorder = _Recorder()
events.spawning_complete.add_listener(_recorder.on_spawning_complete)
events.test_stopping.add_listener(_recorder.on_test_stopping)
events.request.add_listener(_recorder.on_request)
events.quitting.add_listener(_recorder.on_quitting)


class SkyMarshalUser(FastHttpUser):
    wait_time = between(1, 3)
    # A run takes about 2 s; give the whole request well past the API's own limits.
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        key, secret, _ = load_key(next(_numbers))
        self._credentials = Credentials(key, secret)

    @task
    def invoke_agent(self) -> None:
        body = json.dumps({"prompt": PROMPT})
        url = f"{self.host}{PATH}"
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self._credentials, "execute-api", REGION).add_auth(request)
        with self.client.post(
            PATH,
            data=body,
            headers=dict(request.headers.items()),
            name="POST /api/v1/invoke",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                problem = response.error if response.status_code == 0 else response.text
                response.failure(f"{response.status_code}: {str(problem or '')[:200]}")
                return
            answer = response.json()
            if answer.get("status") != "success" or "final_decision" not in answer:
                response.failure(f"not an InvokeResponse: {(response.text or '')[:200]}")
