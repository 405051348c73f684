"""Where a request's time went, per component, reported in the ``Server-Timing`` header
(``persistence`` = DynamoDB, ``runtime`` = the SkyMarshal runtime, ``instrumentation`` =
logs, metrics and traces, ``ratelimit`` = the caller's rate-limit count where it ran beside
a read rather than before it (skymarshal_api/views.py), ``total``): a caller, a benchmark or
a browser's devtools can tell the API's own cost from its dependencies'."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_spans: ContextVar[dict[str, float] | None] = ContextVar("skymarshal_timing", default=None)
_observing: ContextVar[bool] = ContextVar("skymarshal_observing", default=False)


def timing_start() -> None:
    _spans.set({})


@contextmanager
def timed(component: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        spans = _spans.get()
        if spans is not None:
            spans[component] = spans.get(component, 0.0) + (time.perf_counter() - started) * 1000


@contextmanager
def instrumentation_timed() -> Iterator[None]:
    """Time the block (or, as ``@instrumentation_timed()``, the function) as
    ``instrumentation`` (logs, metrics, traces), counted once: a block inside another (a log
    line the request's closing step writes) is part of the outer."""
    if _observing.get():
        yield
        return
    token = _observing.set(True)
    started = time.perf_counter()
    try:
        yield
    finally:
        _observing.reset(token)
        timing_add("instrumentation", (time.perf_counter() - started) * 1000)


def timing_add(component: str, duration_ms: float) -> None:
    """Add ``duration_ms`` to ``component`` of the current request (nothing outside one)."""
    spans = _spans.get()
    if spans is not None:
        spans[component] = spans.get(component, 0.0) + duration_ms


def timing_spans() -> dict[str, float]:
    """The current request's spans so far (a copy)."""
    return dict(_spans.get() or {})


def timing_stop() -> None:
    _spans.set(None)


def server_timing_header(total_ms: float) -> str:
    spans = dict(_spans.get() or {})
    spans["total"] = total_ms
    return ", ".join(f"{name};dur={duration:.2f}" for name, duration in spans.items())
