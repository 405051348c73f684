"""JSON log lines (aws-lambda-powertools' formatter) and the request's correlation keys.

Every line is one JSON object: ``timestamp``, ``level``, ``name`` (the logger), ``location``,
``message``, ``service``, and the correlation keys of the request being served (request_id,
session_id once known, principal once authenticated, and on Lambda apigw_request_id and
lambda_request_id). The keys live in a context variable (powertools' thread-safe keys), so
every logger's lines carry them, Django's and botocore's included, and concurrent requests
in one process (gunicorn threads) never see each other's.

A prompt is never logged: ``prompt_fingerprint`` gives its length and SHA-256 instead, and
its text only where LOG_PROMPTS allows it (never in production). Nothing here logs headers,
so no Authorization value or session token can reach a line.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from aws_lambda_powertools.logging.formatter import (
    LambdaPowertoolsFormatter,
    clear_context_keys,
    set_context_keys,
)
from django.conf import settings

from skymarshal_api.timing import instrumentation_timed


class JsonFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with the logger's name and UTC RFC 3339 timestamps."""

    def __init__(self, *, service: str = "skymarshal-api") -> None:
        super().__init__(
            utc=True,
            use_rfc3339=True,
            log_record_order=["timestamp", "level", "name", "location", "message"],
            name="%(name)s",
            service=service,
        )


class InstrumentedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that adds the time it spends to the request's ``instrumentation``
    span (Server-Timing), so the cost of logging is measured where it is paid."""

    def emit(self, record: logging.LogRecord) -> None:
        with instrumentation_timed():
            super().emit(record)


def log_keys_bind(**keys: str | None) -> None:
    """Add correlation keys to every line this request (context) logs from now on."""
    present = {name: value for name, value in keys.items() if value}
    if present:
        set_context_keys(**present)  # type: ignore[arg-type]


def log_keys_clear() -> None:
    clear_context_keys()


def prompt_fingerprint(prompt: str) -> dict[str, Any]:
    """What a log line may say about a prompt: its length and SHA-256 (hex), and its text
    only when LOG_PROMPTS is on (a local debugging aid; production refuses it)."""
    fingerprint: dict[str, Any] = {
        "prompt_length": len(prompt),
        "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
    }
    if settings.LOG_PROMPTS:
        fingerprint["prompt"] = prompt
    return fingerprint
