"""skymarshal_client against the local stack (real servers on 127.0.0.1): every operation of
openapi.yaml, its retries after 429, its long-poll loop, and events resumed after a
connection the test cuts in the middle of a run."""

from __future__ import annotations

import itertools
import time
import uuid

import httpx
import pytest
from botocore.credentials import Credentials

from skymarshal_client import (
    Client,
    InvalidRequest,
    InvocationFinished,
    InvocationNotFound,
    RateLimited,
    SessionNotFound,
    Unauthorized,
    WaitTimeout,
)
from skymarshal_client.client import error_from_response
from skymarshal_client.errors import Forbidden
from tests.clients.conftest import ClientStack, RecordingTransport, _table_create, client_for
from tests.clients.cutting_proxy import CuttingProxy
from tests.signing import DEV_KEY, DEV_PRINCIPAL

PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault, 210 passengers"
FOLLOW_UP = "What if the delay grows to 6 hours?"
AGENTS = 7


def test_health_identity_and_schema(client_stack: ClientStack) -> None:
    with client_for(client_stack.api.http_url) as client:
        health = client.health()
        assert health.status == "healthy"
        assert health.checks is not None
        assert health.checks.dynamodb is not None
        assert health.checks.dynamodb.status == "healthy"
        identity = client.identity()
        assert identity.principal == DEV_PRINCIPAL
        assert identity.authenticated_by == "sigv4"
        assert "/api/v1/invoke" in client.schema()["paths"]


def test_a_wrong_secret_is_forbidden_and_typed(client_stack: ClientStack) -> None:
    client = Client(client_stack.api.http_url, credentials=Credentials(DEV_KEY, "not-it"))
    with client, pytest.raises(Forbidden) as raised:
        client.identity()
    assert raised.value.status_code == 403
    assert raised.value.request_id


def test_invoke_buffered_and_streamed_then_the_session_pages(client_stack: ClientStack) -> None:
    with client_for(client_stack.api.http_url) as client:
        first = client.invoke(PROMPT)
        assert first.status == "success"
        assert first.final_decision in ("approved", "rejected", "conditional")
        assert first.recommendations
        events = list(client.invoke_stream(FOLLOW_UP, session_id=first.session_id))
        kinds = [event.event for event in events]
        assert kinds[0] == "start"
        assert kinds[-1] == "complete"
        completed = {
            e.agent for e in events if e.event == "chunk" and e.data["status"] == "completed"
        }
        assert len(completed) == AGENTS
        assert events[-1].data["session_id"] == first.session_id
        # One interaction a page: the client reads both pages.
        pages = list(client.session_pages(first.session_id, limit=1))
        assert len(pages) == 2
        history = client.session(first.session_id, limit=1)
        assert [i.prompt for i in history.interactions] == [FOLLOW_UP, PROMPT] or [
            i.prompt for i in history.interactions
        ] == [PROMPT, FOLLOW_UP]
        assert history.interaction_count == 2
        # Sessions, a page of one at a time: every one is listed, this one among them.
        other = client.invoke(PROMPT)
        listed = [s.session_id for s in client.sessions(limit=1)]
        assert {first.session_id, other.session_id} <= set(listed)
        assert len(listed) == len(set(listed))
        with pytest.raises(SessionNotFound):
            client.session(str(uuid.uuid4()))
        with pytest.raises(InvalidRequest) as raised:
            client.invoke("short")
        assert raised.value.status_code == 400


