"""Run webhooks over HTTP, end to end: the API under gunicorn, the local runtime and
DynamoDB Local, and a receiver on 127.0.0.1 (the local-only WEBHOOK_ALLOW_LOCAL_HTTP) that
checks every delivery with standardwebhooks' own verifier. A short retry schedule
(WEBHOOK_RETRY_SCHEDULE_SECONDS) stands for the real one of hours."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import LazySettings
from standardwebhooks import Webhook, WebhookVerificationError

from scripts.stack import Server, start_local_runtime
from tests.conftest import _ApiServers, sessions_table_create
from tests.invocations.live import PROMPT, assert_error
from tests.log_audit import SENT
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, botocore_headers, botocore_send
from tests.webhook_receiver import Answer, Received, Receiver, webhook_receiver

pytestmark = pytest.mark.timeout(180)

# One caller per test that holds a signing secret (a caller's secrets are shared by all
# its runs), so that no test sees another's rotation.
CALLERS = {
    name: {
        "key": f"AKIAWEBHOOK{index:09d}",
        "secret": f"webhook-caller-secret-{index}",
        "principal": f"arn:aws:iam::000000000000:user/webhook-{name}",
    }
    for index, name in enumerate(
        (
            "succeeded",
            "background",
            "retries",
            "gone",
            "slow",
            "rotation",
            "redeliver",
            "killed",
            "lost",
            "listed",
            "no-secret",
            "stranger",
        )
    )
}
KEYS = {
    DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL},
    **{c["key"]: {"secret": c["secret"], "principal": c["principal"]} for c in CALLERS.values()},
}
SCHEDULE = "0.3,0.3,0.3"
ENV = {
    "SIGV4_LOCAL_KEYS": json.dumps(KEYS),
    "RATE_LIMIT_INVOKE_PER_WINDOW": "1000",
    "WEBHOOK_ALLOW_LOCAL_HTTP": "true",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": SCHEDULE,
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "RUN_POLL_SECONDS": "0.05",
}


def sign(name: str) -> dict[str, str]:
    caller = CALLERS[name]
    return {"key": caller["key"], "secret": caller["secret"]}


@pytest.fixture(scope="module")
def table(dynamodb_local: Server) -> str:
    return sessions_table_create(dynamodb_local, "sessions-webhooks")


@pytest.fixture(scope="module")
def runtime(log_dir: Path) -> Iterator[Server]:
    server = start_local_runtime("--agent-latency-ms", "0", log_dir=log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(log_dir: Path, dynamodb_local: Server, runtime: Server, table: str) -> Iterator[Server]:
    servers = _ApiServers(log_dir, dynamodb_local, runtime)
    yield servers(SESSION_TABLE_NAME=table, **ENV)
    servers.stop_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as started:
        yield started


@pytest.fixture
def here(settings: LazySettings, dynamodb_local: Server, table: str) -> LazySettings:
    """This process bound to the servers' table, with their webhook settings (to run the
    sweeper here)."""
    settings.DYNAMODB_ENDPOINT_URL = dynamodb_local.http_url
    settings.SESSION_TABLE_NAME = table
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = True
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = tuple(float(s) for s in SCHEDULE.split(","))
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    return settings


class Hooks:
    def __init__(self, api: Server) -> None:
        self.base = f"{api.http_url}/api/v1"

    def post(
        self, path: str, document: Any | None, who: str, timeout: float = 30
    ) -> httpx.Response:
        body = b"" if document is None else json.dumps(document).encode()
        headers = {"Content-Type": "application/json"} if document is not None else {}
        url = f"{self.base}/{path}"
        signed = botocore_headers("POST", url, body=body, headers=headers, **sign(who))
        return httpx.post(url, content=body, headers={**headers, **signed}, timeout=timeout)

    def get(self, path: str, who: str) -> httpx.Response:
        return botocore_send("GET", f"{self.base}/{path}", **sign(who))

    def secret(self, who: str) -> dict[str, Any]:
        response = self.post("webhook-secrets", None, who)
        assert response.status_code == 201, response.text
        assert response.headers["Cache-Control"] == "no-store"
        body: dict[str, Any] = response.json()
        SENT.credential_record(body["secret"])  # no log line may hold it
        return body

    def invoke(self, receiver: Receiver, who: str, **webhook: Any) -> dict[str, Any]:
        response = self.post(
            "invoke",
            {"prompt": PROMPT, "webhook": {"url": receiver.url(), **webhook}},
            who,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def deliveries(self, request_id: str, who: str) -> list[dict[str, Any]]:
        response = self.get(f"invocations/{request_id}/deliveries", who)
        assert response.status_code == 200, response.text
        assert response.json()["request_id"] == request_id
        return list(response.json()["deliveries"])

    def settled(self, request_id: str, who: str, *, timeout: float = 20) -> list[dict[str, Any]]:
        """The run's deliveries once none is pending."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.deliveries(request_id, who)
            if deliveries and all(d["status"] != "pending" for d in deliveries):
                return deliveries
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.1)


