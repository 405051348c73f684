"""Contract tests: Schemathesis generates requests for every operation of openapi.yaml
(which is the schema the running app serves: checked here, and against the code by
test_openapi_schema.py), valid and invalid ones, sends them signed with SigV4 to a live
API (gunicorn, DynamoDB Local, the local runtime with agents that take no time) and checks
every response against the schema:

- no 5xx unless the operation documents that status, and never a 500;
- the status code is documented for the operation;
- the Content-Type is one the operation documents for that status;
- the body matches the documented schema (JSON strictly; each Server-Sent Event of a
  streamed /invoke against the documented event).

Operations are taken from the schema, so an endpoint added later is tested as soon as
openapi.yaml is regenerated (`make schema`). The budget is bounded and the run is
reproducible: a fixed seed, deterministic generation, no example database, at most
FUZZ_EXAMPLES generated cases per operation besides Schemathesis' explicit examples and
coverage cases. The rate limits of this app are raised so that 429 does not stand in for
the answers under test.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import reject
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scripts.stack import Server, start_local_runtime
from skymarshal_api.web.schema import EXAMPLE_PROMPT, EXAMPLE_RESPONSE
from tests.conftest import ApiFactory
from tests.openapi import OPENAPI_YAML, REGENERATE, openapi_document
from tests.signing import DEV_KEY, DEV_PRINCIPAL, DEV_SECRET, aws4auth, botocore_send

FUZZ_EXAMPLES = 100
SEED = 20261123
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": FUZZ_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 30,
    }
)
GENEROUS = "1000000"


def no_undocumented_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx only when the operation documents that status; a 500 never (it is a bug)."""
    status = response.status_code
    if status >= 500 and (
        status == 500 or case.operation.responses.find_by_status_code(status) is None
    ):
        raise AssertionError(
            f"{case.operation.label} answered {status}, a server error: {response.content[:500]!r}"
        )
    return None


CHECKS = [
    no_undocumented_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Tally:
    """What was sent and answered, per operation: the proof that the run tested something."""

    def __init__(self) -> None:
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.media_types: dict[str, Counter[str]] = defaultdict(Counter)
        self.started = time.monotonic()

    def record(self, label: str, status: int, content_type: str) -> None:
        self.statuses[label][status] += 1
        self.media_types[label][content_type.split(";")[0]] += 1

    def summary(self) -> str:
        total = sum(sum(c.values()) for c in self.statuses.values())
        lines = [
            f"Schemathesis: {total} requests in {time.monotonic() - self.started:.1f} s "
            f"(seed {SEED}, at most {FUZZ_EXAMPLES} fuzzed cases per operation)"
        ]
        for label in sorted(self.statuses):
            statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses[label].items()))
            media = ", ".join(f"{m}: {n}" for m, n in sorted(self.media_types[label].items()))
            lines.append(f"  {label}: {sum(self.statuses[label].values())} ({statuses}; {media})")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def contract_runtime(log_dir: Path) -> Iterator[Server]:
    server = start_local_runtime("--agent-latency-ms", "0", log_dir=log_dir)
    yield server
    server.stop()


