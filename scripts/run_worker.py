"""What Zappa leaves to us on a stage's worker function (``STAGE_worker``, which runs the
background runs), applied after every deploy and update (its Zappa ``post`` callback):

- **Asynchronous invocation settings** (PutFunctionEventInvokeConfig): at most 2 retries
  of a failed invocation (Lambda's maximum; the worker ends a run as WORKER_FAILED after
  its third failure), and a maximum event age of RUN_QUEUE_TIMEOUT_SECONDS, the time a run
  may wait for a worker: an event throttled longer than that is dropped by Lambda, and its
  run, still ``queued``, is ended as lost when its deadline passes. Lambda keeps throttled
  events and retries them with backoff up to that age (AWS Lambda Developer Guide, "How
  Lambda handles errors and retries with asynchronous invocation"). They are set on what
  the API invokes, RUN_WORKER_FUNCTION: the worker's SnapStart alias (``name:snapstart``),
  since an alias has asynchronous invocation settings of its own (Lambda API Reference,
  PutFunctionEventInvokeConfig: "for a function, version, or alias").

Zappa sets the function's reserved concurrency itself (``lambda_concurrency``). Idempotent.
Zappa imports this file by path, outside the ``scripts`` package: boto3 and the standard
library only.

Usage: python -m scripts.run_worker STAGE [--region us-east-1]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_RETRY_ATTEMPTS = 2
# Lambda accepts a maximum event age of 60 s to 6 hours.
EVENT_AGE_RANGE = (60, 21_600)
DEFAULT_QUEUE_SECONDS = 900
PROJECT = "skymarshal-api"


def queue_seconds(stage_environment: dict[str, str]) -> int:
    """The worker's maximum event age: the stage's RUN_QUEUE_TIMEOUT_SECONDS, within
    Lambda's range."""
    seconds = int(float(stage_environment.get("RUN_QUEUE_TIMEOUT_SECONDS", DEFAULT_QUEUE_SECONDS)))
    low, high = EVENT_AGE_RANGE
    if not low <= seconds <= high:
        raise ValueError(
            f"RUN_QUEUE_TIMEOUT_SECONDS={seconds} cannot be a Lambda event age ({low} to {high} s)"
        )
    return seconds


def worker_invoked(stage_environment: dict[str, str], function_name: str) -> str:
    """What the API invokes for a run: the stage's RUN_WORKER_FUNCTION, which must be
    ``function_name`` or one of its aliases (``function_name:alias``)."""
    invoked = stage_environment.get("RUN_WORKER_FUNCTION", function_name)
    if invoked.partition(":")[0] != function_name:
        raise ValueError(f"RUN_WORKER_FUNCTION={invoked} does not name {function_name}")
    return invoked


def worker_configure(
    lambda_client: Any, *, function_name: str, max_event_age: int
) -> dict[str, Any]:
    """The worker's asynchronous invocation settings; returns what was applied."""
    applied = {
        "FunctionName": function_name,
        "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": max_event_age,
    }
    lambda_client.put_function_event_invoke_config(**applied)
    return applied


def _stage_environment(stage: str) -> dict[str, str]:
    settings = json.loads(
        (Path(__file__).resolve().parent.parent / "zappa_settings.json").read_text()
    )
    environment: dict[str, str] = settings[stage].get("environment_variables", {})
    return environment


def zappa_post_deploy(cli: Any) -> None:
    """``callbacks.post`` of the worker stages in zappa_settings.json; Zappa passes its CLI
    object."""
    environment = _stage_environment(cli.api_stage)
    applied = worker_configure(
        cli.zappa.boto_session.client("lambda"),
        function_name=worker_invoked(environment, cli.lambda_name),
        max_event_age=queue_seconds(environment),
    )
    print(f"Worker configured: {json.dumps(applied)}")


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m scripts.run_worker", description=__doc__)
    parser.add_argument("stage", help="the API stage (dev, prod); its worker is STAGE_worker")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    environment = _stage_environment(f"{args.stage}_worker")
    applied = worker_configure(
        boto3.Session(region_name=args.region).client("lambda"),
        function_name=worker_invoked(environment, f"{PROJECT}-{args.stage}-worker"),
        max_event_age=queue_seconds(environment),
    )
    print(json.dumps(applied, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