@pytest.fixture(scope="module")
def hooks(api: Server) -> Hooks:
    return Hooks(api)


def _session_runs(session_id: str) -> list[str]:
    from sessions.models import SessionInteraction

    return [
        item.request_id
        for item in SessionInteraction.query(session_id, consistent_read=True)
        if item.timestamp
    ]


def _assert_verified(received: Received, secret: str, *, request_id: str, event: str) -> Any:
    payload = received.verified(secret)
    assert payload["type"] == event
    assert payload["data"]["request_id"] == request_id
    assert PROMPT not in received.body.decode()
    assert received.headers["content-type"] == "application/json"
    assert received.webhook_id.startswith("msg_")
    assert abs(int(received.headers["webhook-timestamp"]) - received.at) < 5
    return payload


def test_an_invoke_run_sends_one_signed_run_succeeded(hooks: Hooks, receiver: Receiver) -> None:
    secret = hooks.secret("succeeded")["secret"]
    assert secret.startswith("whsec_")
    response = hooks.invoke(receiver, "succeeded")

    [received] = receiver.wait_for(1)
    payload = _assert_verified(
        received, secret, request_id=response["request_id"], event="run.succeeded"
    )
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["result"]["final_decision"] == response["final_decision"]
    assert set(payload["data"]["links"]) == {"session", "deliveries"}  # a run of /invoke
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(received.body, received.headers)

    [delivery] = hooks.settled(response["request_id"], "succeeded")
    assert delivery["delivery_id"] == received.webhook_id
    assert delivery["event"] == "run.succeeded"
    assert delivery["status"] == "delivered"
    assert delivery["payload"] == payload
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["redelivery"] is False
    time.sleep(1.0)
    assert len(receiver.received) == 1  # once