def test_submit_get_wait_events_and_cancel(client_stack: ClientStack) -> None:
    with client_for(client_stack.api.http_url) as client:
        key = str(uuid.uuid4())
        run = client.submit(PROMPT, idempotency_key=key)
        assert run.status in ("queued", "running")
        # The same key and body start nothing new.
        assert client.submit(PROMPT, idempotency_key=key).request_id == run.request_id
        assert client.get(run.request_id).request_id == run.request_id
        ended = client.wait(run.request_id, timeout=60)
        assert ended.status == "succeeded"
        assert ended.result is not None
        assert ended.result.final_decision
        events = list(client.events(run.request_id))
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert events[-1].event == "complete"
        assert events[-1].data["request_id"] == ended.result.request_id
        with pytest.raises(InvocationFinished):
            client.cancel(run.request_id)

        running = client.submit(PROMPT)
        cancelled = client.cancel(running.request_id)
        assert cancelled.status == "cancelled" or cancelled.cancel_requested
        assert client.wait(running.request_id, timeout=30).status == "cancelled"
        with pytest.raises(InvocationNotFound):
            client.get(str(uuid.uuid4()))


def test_events_resume_after_the_connection_is_cut_mid_run(client_stack: ClientStack) -> None:
    proxy = CuttingProxy(upstream_port=client_stack.api.port, cut_after=3)
    try:
        with client_for(client_stack.api.http_url) as direct:
            run = direct.submit(PROMPT)
            with client_for(proxy.url) as through_proxy:
                events = list(through_proxy.events(run.request_id))
            ended = direct.get(run.request_id)
            # The run was still running when the stream broke: the cut was mid-run.
            assert ended.status == "succeeded"
            stored = list(direct.events(run.request_id, follow=False))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert proxy.connections >= 2, "the client did not reconnect"
    ids = [e.id for e in events]
    assert ids == list(range(1, len(stored) + 1)), ids  # nothing lost, nothing repeated
    assert [(e.id, e.event, e.data) for e in events] == [(e.id, e.event, e.data) for e in stored]
    assert events[-1].event == "complete"
    chunks = [e for e in events if e.event == "chunk"]
    assert len(chunks) == 2 * AGENTS


def test_a_429_is_retried_after_retry_after(client_stack: ClientStack) -> None:
    api = client_stack.apis(
        # A table of its own: the counters are per caller and window start, and a window of
        # 5 s may start when the other tests' windows of 60 s do, counting their requests.
        SESSION_TABLE_NAME=_table_create(client_stack.apis.dynamodb),
        RATE_LIMIT_DEFAULT_PER_WINDOW="2",
        RATE_LIMIT_WINDOW_SECONDS="5",
    )
    transport = RecordingTransport()
    with client_for(api.http_url, transport=transport, max_retry_delay=6) as client:
        for _ in range(4):
            assert client.identity().principal == DEV_PRINCIPAL
    exchanges = transport.exchanges
    statuses = [e.status for e in exchanges]
    assert 429 in statuses, statuses
    assert statuses[-1] == 200
    for limited, retry in itertools.pairwise(exchanges):
        if limited.status != 429:
            continue
        assert limited.retry_after is not None
        waited = retry.at - limited.at
        # Not before Retry-After; its jitter adds at most 1 s (and the machine some more).
        assert waited >= float(limited.retry_after), (waited, limited.retry_after)
        assert retry.path == limited.path


def test_a_retry_after_beyond_the_cap_is_raised(client_stack: ClientStack) -> None:
    api = client_stack.apis(
        # A table of its own: in the first minute of an hour, the other tests' requests in
        # their windows of 60 s were counted in this one of an hour (the same window start).
        SESSION_TABLE_NAME=_table_create(client_stack.apis.dynamodb),
        RATE_LIMIT_DEFAULT_PER_WINDOW="1",
        # Windows are aligned to the clock: one of an hour is not about to reset (one of a
        # minute would be, in its last 2 s, and the client would rightly wait it out).
        RATE_LIMIT_WINDOW_SECONDS="3600",
    )
    with client_for(api.http_url, max_retry_delay=2) as client:
        client.identity()
        with pytest.raises(RateLimited) as raised:
            client.identity()
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 2


