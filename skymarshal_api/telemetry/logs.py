"""JSON log lines and the request's correlation keys.

Every line is one JSON object: ``timestamp`` (UTC, RFC 3339, milliseconds), ``level``,
``name`` (the logger), ``location`` (function:line), ``message``, ``service``, then the
correlation keys of the request being served (request_id, trace_id — the W3C trace id of
the request's trace, see ``skymarshal_api.telemetry.trace_context`` —, session_id once known,
principal once authenticated, and on Lambda apigw_request_id and lambda_request_id; a
background run's lines carry its request_id and trace_id), then the line's
own fields (``extra=``); an error's ``exception`` (traceback) and ``exception_name``; on
Lambda the ``xray_trace_id`` of the invocation. The shape is that of aws-lambda-powertools'
``LambdaPowertoolsFormatter`` (less its structured ``stack_trace``), so its CloudWatch Logs
Insights queries work unchanged; the formatter is this module's own because it writes a
request line in 13 µs against powertools' 30 µs, and an invocation writes three lines
(``make bench`` ``instrumentation``).

The keys live in a context variable, so every logger's lines carry them, Django's and
botocore's included, and concurrent requests in one process (gunicorn threads) never see
each other's.

A prompt is never logged: ``prompt_fingerprint`` gives its length and an HMAC keyed by a key
derived from SECRET_KEY (``prompt_hmac``) instead, and
its text only where LOG_PROMPTS allows it (never in production). Nothing here logs headers,
so no Authorization value or session token can reach a line.
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

from skymarshal_api.telemetry.timing import instrumentation_timed

_keys: ContextVar[dict[str, str] | None] = ContextVar("skymarshal_log_keys", default=None)

# A LogRecord's own attributes; any other attribute came from ``extra=`` and is logged.
_RECORD_ATTRIBUTES = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
        "message",
        "asctime",
        "taskName",
    }
)
# Fields the formatter writes itself: an ``extra=`` field of the same name is refused by
# logging (``message``, ``asctime``) or would overwrite them.
_LINE_FIELDS = frozenset({"timestamp", "level", "location", "service"})
_XRAY_TRACE_ENV = "_X_AMZN_TRACE_ID"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, *, service: str = "skymarshal-api") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        message = record.msg if isinstance(record.msg, dict) else record.getMessage()
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "name": record.name,
            "location": f"{record.funcName}:{record.lineno}",
            "message": message,
            "service": self.service,
            **(_keys.get() or {}),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in _LINE_FIELDS:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
            line["exception_name"] = record.exc_info[0].__name__
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        trace = os.environ.get(_XRAY_TRACE_ENV)
        if trace:
            root = trace.split(";")[0].replace("Root=", "")
            line["xray_trace_id"] = root
            if "trace_id" not in line and root.startswith("1-"):
                # Outside a request on Lambda: the invocation's trace, as a W3C id.
                line["trace_id"] = root[2:].replace("-", "")
        return json.dumps(line, default=str, separators=(",", ":"), ensure_ascii=False)


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
        _keys.set({**(_keys.get() or {}), **present})


def log_keys_clear() -> None:
    _keys.set(None)


PROMPT_HMAC_SALT = "skymarshal_api.telemetry.logs.prompt_hmac"


def prompt_hmac(prompt: str) -> str:
    """HMAC-SHA256 (hex) of the prompt's UTF-8, keyed by a key derived from SECRET_KEY
    (Django's salted_hmac: SHA-256 of this salt and the secret key). Every process of one
    deployment shares the secret key, so operators can still tell that two lines are about
    the same prompt; whoever reads only the logs cannot test guesses of a short,
    structured prompt (flight, delay, cause) against it, as an unkeyed hash would allow."""
    data = prompt.encode("utf-8", "surrogatepass")
    return salted_hmac(PROMPT_HMAC_SALT, data, algorithm="sha256").hexdigest()


def prompt_fingerprint(prompt: str) -> dict[str, Any]:
    """What a log line may say about a prompt: its length and keyed fingerprint
    (``prompt_hmac``), and its text only when LOG_PROMPTS is on (a local debugging aid;
    production refuses it)."""
    fingerprint: dict[str, Any] = {
        "prompt_length": len(prompt),
        "prompt_hmac": prompt_hmac(prompt),
    }
    if settings.LOG_PROMPTS:
        fingerprint["prompt"] = prompt
    return fingerprint
