"""The deployed function's DJANGO_SECRET_KEY: kept in SSM Parameter Store as a SecureString
(``/skymarshal/STAGE/django-secret-key``, created once with a random value), and set in the
function's own environment, never in zappa_settings.json or the package.

It must stay the same across deployments: records that could not be saved are logged
encrypted with a key derived from it (``manage.py sessions_replay_log`` needs the same key).
Zappa keeps environment variables it did not set when it updates the function, so the key
survives ``zappa update``; this is run after every deploy all the same (idempotent).

Usage: python -m scripts.lambda_secret STAGE [--region us-east-1]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

VARIABLE = "DJANGO_SECRET_KEY"


def parameter_name(stage: str) -> str:
    return f"/skymarshal/{stage}/django-secret-key"


def secret_key_get_or_create(ssm: Any, *, name: str) -> str:
    """The stored key; a new random one (stored) when there is none."""
    try:
        return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
    value = secrets.token_urlsafe(50)
    ssm.put_parameter(
        Name=name,
        Description="DJANGO_SECRET_KEY of the SkyMarshal API (replay-log encryption)",
        Value=value,
        Type="SecureString",
        Overwrite=False,
    )
    return value


def secret_key_apply(lambda_client: Any, *, function_name: str, value: str) -> bool:
    """Set the key in the function's environment, keeping every other variable; returns
    whether the configuration changed (and waits for the update to finish)."""
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(configuration.get("Environment", {}).get("Variables", {}))
    if variables.get(VARIABLE) == value:
        return False
    variables[VARIABLE] = value
    lambda_client.update_function_configuration(
        FunctionName=function_name, Environment={"Variables": variables}
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m scripts.lambda_secret", description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    # A stage's worker (STAGE_worker) shares its secret key: both write and read the same
    # records (replay lines are encrypted with a key derived from it).
    value = secret_key_get_or_create(
        session.client("ssm"), name=parameter_name(args.stage.removesuffix("_worker"))
    )
    function_name = function_name_of(args.stage)
    changed = secret_key_apply(session.client("lambda"), function_name=function_name, value=value)
    print(f"{VARIABLE} of {function_name}: {'set' if changed else 'already set'}")
    return 0


def function_name_of(stage: str) -> str:
    """Zappa's name for the stage's function (it slugifies ``_`` to ``-``)."""
    return f"skymarshal-api-{stage.replace('_', '-')}"


if __name__ == "__main__":
    sys.exit(main())
