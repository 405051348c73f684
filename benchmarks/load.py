"""``make load``: the load test of design.md against the local stack, headless and bounded.

Starts DynamoDB Local (in memory), the local SkyMarshal runtime with its agents set so that
one run takes about 2 s (7 agents x 285 ms) and the API under gunicorn as `make run` starts
it, with a SigV4 key per load-test user (benchmarks/load_users.py: each user is a caller of
its own, so the per-caller rate limits stay as configured). Then runs locust headless:
USERS users started RATE a second, each invoking and waiting 1-3 s, for DURATION seconds
after the ramp-up (only requests that end once every user has started are counted, so the
numbers are those of the full load; locustfile.py records them). Prints p50, p95, p99,
errors and requests/s; the server's own split of those requests (Server-Timing: storage,
runtime, the rest) at p50/p95/p99; and per invoke, from the metrics the API logged under
its request id, the table calls (by operation), transactions cancelled by a conflicting
write, botocore's retries and failed calls. Exits 1 when the target (no errors, p95 below
--p95-target-ms) is missed.

Usage: python -m benchmarks.load [--users 100] [--spawn-rate 10] [--duration 120]
       [--agent-latency-ms 285] [--workers 2] [--threads N] [--p95-target-ms 2500]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.load_users import load_keys
from scripts.stack import ROOT, Server, manage, start_api, start_dynamodb_local, start_local_runtime

TABLE = "load-test-sessions"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--duration", type=int, default=120, help="seconds at full load")
    parser.add_argument("--agent-latency-ms", type=int, default=285)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per worker (default: make run's)"
    )
    parser.add_argument("--p95-target-ms", type=float, default=2500.0)
    return parser.parse_args(argv)


def _percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``ordered``."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _report(results: dict[str, Any], *, duration: int) -> tuple[int, float]:
    """Print the numbers of the run at full load; (errors, p95 ms)."""
    requests = results["requests"]
    if not requests or results["full_load_at"] is None:
        print("No request completed at full load.")
        return 1, math.inf
    ordered = sorted(r["ms"] for r in requests)
    errors = [r["error"] for r in requests if r["error"] is not None]
    window_end = results["stopping_at"] or max(r["ended"] for r in requests)
    window = window_end - results["full_load_at"]
    in_window = sum(1 for r in requests if r["ended"] <= window_end)
    p95 = _percentile(ordered, 95)
    print(
        f"\nLoad test at full load ({window:.0f} s, {duration} s asked; requests still "
        f"running at the end are included):\n"
        f"  requests {len(requests)}  errors {len(errors)}  "
        f"requests/s {in_window / window:.2f}\n"
        f"  p50 {_percentile(ordered, 50):.0f} ms  p95 {p95:.0f} ms  "
        f"p99 {_percentile(ordered, 99):.0f} ms  max {ordered[-1]:.0f} ms  "
        f"mean {statistics.fmean(ordered):.0f} ms"
    )
    for error, count in Counter(errors).most_common(10):
        print(f"  error: {count} x {error}")
    _report_server_split(requests)
    return len(errors), p95


def _report_server_split(requests: list[dict[str, Any]]) -> None:
    """Where the server says the time of the answered requests went (Server-Timing):
    storage (``persistence``), the runtime, and the rest of ``total``."""
    timings = [r["server_timing"] for r in requests if r.get("server_timing", {}).get("total")]
    if not timings:
        print("  (no Server-Timing in the answers)")
        return
    parts = {
        "storage": [t.get("persistence", 0.0) for t in timings],
        "runtime": [t.get("runtime", 0.0) for t in timings],
        "rest": [t["total"] - t.get("persistence", 0.0) - t.get("runtime", 0.0) for t in timings],
        "server total": [t["total"] for t in timings],
    }
    print(f"  server side ({len(timings)} answers with Server-Timing), ms:")
    for name, values in parts.items():
        ordered = sorted(values)
        print(
            f"    {name:12} p50 {_percentile(ordered, 50):7.0f}  p95 "
            f"{_percentile(ordered, 95):7.0f}  p99 {_percentile(ordered, 99):7.0f}  "
            f"max {ordered[-1]:7.0f}"
        )


# The table metrics an invoke's EMF documents carry (skymarshal_api/telemetry/observation.py).
_TABLE_METRICS = ("DynamoDbCalls", "DynamoDbConflicts", "DynamoDbRetries", "DynamoDbFailures")


def _report_table_calls(api: Server, requests: list[dict[str, Any]]) -> None:
    """Per counted invoke, from the metrics the API logged under its request id: table calls
    (by operation), transactions cancelled by a conflict, botocore's retries, failures."""
    wanted = {r["request_id"] for r in requests if r.get("request_id")}
    per_request: dict[str, Counter[str]] = {}
    operations: Counter[str] = Counter()
    for document in api.json_documents():
        request_id = document.get("request_id")
        if "_aws" not in document or request_id not in wanted:
            continue
        counts = per_request.setdefault(request_id, Counter())
        for name in _TABLE_METRICS:
            values = document.get(name)
            if isinstance(values, list):
                total = sum(float(value) for value in values)
                counts[name] += total
                if name == "DynamoDbCalls":
                    operations[str(document.get("operation"))] += total
    if not per_request:
        print("  (no table metrics found for the counted invokes)")
        return
    n = len(per_request)
    print(f"  table, per invoke ({n} invokes with metrics):")
    for name in _TABLE_METRICS:
        values = sorted(counts[name] for counts in per_request.values())
        print(
            f"    {name:18} mean {statistics.fmean(values):5.2f}  p99 "
            f"{_percentile(values, 99):4.0f}  max {values[-1]:4.0f}  total {sum(values):6.0f}"
        )
    print(
        "    calls by operation, per invoke: "
        + ", ".join(f"{op} {count / n:.2f}" for op, count in operations.most_common())
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="skymarshal-load-"))
    log_dir = work / "logs"
    servers: list[Server] = []
    try:
        dynamodb = start_dynamodb_local(log_dir=log_dir)
        servers.append(dynamodb)
        runtime = start_local_runtime(
            "--agent-latency-ms",
            str(args.agent_latency_ms),
            "--log-level",
            "warning",
            log_dir=log_dir,
        )
        servers.append(runtime)
        env = {
            "SKYMARSHAL_ENV": "local",
            "AGENTCORE_MODE": "local",
            "AGENTCORE_WS_URL": runtime.ws_url,
            "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
            "SESSION_TABLE_NAME": TABLE,
            "SIGV4_LOCAL_KEYS": json.dumps(load_keys(args.users)),
            "LOG_LEVEL": "WARNING",
        }
        manage(env, "ensure_sessions_table", quiet=True)
        threads = {} if args.threads is None else {"threads": args.threads}
        api = start_api(env=env, log_dir=log_dir, workers=args.workers, **threads)
        servers.append(api)
        ramp_up = args.users / args.spawn_rate
        results = work / "results.json"
        print(
            f"locust: {args.users} users (+{args.spawn_rate:g}/s), {args.duration} s at full "
            f"load; runtime agents {args.agent_latency_ms} ms x 7; gunicorn "
            f"{args.workers} workers x {args.threads or 'default'} threads; logs in {log_dir}",
            flush=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "benchmarks" / "locustfile.py"),
                "--headless",
                "--host",
                api.http_url,
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.spawn_rate),
                "--run-time",
                f"{round(ramp_up + args.duration)}s",
                "--reset-stats",
                "--stop-timeout",
                "30",
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**os.environ, "SKYMARSHAL_LOAD_RESULTS": str(results)},
            check=False,
        )
        recorded = json.loads(results.read_text())
        errors, p95 = _report(recorded, duration=args.duration)
        _report_table_calls(api, recorded["requests"])
        met = errors == 0 and p95 < args.p95_target_ms
        print(f"Target (0 errors, p95 < {args.p95_target_ms:.0f} ms): {'met' if met else 'MISSED'}")
        return 0 if met else 1
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