def test_a_background_run_sends_its_start_and_its_end(hooks: Hooks, receiver: Receiver) -> None:
    secret = hooks.secret("background")["secret"]
    response = hooks.post(
        "invocations",
        {
            "prompt": PROMPT,
            "webhook": {"url": receiver.url(), "events": ["run.started", "run.succeeded"]},
        },
        "background",
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    assert response.json()["links"]["deliveries"] == f"/api/v1/invocations/{request_id}/deliveries"

    received = receiver.wait_for(2)
    events = {
        _assert_verified(r, secret, request_id=request_id, event=json.loads(r.body)["type"])[
            "type"
        ]: r
        for r in received
    }
    assert set(events) == {"run.started", "run.succeeded"}
    started = json.loads(events["run.started"].body)["data"]
    assert started["status"] == "running"
    assert started["result"] is None
    assert started["links"]["self"] == f"/api/v1/invocations/{request_id}"
    assert events["run.started"].webhook_id != events["run.succeeded"].webhook_id
    deliveries = hooks.settled(request_id, "background")
    assert [d["event"] for d in deliveries] == ["run.started", "run.succeeded"]


def test_a_receiver_answering_500_twice_then_200_gets_three_attempts_with_one_webhook_id(
    hooks: Hooks, receiver: Receiver
) -> None:
    secret = hooks.secret("retries")["secret"]
    receiver.answer(Answer(status=500), Answer(status=503))
    response = hooks.invoke(receiver, "retries")

    received = receiver.wait_for(3)
    assert len({r.webhook_id for r in received}) == 1
    assert len({r.body for r in received}) == 1  # the same message each time
    for r in received:
        _assert_verified(r, secret, request_id=response["request_id"], event="run.succeeded")
    [delivery] = hooks.settled(response["request_id"], "retries")
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert all(gap >= 0.2 for gap in gaps), gaps  # 0.3 s, with ±10 % jitter
    time.sleep(1.0)
    assert len(receiver.received) == 3


def test_a_receiver_answering_410_gets_no_more(hooks: Hooks, receiver: Receiver) -> None:
    hooks.secret("gone")
    receiver.answer(Answer(status=410))
    response = hooks.invoke(receiver, "gone")
    receiver.wait_for(1)
    [delivery] = hooks.settled(response["request_id"], "gone")
    assert delivery["status"] == "gone"
    assert [a["status_code"] for a in delivery["attempts"]] == [410]
    assert delivery["next_attempt_at"] is None
    time.sleep(1.5)  # past the whole schedule
    assert len(receiver.received) == 1


def test_a_slow_receiver_times_out_and_is_retried_to_the_end_of_the_schedule(
    hooks: Hooks, receiver: Receiver
) -> None:
    hooks.secret("slow")
    receiver.default = Answer(delay=2.0)
    response = hooks.invoke(receiver, "slow")
    [delivery] = hooks.settled(response["request_id"], "slow", timeout=30)
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 1 + len(SCHEDULE.split(","))
    for attempt in delivery["attempts"]:
        assert attempt["status_code"] is None
        assert attempt["error"] == "timed out after 1 s"
        assert 900 <= attempt["latency_ms"] < 2000


def test_during_a_rotation_both_secrets_sign_every_delivery(
    hooks: Hooks, receiver: Receiver
) -> None:
    old = hooks.secret("rotation")
    assert old["rotated"] == []
    new = hooks.secret("rotation")
    [rotated] = new["rotated"]
    assert rotated["secret_id"] == old["secret_id"]
    assert rotated["expires_at"] is not None
    assert new["secret"] != old["secret"]

    response = hooks.invoke(receiver, "rotation")
    [received] = receiver.wait_for(1)
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    for secret in (old["secret"], new["secret"]):
        _assert_verified(received, secret, request_id=response["request_id"], event="run.succeeded")


def test_redeliver_sends_the_same_message_again(hooks: Hooks, receiver: Receiver) -> None:
    secret = hooks.secret("redeliver")["secret"]
    response = hooks.invoke(receiver, "redeliver")
    request_id = response["request_id"]
    [first] = receiver.wait_for(1)
    [delivery] = hooks.settled(request_id, "redeliver")

    again = hooks.post(
        f"invocations/{request_id}/deliveries/{delivery['delivery_id']}/redeliver",
        None,
        "redeliver",
    )
    assert again.status_code == 202, again.text
    assert again.json()["delivery_id"] == delivery["delivery_id"]
    assert again.json()["status"] == "pending"

    second = receiver.wait_for(2)[1]
    assert second.webhook_id == first.webhook_id
    assert second.body == first.body
    _assert_verified(second, secret, request_id=request_id, event="run.succeeded")
    [delivery] = hooks.settled(request_id, "redeliver")
    assert delivery["status"] == "delivered"
    assert [a["redelivery"] for a in delivery["attempts"]] == [False, True]


def test_deliveries_are_the_callers_own(hooks: Hooks, receiver: Receiver) -> None:
    hooks.secret("listed")
    response = hooks.invoke(receiver, "listed")
    request_id = response["request_id"]
    [delivery] = hooks.settled(request_id, "listed")

    assert_error(
        hooks.get(f"invocations/{request_id}/deliveries", "stranger"), 404, "INVOCATION_NOT_FOUND"
    )
    path = f"invocations/{request_id}/deliveries/{delivery['delivery_id']}/redeliver"
    assert_error(hooks.post(path, None, "stranger"), 404, "INVOCATION_NOT_FOUND")
    unknown = f"invocations/{request_id}/deliveries/msg_{'0' * 32}/redeliver"
    assert_error(hooks.post(unknown, None, "listed"), 404, "DELIVERY_NOT_FOUND")
    assert_error(
        hooks.post(f"invocations/{request_id}/deliveries/nonsense/redeliver", None, "listed"),
        404,
        "DELIVERY_NOT_FOUND",
    )
    assert_error(
        hooks.get(f"invocations/{uuid.uuid4()}/deliveries", "listed"), 404, "INVOCATION_NOT_FOUND"
    )
    assert_error(
        hooks.get("invocations/not-a-uuid/deliveries", "listed"), 404, "INVOCATION_NOT_FOUND"
    )
    # A run without a webhook has none.
    plain = hooks.post("invoke", {"prompt": PROMPT}, "listed")
    assert plain.status_code == 200
    assert hooks.deliveries(plain.json()["request_id"], "listed") == []


def test_a_webhook_needs_a_signing_secret(hooks: Hooks, receiver: Receiver) -> None:
    response = hooks.post(
        "invoke", {"prompt": PROMPT, "webhook": {"url": receiver.url()}}, "no-secret"
    )
    body = assert_error(response, 400, "INVALID_REQUEST")
    assert "POST /api/v1/webhook-secrets" in body["details"]["fields"]["webhook"][0]
    assert receiver.received == []


@pytest.mark.parametrize(
    ("webhook", "field"),
    [
        ("https://hooks.example.com/x", "non_field_errors"),
        ({}, "url"),
        ({"url": 7}, "url"),
        ({"url": "https://10.0.0.1/x"}, "url"),
        ({"url": "https://169.254.169.254/latest"}, "url"),
        ({"url": "https://[::ffff:a9fe:a9fe]/x"}, "url"),  # the metadata service, mapped
        ({"url": "https://hooks.example.com/x", "events": []}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["run.exploded"]}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["run.failed", "run.failed"]}, "events"),
        ({"url": "https://hooks.example.com/x", "secret": "mine"}, "secret"),
    ],
)
def test_a_webhook_that_cannot_be_sent_is_refused(hooks: Hooks, webhook: Any, field: str) -> None:
    response = hooks.post("invocations", {"prompt": PROMPT, "webhook": webhook}, "no-secret")
    body = assert_error(response, 400, "INVALID_REQUEST")
    assert field in body["details"]["fields"]["webhook"], body


