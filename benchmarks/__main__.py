"""``make bench``: latency of the local stack's paths, as numbers.

  health         GET /api/v1/health through gunicorn (cache off: both checks every time)
  runtime        one full SkyMarshal run over the runtime WebSocket (7 agents at 40 ms)
  history page   signed GET /api/v1/sessions/{id}?limit=50 of a 200-interaction session,
                 side by side with the same Query of 50 of its items sent to DynamoDB
                 Local directly (botocore, in this process), measured alternately; the
                 page through urllib3, botocore's HTTP client, and through httpx
  sigv4 verify   the app verifying one botocore signature, in process
  invoke         what POST /api/v1/invoke adds over a direct WebSocket run of the same
                 runtime (agents at 0 ms, so the run itself is short): from Server-Timing,
                 persistence (DynamoDB: rate limit, write-ahead record, completion) and
                 the rest (Django, SigV4, validation, JSON); and streamed time to first
                 chunk, API vs direct. Beside them, the storage floor: the two
                 transactions of an invocation (write-ahead, completion) shaped as the
                 API's and sent straight to DynamoDB Local with botocore, alternated with
                 the invocations; and, for the first chunk, the write-ahead transaction
                 then the direct first chunk
  lambda         the dev Lambda package (SKYMARSHAL_PACKAGE, else built offline) run as
                 Lambda runs it (scripts/lambda_invoke.py): cold start (a new interpreter
                 importing the handler, then its first request: health, or an invocation)
                 side by side with a minimal Django + DRF app (one APIView) in the same
                 package under the same Zappa handler, and what remains between the two
                 (-X importtime of each cold start, by top-level package: what ours
                 imports beyond the minimal app's); warm requests (health;
                 invocations with agents at 0 ms); and SnapStart: environments restored
                 from a snapshot (forks after the before-snapshot hooks), their
                 after-restore hooks and first invoke beside a warm invoke
  webhook        what a webhook adds to an invocation's own path (agents at 0 ms): its
                 Server-Timing total with and without ``webhook``, p50 (the delivery is
                 sent off that path), and how long after the response the receiver
                 (on 127.0.0.1) had it
  instrumentation  of those invocations, the time spent in JSON log lines, EMF metrics
                 and the observation hooks (Server-Timing ``instrumentation``, LOG_LEVEL
                 INFO); then again with X-Ray tracing on, sending to a daemon address
                 where nothing listens (UDP to 127.0.0.1); then, as a check of the span,
                 with log lines and metrics off (LOG_LEVEL WARNING, metrics disabled):
                 "the rest" should fall by about what the span fell

  otel           carrying one invoke's trace (the request and four spans in it) with the
                 app's X-Ray emitter, and with OpenTelemetry's SDK as ADOT sets it up
                 (AWS X-Ray ID generator and propagator, OTLP/HTTP export), flushed after
                 each request as on Lambda, and left to its batch thread as on a server
                 (benchmarks/otel.py)
  capacity       the read and write capacity units DynamoDB reports (ReturnConsumedCapacity
                 TOTAL, the API's DYNAMODB_CAPACITY_LOG) for one buffered invoke, one
                 streamed invoke and one background run (its request and its worker),
                 agents at 0 ms, each in a new session

Usage: python -m benchmarks [--requests N] [--only SECTION[,SECTION...]] [--lambda-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from scripts.stack import ROOT, Server, start_api, start_local_runtime, start_local_stack

TABLE = "bench-sessions"
SECTIONS = (
    "health",
    "history",
    "runtime",
    "sigv4",
    "invoke",
    "webhook",
    "instrumentation",
    "capacity",
    "otel",
    "lambda",
)


def _percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"n={len(ordered)} p50={q[49]:.2f} ms p95={q[94]:.2f} ms p99={q[98]:.2f} ms "
        f"max={ordered[-1]:.2f} ms"
    )


def _measure(count: int, action: Callable[[], None]) -> list[float]:
    for _ in range(3):
        action()  # warm-up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _django_setup(dynamodb: Server) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "skymarshal_api.settings",
            "SKYMARSHAL_ENV": "test",
            "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
            "SESSION_TABLE_NAME": TABLE,
        }
    )
    import django

    django.setup()


def _seed_session(interactions: int) -> str:
    from sessions.begin import interaction_begin
    from sessions.complete import interaction_complete
    from tests.signing import DEV_PRINCIPAL

    response = {"final_decision": "conditional", "recommendations": ["Rebook"] * 5}
    now = int(time.time() * 1000) - interactions * 1000
    session_id = None
    for n in range(interactions):
        started = interaction_begin(
            session_id=session_id,
            request_id=str(uuid.uuid4()),
            prompt=f"Flight AA{n} delayed 2 hours due to weather at ORD",
            principal_arn=DEV_PRINCIPAL,
            now_ms=now + n * 1000,
        )
        session_id = started.session_id
        interaction_complete(started, status="success", response=response, execution_time_ms=250)
    assert session_id is not None
    return session_id


def _sections(value: str) -> set[str]:
    chosen = {name.strip() for name in value.split(",") if name.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}"
        )
    return chosen


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--only",
        type=_sections,
        default=set(SECTIONS),
        help=f"run only these sections (comma-separated): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--lambda-only", action="store_true", help="only the Lambda package's cold and warm runs"
    )
    args = parser.parse_args()
    only: set[str] = {"lambda"} if args.lambda_only else args.only
    log_dir = Path(tempfile.mkdtemp(prefix="skymarshal-bench-"))
    servers: list[Server] = []
    try:
        env = {
            **start_local_stack(log_dir=log_dir, servers=servers, table=TABLE),
            "HEALTH_CACHE_SECONDS": "0",
            "RATE_LIMIT_DEFAULT_PER_WINDOW": "1000000",
            "LOG_LEVEL": "WARNING",
        }
        dynamodb, runtime = servers
        _django_setup(dynamodb)
        if only & {"health", "history"}:
            api = start_api(env=env, log_dir=log_dir)
            servers.append(api)
            if "health" in only:
                _bench_health(api, args.requests)
            if "history" in only:
                _bench_history(api, args.requests)
            api.stop()
        if "runtime" in only:

            def run() -> None:
                with connect(runtime.ws_url, open_timeout=5) as ws:
                    ws.send(
                        json.dumps({"action": "invoke", "payload": {"prompt": "AA1 delayed 2h"}})
                    )
                    while json.loads(ws.recv(timeout=10))["type"] != "complete":
                        pass

            samples = _measure(max(10, args.requests // 10), run)
            print("runtime      ", _percentiles(samples), flush=True)
        if "sigv4" in only:
            _bench_sigv4(args.requests)
        if "otel" in only:
            # In a process of its own: tracing on, sending where nothing listens.
            subprocess.run(
                [sys.executable, "-m", "benchmarks.otel", "--requests", str(args.requests * 10)],
                cwd=ROOT,
                env={**os.environ, **env},
                check=True,
            )
        if not only & {"invoke", "webhook", "instrumentation", "capacity", "lambda"}:
            return
        fast_runtime = start_local_runtime("--agent-latency-ms", "0", log_dir=log_dir)
        servers.append(fast_runtime)
        fast_env = {
            **env,
            "AGENTCORE_WS_URL": fast_runtime.ws_url,
            "RATE_LIMIT_INVOKE_PER_WINDOW": "1000000",
            "LOG_LEVEL": "INFO",  # the request lines are part of what is measured
            "WEBHOOK_ALLOW_LOCAL_HTTP": "true",
        }
        if only & {"invoke", "webhook"}:
            fast_api = start_api(env=fast_env, log_dir=log_dir)
            servers.append(fast_api)
            if "invoke" in only:
                _bench_invoke(fast_api, fast_runtime, args.requests)
            if "webhook" in only:
                _bench_webhook(fast_api, args.requests)
            fast_api.stop()
        if "instrumentation" in only:
            quiet_api = start_api(
                env={**fast_env, "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
                log_dir=log_dir,
            )
            servers.append(quiet_api)
            _bench_instrumentation(quiet_api, args.requests, label="  logs+metrics off")
            quiet_api.stop()
            traced_api = start_api(
                env={
                    **fast_env,
                    "TRACING_ENABLED": "true",
                    "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{_silent_udp_port()}",
                },
                log_dir=log_dir,
            )
            servers.append(traced_api)
            _bench_instrumentation(traced_api, args.requests, label="  with X-Ray ")
            traced_api.stop()
        if "capacity" in only:
            capacity_api = start_api(
                env={**fast_env, "DYNAMODB_CAPACITY_LOG": "true"}, log_dir=log_dir
            )
            servers.append(capacity_api)
            _bench_capacity(capacity_api)
            capacity_api.stop()
        if "lambda" in only:
            _bench_lambda(dynamodb, log_dir, args.requests, servers)
    finally:
        for server in reversed(servers):
            server.stop()


def _bench_health(api: Server, count: int) -> None:
    with httpx.Client(base_url=api.http_url, timeout=10) as client:

        def health() -> None:
            client.get("/api/v1/health").raise_for_status()

        print("health       ", _percentiles(_measure(count, health)), flush=True)


def _bench_history(api: Server, count: int) -> None:
    """The history page and, alternately, the same Query sent to DynamoDB Local directly:
    what the page costs over the table. The page is requested through urllib3, the HTTP
    client botocore sends the direct Query with (both signed with SigV4, on one kept-alive
    connection each), and again through httpx, whose own cost is shown beside."""
    import urllib3

    from sessions.models import SessionInteraction
    from tests.signing import botocore_headers

    session_id = _seed_session(200)
    path = f"/api/v1/sessions/{session_id}?limit=50"
    url = f"{api.http_url}{path}"
    table: Any = SessionInteraction._get_connection().connection.client
    page: list[float] = []
    page_httpx: list[float] = []
    server_total: list[float] = []
    direct: list[float] = []
    pool = urllib3.connectionpool.connection_from_url(api.http_url, maxsize=1)
    with httpx.Client(timeout=10) as client:

        def history_page() -> None:
            started = time.perf_counter()
            response = pool.request("GET", path, headers=botocore_headers("GET", url))
            page.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, response.data
            assert len(json.loads(response.data)["interactions"]) == 50
            server_total.append(_server_timing(response.headers["Server-Timing"])["total"])

        def history_page_httpx() -> None:
            started = time.perf_counter()
            response = client.get(url, headers=botocore_headers("GET", url))
            page_httpx.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()

        def query_direct() -> None:
            started = time.perf_counter()
            answer = table.query(
                TableName=TABLE,
                KeyConditionExpression="session_id = :s AND #t > :zero",
                ExpressionAttributeNames={"#t": "timestamp"},
                ExpressionAttributeValues={":s": {"S": session_id}, ":zero": {"N": "0"}},
                Limit=50,
            )
            direct.append((time.perf_counter() - started) * 1000)
            assert len(answer["Items"]) == 50

        for _ in range(count + 3):  # interleaved, so that load shifts hit all alike
            history_page()
            query_direct()
            history_page_httpx()
    pool.close()
    print("history page ", _percentiles(page[3:]), "(target p50 <= 15 ms)", flush=True)
    print("  server     ", _percentiles(server_total[3:]), flush=True)
    print("  query 50 direct", _percentiles(direct[3:]), flush=True)
    print("  the page through httpx", _percentiles(page_httpx[3:]), flush=True)


CAPACITY_RUNS = 5
_RUN_ENDED = {"succeeded", "failed", "timed_out", "cancelled"}


def _bench_capacity(api: Server) -> None:
    """Capacity units per buffered invoke, streamed invoke and background run: the sum of
    the ``dynamodb capacity`` lines the API logged with the run's request id (its request,
    and for a background run its worker's calls too). Each kind CAPACITY_RUNS times, each
    in a new session; the units of one run of each kind are printed by operation."""
    from tests.signing import botocore_headers

    prompt = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"
    invoke_url = f"{api.http_url}/api/v1/invoke"
    invocations_url = f"{api.http_url}/api/v1/invocations"

    def signed_post(
        client: httpx.Client, url: str, body: dict[str, Any], *, stream: bool = False
    ) -> httpx.Response:
        content = json.dumps(body).encode()
        headers = botocore_headers("POST", url, body=content)
        headers["Content-Type"] = "application/json"
        request = client.build_request("POST", url, content=content, headers=headers)
        response = client.send(request, stream=stream)
        response.raise_for_status()
        return response

    def buffered(client: httpx.Client) -> str:
        return signed_post(client, invoke_url, {"prompt": prompt}).headers["X-Request-ID"]

    def streamed(client: httpx.Client) -> str:
        body = {"prompt": prompt, "streaming": True}
        response = signed_post(client, invoke_url, body, stream=True)
        try:
            for _ in response.iter_lines():
                pass
        finally:
            response.close()
        return response.headers["X-Request-ID"]

    def background(client: httpx.Client) -> str:
        response = signed_post(client, invocations_url, {"prompt": prompt})
        request_id = str(response.json()["request_id"])
        run_url = f"{invocations_url}/{request_id}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = client.get(run_url, headers=botocore_headers("GET", run_url))
            if run.json().get("status") in _RUN_ENDED:
                return request_id
            time.sleep(0.05)
        raise RuntimeError(f"background run {request_id} did not end within 30 s")

    kinds: dict[str, Callable[[httpx.Client], str]] = {
        "buffered invoke": buffered,
        "streamed invoke": streamed,
        "background run": background,
    }
    ids: dict[str, list[str]] = {kind: [] for kind in kinds}
    with httpx.Client(timeout=30) as client:
        for _ in range(CAPACITY_RUNS):
            for kind, run in kinds.items():
                ids[kind].append(run(client))
    time.sleep(1.0)  # the worker's last lines
    lines = [line for line in api.json_documents() if line.get("message") == "dynamodb capacity"]
    for kind, request_ids in ids.items():
        totals = []
        for request_id in request_ids:
            mine = [line for line in lines if line.get("request_id") == request_id]
            read = sum(float(line.get("read_units", 0.0)) for line in mine)
            write = sum(float(line.get("write_units", 0.0)) for line in mine)
            unreported = sum(1 for line in mine if not line.get("reported"))
            totals.append((read, write, len(mine), unreported))
        reads = sorted(total[0] for total in totals)
        writes = sorted(total[1] for total in totals)
        calls = sorted(total[2] for total in totals)
        print(
            f"capacity {kind:15} RCU p50 {statistics.median(reads):.1f} "
            f"(min {reads[0]:.1f}, max {reads[-1]:.1f}), WCU p50 {statistics.median(writes):.1f} "
            f"(min {writes[0]:.1f}, max {writes[-1]:.1f}), calls p50 {statistics.median(calls):.0f}"
            f", unreported {sum(total[3] for total in totals)}",
            flush=True,
        )
        by_operation: dict[str, list[float]] = {}
        for line in lines:
            if line.get("request_id") == request_ids[-1]:
                entry = by_operation.setdefault(str(line.get("operation")), [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += float(line.get("read_units", 0.0))
                entry[2] += float(line.get("write_units", 0.0))
        print(
            "    by operation: "
            + ", ".join(
                f"{name} x{count:.0f} {read:.1f} R {write:.1f} W"
                for name, (count, read, write) in sorted(by_operation.items())
            ),
            flush=True,
        )


def _silent_udp_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _invoke_spans(client: httpx.Client, url: str, body: bytes) -> dict[str, float]:
    """One signed buffered invocation; its Server-Timing spans."""
    from tests.signing import botocore_headers

    headers = botocore_headers("POST", url, body=body)
    headers["Content-Type"] = "application/json"
    response = client.post(url, content=body, headers=headers)
    response.raise_for_status()
    return _server_timing(response.headers["Server-Timing"])


def _bench_instrumentation(api: Server, count: int, *, label: str) -> None:
    url = f"{api.http_url}/api/v1/invoke"
    body = json.dumps({"prompt": "Flight BA117 delayed 4 hours at LHR"}).encode()
    spent: list[float] = []
    rest: list[float] = []
    with httpx.Client(timeout=30) as client:

        def invoke() -> None:
            spans = _invoke_spans(client, url, body)
            spent.append(spans.get("instrumentation", 0.0))
            rest.append(spans["total"] - spans["persistence"] - spans["runtime"])

        _measure(count, invoke)
    print(label, _percentiles(spent[3:]), flush=True)
    print("    the rest ", _percentiles(rest[3:]), flush=True)


def _bench_webhook(api: Server, count: int) -> None:
    from tests.signing import botocore_headers
    from tests.webhook_receiver import webhook_receiver

    url = f"{api.http_url}/api/v1/invoke"
    secrets_url = f"{api.http_url}/api/v1/webhook-secrets"
    httpx.post(secrets_url, headers=botocore_headers("POST", secrets_url)).raise_for_status()
    prompt = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"
    with webhook_receiver() as receiver, httpx.Client(timeout=30) as client:
        plain = json.dumps({"prompt": prompt}).encode()
        hooked = json.dumps({"prompt": prompt, "webhook": {"url": receiver.url()}}).encode()
        totals: dict[str, list[float]] = {"without": [], "with": []}
        arrivals: list[float] = []

        def invoke(label: str, body: bytes) -> None:
            spans = _invoke_spans(client, url, body)
            totals[label].append(spans["total"])
            if label == "with":
                answered = time.time()
                before = len(totals["with"])
                received = receiver.wait_for(before, timeout=30)[before - 1]
                arrivals.append((received.at - answered) * 1000)

        for _ in range(count + 3):  # interleaved, so that load shifts hit both alike
            invoke("without", plain)
            invoke("with", hooked)
    without, with_webhook = totals["without"][3:], totals["with"][3:]
    print("webhook: invoke total without", _percentiles(without), flush=True)
    print("webhook: invoke total with   ", _percentiles(with_webhook), flush=True)
    added = statistics.median(with_webhook) - statistics.median(without)
    print(f"webhook: added to the invocation's path, p50 {added:+.2f} ms", flush=True)
    print("webhook: at the receiver, from the response", _percentiles(arrivals[3:]), flush=True)


def _server_timing(header: str) -> dict[str, float]:
    spans = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        spans[name] = float(duration)
    return spans


def _key(partition: str, sort: int) -> dict[str, Any]:
    return {"session_id": {"S": partition}, "timestamp": {"N": str(sort)}}


def _two_transactions(table: Any) -> tuple[float, float]:
    """The storage floor of one invocation on this table: a write-ahead transaction
    (interaction, run, deadline, the session's turn) and a completion transaction
    (interaction, run, the session let go) shaped as the API's, sent straight to DynamoDB
    with botocore (no PynamoDB, no HTTP request, no runtime): each one's milliseconds."""
    began = time.perf_counter()
    written = _write_ahead(table)
    begin_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    _completion(table, *written)
    return begin_ms, (time.perf_counter() - began) * 1000


def _write_ahead(table: Any) -> tuple[str, str, int]:
    """The write-ahead transaction of ``_two_transactions``: its session, request, time."""
    session_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = int(time.time() * 1000)
    prompt = {"S": "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"}
    absent = "attribute_not_exists(session_id)"
    table.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        **_key(session_id, now),
                        "prompt": prompt,
                        "status": {"S": "in_progress"},
                    },
                    "ConditionExpression": absent,
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        **_key(f"run#{request_id}", 0),
                        "prompt": prompt,
                        "status": {"S": "running"},
                    },
                    "ConditionExpression": absent,
                }
            },
            {"Put": {"TableName": TABLE, "Item": _key(f"sweep#{now // 60000}#{request_id}", 0)}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key(session_id, 0),
                    "UpdateExpression": "SET active_run = :r ADD interaction_count :one",
                    "ConditionExpression": "attribute_not_exists(active_run)",
                    "ExpressionAttributeValues": {":r": {"S": request_id}, ":one": {"N": "1"}},
                }
            },
        ]
    )
    return session_id, request_id, now


