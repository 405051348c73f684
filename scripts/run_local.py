"""``make run``: the whole SkyMarshal stack on this machine, no AWS account needed.

Starts DynamoDB Local (data kept under .local/dynamodb), the local SkyMarshal runtime and
the API, ensures the sessions table, keeps a sweeper ending lost runs every SWEEP_SECONDS
(``manage.py runs_sweep --every``, as the Lambda's scheduled event does), prints the URLs,
and on Ctrl-C (or SIGTERM, or when any server dies) stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from scripts.stack import (
    HOST,
    ROOT,
    Server,
    ServerStartError,
    manage,
    start_api,
    start_dynamodb_local,
    start_local_runtime,
    start_sweeper,
)

SWEEP_SECONDS = 30.0


class _Stop(Exception):
    pass


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--api-port", type=int, default=_port("API_PORT", 8000))
    parser.add_argument("--runtime-port", type=int, default=_port("RUNTIME_PORT", 8080))
    parser.add_argument("--dynamodb-port", type=int, default=_port("DYNAMODB_PORT", 8001))
    parser.add_argument(
        "--dev-server",
        action="store_true",
        help="serve the API with Django's development server instead of gunicorn",
    )
    parser.add_argument(
        "--in-memory", action="store_true", help="keep DynamoDB Local's data in memory only"
    )
    parser.add_argument(
        "--agent-latency-ms",
        type=int,
        default=int(os.environ.get("RUNTIME_AGENT_LATENCY_MS", 40)),
        help="time each simulated agent works (default %(default)s ms)",
    )
    parser.add_argument(
        "--runtime-fault",
        default=os.environ.get("RUNTIME_FAULT", "none"),
        help="start the runtime with this fault mode (see python -m local_runtime --help)",
    )
    return parser.parse_args(argv)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log_dir = ROOT / ".local" / "logs"
    servers: list[Server] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        print(f"Starting DynamoDB Local on {HOST}:{args.dynamodb_port} …", flush=True)
        dynamodb = start_dynamodb_local(
            port=args.dynamodb_port,
            db_path=None if args.in_memory else ROOT / ".local" / "dynamodb",
            log_dir=log_dir,
        )
        servers.append(dynamodb)
        print(f"Starting the local SkyMarshal runtime on {HOST}:{args.runtime_port} …", flush=True)
        runtime = start_local_runtime(
            "--agent-latency-ms",
            str(args.agent_latency_ms),
            "--fault",
            args.runtime_fault,
            port=args.runtime_port,
            log_dir=log_dir,
        )
        servers.append(runtime)
        env = {
            "SKYMARSHAL_ENV": os.environ.get("SKYMARSHAL_ENV", "local"),
            "AGENTCORE_MODE": "local",
            "AGENTCORE_WS_URL": runtime.ws_url,
            "DYNAMODB_ENDPOINT_URL": dynamodb.http_url,
        }
        manage(env, "ensure_sessions_table")
        manage(env, "migrate", "--no-input", "--verbosity", "0")
        print(f"Starting the API on {HOST}:{args.api_port} …", flush=True)
        api = start_api(env=env, port=args.api_port, log_dir=log_dir, dev_server=args.dev_server)
        servers.append(api)
        servers.append(start_sweeper(env=env, every=SWEEP_SECONDS, log_dir=log_dir))
        _print_urls(api, runtime, dynamodb, log_dir)
        while True:
            for server in servers:
                if not server.is_running():
                    print(
                        f"\n{server.name} exited ({server.process.returncode}):\n"
                        f"{server.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
    except _Stop as stop:
        print(f"\n{stop}: stopping …", flush=True)
        return 0
    except (ServerStartError, subprocess.CalledProcessError) as exc:
        print(f"make run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not interrupt the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in reversed(servers):
            server.stop()
        if servers:
            print("Stopped: " + ", ".join(s.name for s in reversed(servers)), flush=True)


def _print_urls(api: Server, runtime: Server, dynamodb: Server, log_dir: Path) -> None:
    base = api.http_url
    print(
        "\nSkyMarshal API is running.\n"
        f"  Health         {base}/api/v1/health\n"
        f"  Swagger UI     {base}/api/v1/docs/\n"
        f"  Redoc          {base}/api/v1/redoc/\n"
        f"  Browsable API  {base}/api/v1/health  (open it in a browser)\n"
        f"  Schema         {base}/api/v1/schema/\n"
        f"  Runtime        {runtime.http_url}/ping  {runtime.ws_url}\n"
        f"  DynamoDB Local {dynamodb.http_url}\n"
        f"  Sweeper        ends lost runs every {SWEEP_SECONDS:g} s (manage.py runs_sweep)\n"
        f"  Logs           {log_dir}\n"
        "Press Ctrl-C to stop everything.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