def test_after_the_api_process_is_killed_between_attempts_the_sweeper_sends_the_next(
    log_dir: Path,
    dynamodb_local: Server,
    runtime: Server,
    table: str,
    here: LazySettings,
    hooks: Hooks,
    receiver: Receiver,
) -> None:
    from invocations.webhook_sweep import webhooks_sweep

    servers = _ApiServers(log_dir, dynamodb_local, runtime)
    try:
        doomed = servers(SESSION_TABLE_NAME=table, **{**ENV, "WEBHOOK_RETRY_SCHEDULE_SECONDS": "3"})
        its = Hooks(doomed)
        secret = its.secret("killed")["secret"]
        receiver.answer(Answer(status=500))
        response = its.invoke(receiver, "killed")
        request_id = response["request_id"]
        [first] = receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while not its.deliveries(request_id, "killed")[0]["attempts"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(doomed.process.pid, signal.SIGKILL)  # before its retry, 3 s later
        doomed.process.wait(timeout=10)
    finally:
        servers.stop_all()

    deadline = time.monotonic() + 15
    while len(receiver.received) < 2:
        assert time.monotonic() < deadline, "the sweeper never sent the retry"
        webhooks_sweep()
        time.sleep(0.2)
    second = receiver.received[1]
    assert second.at - first.at >= 2.5
    assert second.webhook_id == first.webhook_id
    _assert_verified(second, secret, request_id=request_id, event="run.succeeded")
    [delivery] = hooks.settled(request_id, "killed")
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]


def test_a_run_whose_process_died_before_its_end_still_sends_its_end(
    log_dir: Path,
    dynamodb_local: Server,
    table: str,
    here: LazySettings,
    hooks: Hooks,
    receiver: Receiver,
) -> None:
    """Nothing accepted is lost: the sweeper ends the lost run (WORKER_LOST; an /invoke
    run, whose deadline is its start's) and sends the run.failed its dead process never
    could."""
    from invocations.sweeper import runs_sweep

    hanging = start_local_runtime(
        "--fault", "hang-mid-stream", "--fault-after", "2", log_dir=log_dir
    )
    servers = _ApiServers(log_dir, dynamodb_local, hanging)
    try:
        doomed = servers(
            SESSION_TABLE_NAME=table,
            AGENTCORE_DEADLINE_SECONDS="3",
            RUN_GRACE_SECONDS="1",
            **ENV,
        )
        its = Hooks(doomed)
        secret = its.secret("lost")["secret"]
        session_id = str(uuid.uuid4())

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                its.post(
                    "invoke",
                    {
                        "prompt": PROMPT,
                        "session_id": session_id,
                        "webhook": {"url": receiver.url(), "events": ["run.failed"]},
                    },
                    "lost",
                )

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        deadline = time.monotonic() + 30
        while not (runs := _session_runs(session_id)):
            assert time.monotonic() < deadline, "the run was never recorded"
            time.sleep(0.05)
        [request_id] = runs
        time.sleep(0.5)  # running, hung
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=10)
        caller.join(timeout=10)
    finally:
        servers.stop_all()
        hanging.stop()

    here.AGENTCORE_DEADLINE_SECONDS = 3.0
    here.RUN_GRACE_SECONDS = 1.0
    deadline = time.monotonic() + 30
    while not receiver.received:
        assert time.monotonic() < deadline, "the lost run's end was never sent"
        runs_sweep()
        time.sleep(0.5)
    [received] = receiver.wait_for(1)
    payload = _assert_verified(received, secret, request_id=request_id, event="run.failed")
    assert payload["data"]["error"]["error_code"] == "WORKER_LOST"