def _completion(table: Any, session_id: str, request_id: str, now: int) -> None:
    table.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key(session_id, now),
                    "UpdateExpression": "SET #s = :s, #r = :b",
                    "ConditionExpression": "#s = :p",
                    "ExpressionAttributeNames": {"#s": "status", "#r": "response"},
                    "ExpressionAttributeValues": {
                        ":s": {"S": "success"},
                        ":p": {"S": "in_progress"},
                        ":b": {"B": b"x" * 600},
                    },
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key(f"run#{request_id}", 0),
                    "UpdateExpression": "SET #s = :s",
                    "ConditionExpression": "#s = :r",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "succeeded"}, ":r": {"S": "running"}},
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key(session_id, 0),
                    "UpdateExpression": "REMOVE active_run",
                    "ConditionExpression": "active_run = :r",
                    "ExpressionAttributeValues": {":r": {"S": request_id}},
                }
            },
        ]
    )


def _bench_invoke(api: Server, runtime: Server, count: int) -> None:
    from sessions.models import SessionInteraction
    from tests.signing import botocore_headers

    url = f"{api.http_url}/api/v1/invoke"
    prompt = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"
    buffered = json.dumps({"prompt": prompt}).encode()
    streamed = json.dumps({"prompt": prompt, "streaming": True}).encode()
    persistence, rest, added, instrumentation = [], [], [], []
    table: Any = SessionInteraction._get_connection().connection.client
    begin_floor: list[float] = []
    both_floor: list[float] = []
    latency: list[float] = []
    with httpx.Client(timeout=30) as client:

        def invoke() -> None:
            began = time.perf_counter()
            spans = _invoke_spans(client, url, buffered)
            latency.append((time.perf_counter() - began) * 1000)
            persistence.append(spans["persistence"])
            rest.append(spans["total"] - spans["persistence"] - spans["runtime"])
            added.append(spans["total"] - spans["runtime"])
            instrumentation.append(spans["instrumentation"])
            # Alternated with the invocations, so that load shifts hit both alike.
            begin_ms, complete_ms = _two_transactions(table)
            begin_floor.append(begin_ms)
            both_floor.append(begin_ms + complete_ms)

        _measure(count, invoke)
        print("invoke API   ", _percentiles(latency[3:]), flush=True)
        print("  persistence", _percentiles(persistence[3:]), flush=True)
        print("  the rest   ", _percentiles(rest[3:]), flush=True)
        print("  all added  ", _percentiles(added[3:]), flush=True)
        print("  floor: its two transactions sent directly", _percentiles(both_floor[3:]))
        print("  floor: the write-ahead one alone", _percentiles(begin_floor[3:]), flush=True)
        print("instrumentation", _percentiles(instrumentation[3:]), flush=True)

        def first_chunk_api() -> None:
            headers = botocore_headers("POST", url, body=streamed)
            headers["Content-Type"] = "application/json"
            with client.stream("POST", url, content=streamed, headers=headers) as response:
                for line in response.iter_lines():
                    if line == "event: chunk":
                        break

        api_ttfc = _measure(count, first_chunk_api)

    def run_direct() -> None:
        with connect(runtime.ws_url, open_timeout=5) as ws:
            ws.send(json.dumps({"action": "invoke", "payload": {"prompt": prompt}}))
            while json.loads(ws.recv(timeout=10))["type"] != "complete":
                pass

    def first_chunk_direct() -> None:
        with connect(runtime.ws_url, open_timeout=5) as ws:
            ws.send(json.dumps({"action": "invoke", "payload": {"prompt": prompt}}))
            ws.recv(timeout=10)

    def first_chunk_floor() -> None:
        _write_ahead(table)
        first_chunk_direct()

    print("direct run   ", _percentiles(_measure(count, run_direct)), flush=True)
    print("ttfc API     ", _percentiles(api_ttfc), flush=True)
    print("ttfc direct  ", _percentiles(_measure(count, first_chunk_direct)), flush=True)
    print(
        "  floor: the write-ahead transaction sent directly, then the direct first chunk",
        _percentiles(_measure(count, first_chunk_floor)),
        flush=True,
    )


