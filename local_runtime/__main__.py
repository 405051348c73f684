"""``python -m local_runtime``: run the local SkyMarshal runtime."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from local_runtime.app import FAULTS, RuntimeConfig
from local_runtime.server import serve


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = RuntimeConfig()
    parser = argparse.ArgumentParser(
        prog="python -m local_runtime",
        description="A local SkyMarshal runtime speaking the AgentCore Runtime contract "
        "(GET /ping, POST /invocations, WebSocket /ws).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--agent-latency-ms",
        type=_non_negative,
        default=defaults.agent_latency_ms,
        help="time each of the seven agents works (default %(default)s ms)",
    )
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default=defaults.fault,
        help="misbehave this way on every WebSocket run (default none)",
    )
    parser.add_argument(
        "--fault-after",
        type=_non_negative,
        default=defaults.fault_after,
        help="chunks sent before a mid-stream fault (default %(default)s)",
    )
    parser.add_argument(
        "--oversize-bytes",
        type=_non_negative,
        default=defaults.oversize_bytes,
        help="size of the oversize-frame fault's frame (default %(default)s)",
    )
    parser.add_argument(
        "--retry-after",
        type=_non_negative,
        default=defaults.retry_after_seconds,
        help="Retry-After seconds of the busy fault (default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = RuntimeConfig(
        agent_latency_ms=args.agent_latency_ms,
        fault=args.fault,
        fault_after=args.fault_after,
        oversize_bytes=args.oversize_bytes,
        retry_after_seconds=args.retry_after,
    )
    serve(config, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