def _invocations_seed(dynamodb: Server, table: str) -> None:
    """The invocations the schema's examples name: one that succeeded (with its events),
    and one queued, with no worker, to cancel."""
    from invocations.openapi import (
        EXAMPLE_CANCELLABLE_ID,
        EXAMPLE_INVOCATION_ID,
        EXAMPLE_INVOCATION_RESULT,
        EXAMPLE_INVOCATION_SESSION_ID,
    )
    from sessions.begin import interaction_begin
    from sessions.complete import interaction_complete
    from sessions.models import sessions_table_bind
    from sessions.run_selectors import run_find
    from sessions.run_services import run_event_append, run_start

    sessions_table_bind(table_name=table, endpoint_url=dynamodb.http_url)
    try:
        started = interaction_begin(
            session_id=EXAMPLE_INVOCATION_SESSION_ID,
            request_id=EXAMPLE_INVOCATION_ID,
            prompt=EXAMPLE_PROMPT,
            principal_arn=DEV_PRINCIPAL,
            kind="invocation",
        )
        run = run_find(EXAMPLE_INVOCATION_ID)
        assert run is not None
        assert run_start(run) == "started"
        start = {"request_id": EXAMPLE_INVOCATION_ID, "session_id": EXAMPLE_INVOCATION_SESSION_ID}
        run_event_append(run, number=1, event="start", data=json.dumps(start))
        assert interaction_complete(
            started,
            status="success",
            response={
                k: v
                for k, v in EXAMPLE_INVOCATION_RESULT.items()
                if k not in ("request_id", "session_id")
            },
            execution_time_ms=int(EXAMPLE_INVOCATION_RESULT["execution_time_ms"]),
            run_response=EXAMPLE_INVOCATION_RESULT,
            http_status=200,
            final_event=(2, "complete", json.dumps(EXAMPLE_INVOCATION_RESULT)),
        )
        interaction_begin(
            session_id=None,
            request_id=EXAMPLE_CANCELLABLE_ID,
            prompt=EXAMPLE_PROMPT,
            principal_arn=DEV_PRINCIPAL,
            kind="invocation",
        )
    finally:
        sessions_table_bind()


@pytest.fixture(scope="module")
def contract_api(
    module_api_server_factory: ApiFactory,
    contract_runtime: Server,
    module_sessions_table: str,
    dynamodb_local: Server,
) -> Server:
    """The app under test, whose caller has the session of the schema's examples (so that
    reading it back answers 200 with real interactions, one of them streamed)."""
    api = module_api_server_factory(
        runtime=contract_runtime,
        SESSION_TABLE_NAME=module_sessions_table,
        SIGV4_LOCAL_KEYS=json.dumps({DEV_KEY: {"secret": DEV_SECRET, "principal": DEV_PRINCIPAL}}),
        RATE_LIMIT_INVOKE_PER_WINDOW=GENEROUS,
        RATE_LIMIT_DEFAULT_PER_WINDOW=GENEROUS,
    )
    for streaming in (False, True):
        body = json.dumps(
            {
                "prompt": EXAMPLE_PROMPT,
                "session_id": EXAMPLE_RESPONSE["session_id"],
                "streaming": streaming,
            }
        )
        answer = botocore_send(
            "POST",
            f"{api.http_url}/api/v1/invoke",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
    _invocations_seed(dynamodb_local, module_sessions_table)
    return api


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    tally = Tally()
    yield tally
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + tally.summary())
    # Every operation of the schema was exercised, and answered more than errors.
    assert tally.statuses, "no request was sent"
    for label, statuses in tally.statuses.items():
        assert any(200 <= s < 300 for s in statuses), f"{label} never succeeded: {statuses}"


@pytest.fixture(scope="module")
def app_url(contract_api: Server) -> str:
    """The app's URL, once it is known to serve openapi.yaml as its schema."""
    served = httpx.get(f"{contract_api.http_url}/api/v1/schema/", timeout=30)
    assert served.status_code == 200, served.text
    assert yaml.safe_load(served.text) == openapi_document(), (
        f"the app serves another schema than openapi.yaml: {REGENERATE}"
    )
    return contract_api.http_url


schema = schemathesis.openapi.from_path(OPENAPI_YAML, config=CONFIG)


@pytest.mark.slow
@pytest.mark.timeout(600)
@schema.parametrize()
def test_every_operation_answers_as_its_schema_documents(
    case: Any, app_url: str, tally: Tally
) -> None:
    try:
        response = case.call(base_url=app_url, auth=aws4auth())
    except ValueError as exc:
        # requests-aws4auth normalizes header values with shlex, which cannot read one with
        # an unbalanced quote (a generated Last-Event-ID, say): the request cannot be
        # signed, so it is never sent. Not a case the app can answer.
        if "No closing quotation" not in str(exc):
            raise
        reject()
    content_type = (response.headers.get("content-type") or [""])[0]
    tally.record(case.operation.label, response.status_code, content_type)
    case.validate_response(response, checks=CHECKS)
