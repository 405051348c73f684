"""``make openapi-examples``: record the response examples of POST /api/v1/invoke from a real
run, for the OpenAPI schema.

Starts DynamoDB Local (in memory), the local SkyMarshal runtime (agents at their default
40 ms) and the API, sends the schema's example prompt signed with the development key,
once buffered and once streamed, and writes the answers verbatim to
``skymarshal_api/web/openapi_examples/``. Run ``make schema`` afterwards to put them in
openapi.yaml. tests/invocations/test_invoke_openapi_examples.py checks that the app still
answers the same (ids and timings aside).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from scripts.stack import ROOT, start_api, start_local_stack

EXAMPLES_DIR = ROOT / "skymarshal_api" / "web" / "openapi_examples"
RESPONSE_FILE = EXAMPLES_DIR / "invoke_response.json"
STREAM_FILE = EXAMPLES_DIR / "invoke_stream.txt"
TABLE = "openapi-examples-sessions"


def _signed_post(url: str, document: dict[str, object]) -> tuple[int, str, str]:
    """POST ``document`` signed with the development key: (status, content type, body)."""
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from django.conf import settings

    body = json.dumps(document)
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(
        Credentials(settings.SIGV4_DEV_ACCESS_KEY_ID, settings.SIGV4_DEV_SECRET_ACCESS_KEY),
        "execute-api",
        "us-east-1",
    ).add_auth(request)
    response = httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=60)
    return response.status_code, response.headers.get("content-type", ""), response.text


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skymarshal_api.settings")
    os.environ.setdefault("SKYMARSHAL_ENV", "test")
    import django

    django.setup()
    from skymarshal_api.web.schema import EXAMPLE_PROMPT

    log_dir = Path(tempfile.mkdtemp(prefix="openapi-examples-"))
    servers = []
    try:
        env = start_local_stack(log_dir=log_dir, servers=servers, table=TABLE)
        api = start_api(env=env, log_dir=log_dir, workers=1)
        servers.append(api)
        url = f"{api.http_url}/api/v1/invoke"
        status, content_type, text = _signed_post(url, {"prompt": EXAMPLE_PROMPT})
        if status != 200 or not content_type.startswith("application/json"):
            print(f"buffered invoke answered {status} {content_type}: {text}", file=sys.stderr)
            return 1
        RESPONSE_FILE.write_text(json.dumps(json.loads(text), indent=2) + "\n")
        status, content_type, text = _signed_post(
            url, {"prompt": EXAMPLE_PROMPT, "streaming": True}
        )
        if status != 200 or not content_type.startswith("text/event-stream"):
            print(f"streamed invoke answered {status} {content_type}: {text}", file=sys.stderr)
            return 1
        STREAM_FILE.write_text(text)
        print(f"Wrote {RESPONSE_FILE.relative_to(ROOT)} and {STREAM_FILE.relative_to(ROOT)}")
        return 0
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