def test_wait_long_polls_until_a_run_longer_than_one_poll_ends(
    client_stack: ClientStack,
) -> None:
    transport = RecordingTransport()
    with client_for(client_stack.api.http_url, transport=transport, long_poll_seconds=1) as client:
        run = client.submit(PROMPT)
        ended = client.wait(run.request_id, timeout=60)
    assert ended.status == "succeeded"
    polls = [e for e in transport.exchanges if e.path.endswith("/wait")]
    # Seven agents of 300 ms: a run of over 2 s, so more than one 1 s long-poll.
    assert len(polls) >= 2, polls
    assert all(p.status == 200 for p in polls)


def test_wait_gives_up_after_its_overall_timeout(client_stack: ClientStack) -> None:
    with client_for(client_stack.api.http_url, long_poll_seconds=1) as client:
        run = client.submit(PROMPT)
        started = time.monotonic()
        with pytest.raises(WaitTimeout):
            client.wait(run.request_id, timeout=0.5)
        assert time.monotonic() - started < 3
        client.cancel(run.request_id)


def test_unsigned_requests_are_unauthorized(client_stack: ClientStack) -> None:
    response = httpx.get(f"{client_stack.api.http_url}/api/v1/identity", timeout=10)
    assert isinstance(error_from_response(response), Unauthorized)


def test_webhooks_secret_submit_deliveries_and_redeliver(client_stack: ClientStack) -> None:
    from skymarshal_client import DeliveryNotFound, Webhook
    from tests.log_audit import SENT
    from tests.webhook_receiver import webhook_receiver

    api = client_stack.apis(
        SESSION_TABLE_NAME=client_stack.table,
        RUN_POLL_SECONDS="0.05",
        WEBHOOK_ALLOW_LOCAL_HTTP="true",
        WEBHOOK_RETRY_SCHEDULE_SECONDS="0.3",
    )
    with webhook_receiver() as receiver, client_for(api.http_url) as client:
        created = client.webhook_secret_create()
        SENT.credential_record(created.secret)
        assert created.secret.startswith("whsec_")
        assert created.secret not in repr(created)
        run = client.submit(PROMPT, webhook=Webhook(receiver.url(), events=("run.succeeded",)))
        assert run.links is not None
        assert run.links.deliveries.endswith(f"{run.request_id}/deliveries")
        client.wait(run.request_id, timeout=60)

        [received] = receiver.wait_for(1)
        assert received.verified(created.secret)["data"]["request_id"] == run.request_id
        deadline = time.monotonic() + 20
        while (listed := client.deliveries(run.request_id)).deliveries[0].status == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [delivery] = listed.deliveries
        assert delivery.status == "delivered"
        assert delivery.delivery_id == received.webhook_id
        assert delivery.payload is not None
        assert delivery.payload.data is not None
        assert delivery.payload.data.status == "succeeded"
        assert [a.status_code for a in delivery.attempts] == [200]

        again = client.redeliver(run.request_id, delivery.delivery_id)
        assert again.delivery_id == delivery.delivery_id
        assert receiver.wait_for(2)[1].webhook_id == delivery.delivery_id
        with pytest.raises(DeliveryNotFound):
            client.redeliver(run.request_id, "msg_" + "0" * 32)


def _runtime_received(runtime: object, trace_id: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        found = [
            line
            for line in runtime.json_documents()  # type: ignore[attr-defined]
            if line.get("message") == "trace context" and line.get("trace_id") == trace_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_invoke_and_submit_carry_the_callers_trace_to_the_runtime(
    client_stack: ClientStack,
) -> None:
    with client_for(client_stack.api.http_url) as client:
        for call in ("invoke", "submit"):
            trace_id = uuid.uuid4().hex
            traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
            if call == "invoke":
                assert client.invoke(PROMPT, traceparent=traceparent, baggage="k=v").status
            else:
                run = client.submit(PROMPT, traceparent=traceparent, baggage="k=v")
                assert client.wait(run.request_id, timeout=30).status == "succeeded"
            [received] = _runtime_received(client_stack.runtime, trace_id)
            assert received["baggage"] == "k=v", call
