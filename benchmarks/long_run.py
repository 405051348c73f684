"""``make bench-long``: one background run as long as a real SkyMarshal assessment can be
(5 minutes by default: seven agents at 300/7 s each), created with POST /invocations and
followed at once by two clients: one polling GET every 5 s, one calling ``wait`` with
``timeout=25`` again and again. Prints how long the run took and what each client saw.

Usage: python -m benchmarks.long_run [--minutes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from scripts.stack import ROOT, Server, start_api, start_dynamodb_local, start_local_runtime

FINAL = {"succeeded", "failed", "timed_out", "cancelled"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_run")
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    seconds = args.minutes * 60
    log_dir = Path(tempfile.mkdtemp(prefix="skymarshal-long-run-"))
    servers: list[Server] = []
    try:
        dynamodb = start_dynamodb_local(log_dir=log_dir)
        servers.append(dynamodb)
        latency_ms = str(int(seconds * 1000 / 7))
        runtime = start_local_runtime("--agent-latency-ms", latency_ms, log_dir=log_dir)
        servers.append(runtime)
        env = {
            "SKYMARSHAL_ENV": "test",
            "AGENTCORE_WS_URL": runtime.ws_url,
            "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
            "SESSION_TABLE_NAME": "long-run-sessions",
            "AGENTCORE_DEADLINE_SECONDS": str(int(seconds + 120)),
        }
        subprocess.run(
            [sys.executable, "manage.py", "ensure_sessions_table"],
            cwd=ROOT,
            env={**env, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )
        api = start_api(env=env, log_dir=log_dir)
        servers.append(api)
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "skymarshal_api.settings"})
        import django

        django.setup()
        from tests.signing import botocore_headers

        base = f"{api.http_url}/api/v1/invocations"

        def call(method: str, url: str, body: bytes = b"", timeout: float = 40) -> Any:
            headers = {"Content-Type": "application/json"} if body else {}
            headers.update(botocore_headers(method, url, body=body, headers=headers))
            response = httpx.request(method, url, content=body, headers=headers, timeout=timeout)
            response.raise_for_status()
            return response.json()

        body = json.dumps({"prompt": "Flight BA117 LHR-JFK delayed 4 hours, hydraulic fault"})
        began = time.monotonic()
        run = call("POST", base, body.encode())
        request_id = run["request_id"]
        seen: dict[str, list[str]] = {"poll": [], "wait": []}

        def poll() -> None:
            while (status := call("GET", f"{base}/{request_id}")["status"]) not in FINAL:
                seen["poll"].append(status)
                time.sleep(5)
            seen["poll"].append(status)

        def wait() -> None:
            url = f"{base}/{request_id}/wait?timeout=25"
            while (status := call("GET", url)["status"]) not in FINAL:
                seen["wait"].append(status)
            seen["wait"].append(status)

        threads = [threading.Thread(target=poll), threading.Thread(target=wait)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        final = call("GET", f"{base}/{request_id}")
        print(f"run {request_id}: {final['status']} after {elapsed:.1f} s")
        print(f"  polling GET every 5 s: {len(seen['poll'])} calls, last {seen['poll'][-1]}")
        print(f"  wait?timeout=25:       {len(seen['wait'])} calls, last {seen['wait'][-1]}")
        print(f"  result final_decision: {(final['result'] or {}).get('final_decision')}")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
