"""``make bench``: latency of the local stack's paths, as numbers.

  health   GET /api/v1/health through gunicorn (cache off: both checks every time)
  runtime  one full SkyMarshal run over the runtime WebSocket (7 agents at 40 ms)

Usage: python -m benchmarks [--requests N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.sync.client import connect

from scripts.stack import start_api, start_dynamodb_local, start_local_runtime


def _percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"n={len(ordered)} p50={q[49]:.1f} ms p95={q[94]:.1f} ms p99={q[98]:.1f} ms "
        f"max={ordered[-1]:.1f} ms"
    )


def _measure(count: int, action: Callable[[], None]) -> list[float]:
    action()  # warm-up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="skymarshal-bench-"))
    servers = []
    try:
        dynamodb = start_dynamodb_local(log_dir=log_dir)
        servers.append(dynamodb)
        runtime = start_local_runtime(log_dir=log_dir)
        servers.append(runtime)
        env = {
            "SKYMARSHAL_ENV": "local",
            "AGENTCORE_WS_URL": runtime.ws_url,
            "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
            "HEALTH_CACHE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        import subprocess
        import sys

        subprocess.run(
            [sys.executable, "manage.py", "ensure_sessions_table"],
            env={**__import__("os").environ, **env},
            check=True,
            capture_output=True,
        )
        api = start_api(env=env, log_dir=log_dir)
        servers.append(api)

        with httpx.Client(base_url=api.http_url, timeout=10) as client:

            def health() -> None:
                client.get("/api/v1/health").raise_for_status()

            print("health  ", _percentiles(_measure(args.requests, health)), flush=True)

        def run() -> None:
            with connect(runtime.ws_url, open_timeout=5) as ws:
                ws.send(json.dumps({"action": "invoke", "payload": {"prompt": "AA1 delayed 2h"}}))
                while json.loads(ws.recv(timeout=10))["type"] != "complete":
                    pass

        runs = max(10, args.requests // 10)
        print("runtime ", _percentiles(_measure(runs, run)), flush=True)
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
