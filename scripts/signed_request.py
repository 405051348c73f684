"""One request to the deployed API, signed with SigV4 for ``execute-api`` with your AWS
credentials (the default chain: AWS_PROFILE, ``aws sso login``, environment, …), as any
client of the API signs it.

Prints the HTTP status on the first line, then the body (or writes the body to --output).

Usage: python -m scripts.signed_request METHOD URL [--data JSON] [--region us-east-1]
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def signed_send(
    method: str, url: str, *, data: str | None, region: str, timeout: float = 60
) -> tuple[int, bytes]:
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise SystemExit("no AWS credentials: run 'aws sso login --profile NAME'")
    body = data.encode() if data is not None else b""
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    prepared = urllib.request.Request(  # noqa: S310 - an https URL the caller names
        url, data=body or None, headers=dict(request.headers.items()), method=method
    )
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310  # nosec B310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.signed_request", description=__doc__)
    parser.add_argument("method")
    parser.add_argument("url")
    parser.add_argument("--data", help="a JSON body")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--output", type=Path, help="write the body here")
    args = parser.parse_args(argv)
    if not args.url.startswith(("https://", "http://127.0.0.1")):
        parser.error("the URL must be https:// (or the local stack on 127.0.0.1)")
    status, body = signed_send(args.method.upper(), args.url, data=args.data, region=args.region)
    print(status)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_bytes(body)
    else:
        print(body.decode(errors="replace"))
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
