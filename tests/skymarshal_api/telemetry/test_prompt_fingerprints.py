"""A prompt's fingerprint in the logs is keyed (HMAC with a key derived from SECRET_KEY):
the same in every process of one deployment, useless to whoever holds only the logs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from scripts.stack import ROOT

PROMPT = "Flight BA117 delayed 4 hours at LHR due to a hydraulic fault"
KEY_A = "deployment-a-secret-key-0123456789-abcdefghijklmnop"
KEY_B = "deployment-b-secret-key-0123456789-abcdefghijklmnop"


def _fingerprint_in_a_new_process(secret_key: str) -> dict[str, object]:
    code = (
        "import django, json; django.setup(); "
        "from skymarshal_api.telemetry.logs import prompt_fingerprint; "
        f"print(json.dumps(prompt_fingerprint({PROMPT!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "skymarshal_api.settings",
            "SKYMARSHAL_ENV": "test",
            "DJANGO_SECRET_KEY": secret_key,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_prompt_fingerprints_are_keyed_and_stable_across_processes() -> None:
    first = _fingerprint_in_a_new_process(KEY_A)
    second = _fingerprint_in_a_new_process(KEY_A)
    other = _fingerprint_in_a_new_process(KEY_B)
    assert set(first) == {"prompt_length", "prompt_hmac"}
    assert first == second  # operators of one deployment can correlate lines
    assert first["prompt_hmac"] != other["prompt_hmac"]  # keyed by the secret key
    # Not the unkeyed SHA-256 that a guess of the prompt would confirm.
    assert first["prompt_hmac"] != hashlib.sha256(PROMPT.encode()).hexdigest()
    assert len(str(first["prompt_hmac"])) == 64