def _lambda_package_dir(work: Path) -> Path:
    import zipfile

    from scripts.package import package_build

    built = os.environ.get("SKYMARSHAL_PACKAGE")
    package = Path(built) if built else package_build("dev", work / "skymarshal-api-dev.zip")
    target = work / "var-task"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(target)
    print(f"lambda package {package} ({package.stat().st_size / 1024 / 1024:.1f} MiB)", flush=True)
    return target


# A minimal Django + DRF app: one APIView answering {"status": "ok"}, no database, no
# authentication, no middleware but Django's CommonMiddleware.
_MINIMAL_SETTINGS = """
SECRET_KEY = "bench-minimal-drf-app-not-a-secret-0123456789abcdefghijklmnop"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "minimal_drf.urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True
USE_I18N = False  # as the app (the package carries no translation files)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
"""
_MINIMAL_URLS = """
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Health(APIView):
    def get(self, request):
        return Response({"status": "ok"})


urlpatterns = [path("api/v1/health", Health.as_view())]
"""


def _minimal_drf_package(package_dir: Path, work: Path) -> Path:
    """The same unzipped package (Zappa's handler, the same libraries), serving the minimal
    DRF app instead of ours: Zappa's settings module names its Django settings."""
    import shutil

    target = work / "var-task-minimal"
    shutil.copytree(package_dir, target, symlinks=True)
    app = target / "minimal_drf"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "settings.py").write_text(_MINIMAL_SETTINGS)
    (app / "urls.py").write_text(_MINIMAL_URLS)
    zappa_settings = target / "zappa_settings.py"
    # Its bytecode is unchecked (see scripts/package_prune.py): it goes with the old source.
    for stale in (target / "__pycache__").glob("zappa_settings.*.pyc"):
        stale.unlink()
    text = zappa_settings.read_text()
    assert "DJANGO_SETTINGS='skymarshal_api.settings'" in text
    zappa_settings.write_text(
        text.replace(
            "DJANGO_SETTINGS='skymarshal_api.settings'", "DJANGO_SETTINGS='minimal_drf.settings'"
        )
    )
    return target


