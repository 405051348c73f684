"""GET /api/v1/invocations/{request_id}/wait: its timeout, and a run longer than API
Gateway's 29 s seen to its end by repeated waits (and by polling GET)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.invocations.live import PROMPT, Stack, assert_error
from tests.invocations.runs import FINAL, RUN_ENV, Runs, _accepted

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("query", "field"),
    [("?timeout=26", "timeout"), ("?timeout=-1", "timeout"), ("?timeout=soon", "timeout")],
)
def test_wait_refuses_a_timeout_over_25_seconds(runs: Runs, query: str, field: str) -> None:
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    body = assert_error(runs.get(accepted["request_id"], f"/wait{query}"), 400, "INVALID_REQUEST")
    assert field in body["details"]["fields"]
    runs.until_final(accepted["request_id"])


def test_a_long_run_completes_through_polling_and_through_repeated_waits(
    invoke_stack: Stack,
) -> None:
    """A run of 30 s (past API Gateway's 29 s), followed at once by a client polling GET
    every 2 s and a client calling wait with a 2.5 s timeout: both see it end."""
    runs = Runs(invoke_stack.app("--agent-latency-ms", "4300", **RUN_ENV))
    accepted = _accepted(runs.create({"prompt": PROMPT}))
    request_id = accepted["request_id"]
    polled: list[str] = []
    waited: list[str] = []

    def poll() -> None:
        while True:
            status = runs.get(request_id).json()["status"]
            polled.append(status)
            if status in FINAL:
                return
            time.sleep(2)

    def wait() -> None:
        while True:
            status = runs.wait(request_id, 2.5)["status"]
            waited.append(status)
            if status in FINAL:
                return

    began = time.monotonic()
    threads = [threading.Thread(target=poll), threading.Thread(target=wait)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert time.monotonic() - began > 29
    assert polled[-1] == waited[-1] == "succeeded"
    assert len(polled) >= 10
    assert len(waited) >= 10
    assert set(polled[:-1]) <= {"queued", "running"}
    assert set(waited[:-1]) <= {"queued", "running"}
