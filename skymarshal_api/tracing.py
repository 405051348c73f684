"""AWS X-Ray traces (aws-xray-sdk): a segment per request, with subsegments for the runtime
WebSocket call and for each DynamoDB call.

On Lambda, Lambda owns the invocation's segment: the request is a subsegment of it (named
``## <METHOD> <route>``). Elsewhere (gunicorn with an X-Ray daemon at
AWS_XRAY_DAEMON_ADDRESS) the request is a segment of its own, every request sampled.
Segments go to the daemon over UDP, which never blocks or fails when no daemon listens.

TRACING_ENABLED is off outside Lambda by default; off, nothing here imports the SDK or does
anything but return. Subsegments are only opened in the thread that began the request's
segment (X-Ray's context is per thread): a health check's thread simply has none.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings

from skymarshal_api.timing import instrumentation_timed

_LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"


@cache
def _recorder() -> Any:
    """The SDK's recorder, configured once per process (imported only when tracing)."""
    from aws_xray_sdk.core import xray_recorder

    options: dict[str, Any] = {
        "service": settings.TRACING_SERVICE,
        "context_missing": "IGNORE_ERROR",
        "plugins": (),
    }
    if not _on_lambda():
        # No centralized sampling: its poller would call the daemon every few minutes
        # and log an error each time no daemon answers. Every request is traced.
        options["sampling"] = False
    xray_recorder.configure(**options)
    return xray_recorder


def _on_lambda() -> bool:
    return bool(os.environ.get(_LAMBDA_TASK_ROOT))


@dataclass
class RequestTrace:
    """The request's segment (or, on Lambda, subsegment) and the thread that owns it."""

    entity: Any
    thread_id: int
    on_lambda: bool
    annotations: dict[str, str] = field(default_factory=dict)


def trace_request_begin(*, method: str, path: str) -> RequestTrace | None:
    """Open the request's segment; None when tracing is off."""
    if not settings.TRACING_ENABLED:
        return None
    recorder = _recorder()
    on_lambda = _on_lambda()
    if on_lambda:
        entity = recorder.begin_subsegment(f"## {method} {path}")
    else:
        entity = recorder.begin_segment(settings.TRACING_SERVICE)
    if entity is None:
        return None
    entity.put_http_meta("method", method)
    entity.put_http_meta("url", path)
    return RequestTrace(entity=entity, thread_id=threading.get_ident(), on_lambda=on_lambda)


def trace_request_end(
    trace: RequestTrace | None,
    *,
    status: int,
    annotations: dict[str, str],
    error: bool,
) -> None:
    if trace is None or threading.get_ident() != trace.thread_id:
        return
    entity = trace.entity
    entity.put_http_meta("status", status)
    for key, value in annotations.items():
        entity.put_annotation(key, value)
    if status >= 500 or error:
        entity.add_fault_flag() if status >= 500 else entity.add_error_flag()
    recorder = _recorder()
    if trace.on_lambda:
        recorder.end_subsegment()
    else:
        recorder.end_segment()


class Subsegment:
    """An open subsegment; ``end`` closes it (once)."""

    def __init__(self, entity: Any) -> None:
        self._entity = entity

    def annotate(self, **annotations: str | int | float | bool) -> None:
        if self._entity is not None:
            for key, value in annotations.items():
                self._entity.put_annotation(key, value)

    def end(self, *, failed: bool = False, **metadata: Any) -> None:
        entity, self._entity = self._entity, None
        if entity is None:
            return
        with instrumentation_timed():
            for key, value in metadata.items():
                entity.put_metadata(key, value)
            if failed:
                entity.add_fault_flag()
            _recorder().end_subsegment()


_NO_SUBSEGMENT = Subsegment(None)


def trace_subsegment_begin(
    trace: RequestTrace | None, name: str, *, namespace: str = "remote"
) -> Subsegment:
    """A subsegment of the request's trace (a no-op one outside its thread or when off)."""
    if trace is None or threading.get_ident() != trace.thread_id:
        return _NO_SUBSEGMENT
    with instrumentation_timed():
        entity = _recorder().begin_subsegment(name, namespace)
    return Subsegment(entity) if entity is not None else _NO_SUBSEGMENT