def _without_bytecode(package_dir: Path, work: Path) -> Path:
    """A copy of the unzipped package without its ``__pycache__`` folders."""
    import shutil

    target = work / f"{package_dir.name}-no-bytecode"
    shutil.copytree(
        package_dir, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


def _bench_lambda(dynamodb: Server, log_dir: Path, count: int, servers: list[Server]) -> None:
    from scripts.lambda_invoke import LambdaProcess
    from sessions.models import sessions_table_bind
    from sessions.table import sessions_table_ensure
    from tests.deployment.conftest import lambda_environment, stage_settings
    from tests.deployment.events import iam_identity, rest_event

    package_dir = _lambda_package_dir(log_dir)
    sessions_table_bind(
        table_name=stage_settings()["environment_variables"]["SESSION_TABLE_NAME"],
        endpoint_url=dynamodb.http_url,
    )
    sessions_table_ensure()
    runtime = start_local_runtime("--agent-latency-ms", "0", log_dir=log_dir)
    servers.append(runtime)
    env = {**lambda_environment(dynamodb, runtime), "RATE_LIMIT_INVOKE_PER_WINDOW": "1000000"}
    env["RATE_LIMIT_DEFAULT_PER_WINDOW"] = "1000000"
    health = rest_event("GET", "/api/v1/health")
    prompt = {"prompt": "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"}

    def invoke_event() -> dict[str, object]:
        return rest_event("POST", "/api/v1/invoke", body=prompt, identity=iam_identity())

    minimal_dir = _minimal_drf_package(package_dir, log_dir)
    # (package, first request) of each cold start: ours as packaged (with its bytecode), and
    # without the bytecode (as Zappa alone packages it: every module compiled at import),
    # beside the minimal DRF app in the same two forms.
    variants = {
        "invoke": (package_dir, invoke_event),
        "health": (package_dir, lambda: health),
        "minimal DRF app": (minimal_dir, lambda: health),
        "invoke, no bytecode": (_without_bytecode(package_dir, log_dir), invoke_event),
        "minimal DRF app, no bytecode": (_without_bytecode(minimal_dir, log_dir), lambda: health),
    }
    cold: dict[str, dict[str, list[float]]] = {
        name: {"import": [], "first request": [], "total": []} for name in variants
    }
    for _ in range(3):
        # Interleaved, so that load shifts hit every variant alike.
        for name, (directory, event) in variants.items():
            started = time.perf_counter()
            process = LambdaProcess(directory, env, log_path=log_dir / "lambda-bench.log")
            try:
                result = process.invoke(event())
                assert result["statusCode"] == 200, result
                if name.startswith("minimal"):
                    assert json.loads(str(result["body"])) == {"status": "ok"}, result
                cold[name]["total"].append((time.perf_counter() - started) * 1000)
                cold[name]["import"].append(process.import_seconds * 1000)
                cold[name]["first request"].append(process.last_seconds * 1000)
            finally:
                process.stop()
    for name, parts in cold.items():
        for part, samples in parts.items():
            print(
                f"lambda cold {name}, {part}:",
                f"median {statistics.median(samples):.0f} ms (n={len(samples)}: "
                + " ".join(f"{sample:.0f}" for sample in samples)
                + ")",
                flush=True,
            )

    def ratio(ours: str, minimal: str) -> float:
        return statistics.median(cold[ours]["total"]) / statistics.median(cold[minimal]["total"])

    print(
        "lambda cold first invoke / minimal DRF app's first request (new interpreter to "
        f"response, medians): {ratio('invoke', 'minimal DRF app'):.2f} as packaged, "
        f"{ratio('invoke, no bytecode', 'minimal DRF app, no bytecode'):.2f} both without "
        "bytecode (target <= 1.2)",
        flush=True,
    )
    _imports_report(package_dir, minimal_dir, env, log_dir, invoke_event(), health)

    process = LambdaProcess(package_dir, env, log_path=log_dir / "lambda-bench.log")
    try:

        def warm_health() -> None:
            assert process.invoke(health)["statusCode"] == 200

        warm_handler: list[float] = []

        def warm_invoke() -> None:
            assert process.invoke(invoke_event())["statusCode"] == 200
            warm_handler.append(process.last_seconds * 1000)

        print("lambda warm health", _percentiles(_measure(count, warm_health)), flush=True)
        invokes = max(10, count // 4)
        print("lambda warm invoke", _percentiles(_measure(invokes, warm_invoke)), flush=True)
    finally:
        process.stop()

    # SnapStart: a container after its init phase and the before-snapshot hooks (no request
    # served), and environments restored from it: forks of its memory, each running the
    # after-restore hooks and then its first invoke (scripts/lambda_invoke.py), beside a warm
    # container's invokes, both timed inside the handler's process.
    process = LambdaProcess(package_dir, env, log_path=log_dir / "lambda-bench.log")
    try:
        process.control({"snapshot": True})
        hooks: list[float] = []
        first: list[float] = []
        for _ in range(max(15, count // 10)):
            restored = process.control({"fork": {"event": invoke_event()}})
            assert restored["handler"]["statusCode"] == 200, restored
            hooks.append(restored["restore_seconds"] * 1000)
            first.append(restored["handler_seconds"] * 1000)
    finally:
        process.stop()
    print("lambda restore: after-restore hooks", _percentiles(hooks), flush=True)
    print("lambda restore: first invoke      ", _percentiles(first), flush=True)
    print("lambda warm invoke, in the handler ", _percentiles(warm_handler), flush=True)
    print(
        "lambda first invoke after a restore - warm invoke (p50s): "
        f"{statistics.median(first) - statistics.median(warm_handler):+.1f} ms (target <= +50)",
        flush=True,
    )


def _imports_report(
    package_dir: Path,
    minimal_dir: Path,
    env: dict[str, str],
    log_dir: Path,
    invoke: dict[str, object],
    health: dict[str, object],
) -> None:
    """What the cold first invoke imports beyond the minimal app's first request: each one's
    cold start again, as packaged, under ``-X importtime`` (benchmarks/imports.py)."""
    from benchmarks.imports import import_times_parse, imports_beyond, imports_compared
    from scripts.lambda_invoke import LambdaProcess

    rows = {}
    for name, directory, event in (
        ("invoke", package_dir, invoke),
        ("minimal", minimal_dir, health),
    ):
        log_path = log_dir / f"importtime-{name}.log"
        process = LambdaProcess(
            directory, env, log_path=log_path, python_options=("-X", "importtime")
        )
        try:
            assert process.invoke(event)["statusCode"] == 200
        finally:
            process.stop()
        with log_path.open(encoding="utf-8", errors="replace") as log:
            rows[name] = import_times_parse(log)
    for line in imports_compared(rows["invoke"], rows["minimal"]):
        print(f"lambda cold {line}", flush=True)
    # The bench's package talks to the local runtime (AGENTCORE_MODE=local). Deployed, its
    # first invoke signs the AgentCore handshake with bedrock-agentcore's client, whose
    # package (bedrock_agentcore.runtime) it imports then: what that adds, in the package's
    # interpreter, beyond what the local first invoke imported. SnapStart's snapshot holds
    # it (snapshot_prepare warms the AgentCore clients).
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.insert(0, {str(package_dir)!r}); "
            "from bedrock_agentcore.runtime import AgentCoreRuntimeClient",
        ],
        cwd=package_dir,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    added_us, added = imports_beyond(
        import_times_parse(completed.stderr.splitlines()), rows["invoke"]
    )
    print(
        "lambda cold   not in these figures: deployed (AGENTCORE_MODE=agentcore), the first "
        f"invoke also imports bedrock_agentcore.runtime: {added_us / 1000:.0f} ms in {added} "
        "modules more (self times, -X importtime)",
        flush=True,
    )


def _bench_sigv4(count: int) -> None:
    from datetime import UTC, datetime

    from django.conf import settings

    from skymarshal_api.auth.sigv4 import SignedRequest, local_keys_parse, sigv4_verify
    from tests.signing import botocore_headers

    url = "http://127.0.0.1:8000/api/v1/sessions?limit=50&active=true"
    body = b'{"prompt": "Flight AA123 delayed 3 hours due to weather"}'
    headers = {k.lower(): v for k, v in botocore_headers("POST", url, body=body).items()}
    headers["host"] = "127.0.0.1:8000"
    request = SignedRequest("POST", "/api/v1/sessions", "limit=50&active=true", headers, body)
    keys = local_keys_parse(settings.SIGV4_LOCAL_KEYS)

    def verify() -> None:
        sigv4_verify(
            request, keys=keys, region="us-east-1", now=datetime.now(UTC), max_skew_seconds=300
        )

    print("sigv4 verify ", _percentiles(_measure(count * 10, verify)), flush=True)


if __name__ == "__main__":
    main()
