"""The suite-wide log check (tests/log_audit.py) finds what it must: a prompt or a
credential in a log line, raw or JSON-escaped, and a prompt a real server logged when
LOG_PROMPTS let it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from scripts.stack import ROOT, Server, start_api
from skymarshal_api.telemetry.logs import JsonFormatter
from tests.log_audit import Sent, log_files_lines, log_leaks_find
from tests.signing import botocore_headers

PROMPT = 'Flight "EK7" delayed 3 hours at DXB — sandstorm, 380 passengers'


def _lines(*texts: str) -> list[tuple[str, int, str]]:
    return [("test.log", number, text) for number, text in enumerate(texts, start=1)]


def test_a_prompt_is_found_raw_and_json_escaped() -> None:
    sent = Sent()
    sent.prompt_record(PROMPT)
    escaped = json.dumps({"message": PROMPT})
    ascii_escaped = json.dumps({"message": PROMPT}, ensure_ascii=True)
    leaks = log_leaks_find(_lines("clean", f"raw {PROMPT}", escaped, ascii_escaped), sent)
    assert [(leak.line_number, leak.kind) for leak in leaks] == [
        (2, "prompt"),
        (3, "prompt"),
        (4, "prompt"),
    ]


def test_an_authorization_value_or_its_signature_alone_is_found() -> None:
    sent = Sent()
    headers = botocore_headers("GET", "http://127.0.0.1:1/api/v1/identity")
    sent.request_record(headers, None)
    authorization = headers["Authorization"]
    signature = authorization.rsplit("Signature=", 1)[1]
    leaks = log_leaks_find(
        _lines(f"auth={authorization}", f"sig {signature} end", "nothing here"), sent
    )
    assert [leak.line_number for leak in leaks] == [1, 1, 2]  # the value and its signature
    assert {leak.kind for leak in leaks} == {"credential"}


def test_values_too_plain_to_search_are_left_out() -> None:
    sent = Sent()
    sent.prompt_record("aaaaaaaaaaaa")  # one character: indistinguishable from padding
    sent.prompt_record("too short")
    sent.credential_record("Bearer x")
    assert sent.prompts == set()
    assert sent.credentials == set()
    assert log_leaks_find(_lines("aaaaaaaaaaaa too short Bearer x"), sent) == []


def test_a_prompt_that_is_one_of_the_apps_own_words_is_left_out() -> None:
    sent = Sent()
    sent.prompt_record("DynamoDbLatency")  # a metric name the app logs itself
    sent.prompt_record("DynamoDbLatency is high at ORD")
    assert sent.prompts == {"DynamoDbLatency is high at ORD"}


def test_a_credential_logged_in_process_is_found(tmp_path: Path) -> None:
    sent = Sent()
    sent.credential_record("skymarshal-local-development-secret-key")
    handler = logging.FileHandler(tmp_path / "in-process.log")
    handler.setFormatter(JsonFormatter())
    leaking = logging.getLogger("tests.leaking")
    leaking.propagate = False  # only into this test's own file
    leaking.addHandler(handler)
    try:
        leaking.warning("secret is %s", "skymarshal-local-development-secret-key")
    finally:
        leaking.removeHandler(handler)
        handler.close()
    [leak] = log_leaks_find(log_files_lines(tmp_path), sent)
    assert (leak.source, leak.kind) == ("in-process.log", "credential")


def test_a_prompt_a_server_logs_is_found_and_its_authorization_is_not(
    tmp_path: Path, dynamodb_local: Server, local_runtime: Server, module_sessions_table: str
) -> None:
    # LOG_PROMPTS puts the prompt in the log; this server writes under tmp_path, so the
    # suite-wide check never sees this deliberate leak.
    api = start_api(
        env={
            "SKYMARSHAL_ENV": "test",
            "AGENTCORE_WS_URL": local_runtime.ws_url,
            "DYNAMODB_ENDPOINT_URL": dynamodb_local.http_url,
            "SESSION_TABLE_NAME": module_sessions_table,
            "LOG_PROMPTS": "true",
        },
        log_dir=tmp_path,
        workers=1,
    )
    try:
        import httpx

        url = f"{api.http_url}/api/v1/invoke"
        body = json.dumps({"prompt": PROMPT}).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(botocore_headers("POST", url, body=body, headers=headers))
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        api.stop()
    sent = Sent()
    sent.request_record(headers, body)
    leaks = log_leaks_find(log_files_lines(tmp_path), sent)
    assert leaks
    assert {leak.kind for leak in leaks} == {"prompt"}
    assert {leak.value for leak in leaks} == {PROMPT}


LEAKING_TEST = """
import json
import logging

from django.test import Client

PROMPT = "Flight NZ1 diverted to Nadi after a medical emergency on board"


def test_sends_a_prompt_and_logs_it():
    response = Client().post(
        "/api/v1/health", data=json.dumps({"prompt": PROMPT}), content_type="application/json"
    )
    assert response.status_code == 405
    logging.getLogger("leaky").warning("debugging: %s", PROMPT)
"""


def test_the_suite_fails_when_a_test_logs_a_prompt_it_sent(tmp_path: Path) -> None:
    """The check itself, run as the suite runs it: a session whose one test sends a prompt
    and then logs it ends in an error that names the leak."""
    (tmp_path / "test_leaking.py").write_text(LEAKING_TEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-p",
            "no:logging",
            f"--rootdir={ROOT}",
            f"--basetemp={tmp_path / 'base'}",
            str(tmp_path / "test_leaking.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "SKYMARSHAL_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "pytest-in-process.log" in result.stdout
    assert "a prompt ('Flight NZ1 diverted" in result.stdout
