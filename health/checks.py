"""The service's health: is the runtime there, is the sessions table usable.

Neither check invokes the runtime. Results are reused for HEALTH_CACHE_SECONDS so that a
burst of health probes costs one round of checks, and both checks run at once so that the
answer takes as long as the slower one, and never longer than HEALTH_CHECK_TIMEOUT_SECONDS
plus half a second: a check still running then is reported unhealthy.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from invocations.runtime_status import runtime_status_get
from sessions.selectors import sessions_table_status
from skymarshal_api.web.errors import StorageUnavailable, utc_now_iso

logger = logging.getLogger(__name__)

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
_RANK: dict[HealthStatus, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(frozen=True)
class CheckResult:
    status: HealthStatus
    latency_ms: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "latency_ms": self.latency_ms, "message": self.message}


@dataclass(frozen=True)
class HealthReport:
    status: HealthStatus
    timestamp: str
    checks: dict[str, CheckResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": settings.API_VERSION,
            "timestamp": self.timestamp,
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def _timed(probe: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    outcome = probe()
    return outcome, round((time.perf_counter() - started) * 1000, 1)


def _slow(status: HealthStatus, latency_ms: float) -> HealthStatus:
    if status == "healthy" and latency_ms > settings.HEALTH_DEGRADED_LATENCY_MS:
        return "degraded"
    return status


def agentcore_check() -> CheckResult:
    runtime, latency_ms = _timed(runtime_status_get)
    states: dict[str, HealthStatus] = {"up": "healthy", "busy": "degraded"}
    status = states.get(runtime.state, "unhealthy")
    return CheckResult(_slow(status, latency_ms), latency_ms, runtime.reason)


def dynamodb_check() -> CheckResult:
    def describe() -> str | StorageUnavailable:
        try:
            return sessions_table_status()
        except StorageUnavailable as exc:
            logger.warning("Sessions table check failed: %s", exc.message)
            return exc

    table_status, latency_ms = _timed(describe)
    if isinstance(table_status, StorageUnavailable):
        return CheckResult("unhealthy", latency_ms, "the sessions table is not reachable")
    status: HealthStatus = "healthy" if table_status == "ACTIVE" else "degraded"
    return CheckResult(_slow(status, latency_ms), latency_ms, f"table {table_status}")


_CHECKS = {"agentcore": agentcore_check, "dynamodb": dynamodb_check}


# What a check may take beyond HEALTH_CHECK_TIMEOUT_SECONDS before it is reported unanswered.
_CHECK_MARGIN_SECONDS = 0.5


def _unanswered(latency_ms: float) -> CheckResult:
    return CheckResult(
        "unhealthy",
        latency_ms,
        f"no answer within {settings.HEALTH_CHECK_TIMEOUT_SECONDS:g} s",
    )


class _Round:
    """One round of checks, started at once in their threads; ``report`` waits for them
    until the round's deadline (HEALTH_CHECK_TIMEOUT_SECONDS plus a margin) and reports a
    check still running then as unhealthy, whatever the dependency does."""

    def __init__(self, futures: dict[str, Future[CheckResult]]) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + settings.HEALTH_CHECK_TIMEOUT_SECONDS + _CHECK_MARGIN_SECONDS
        self._futures = futures

    @property
    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def report(self) -> HealthReport:
        checks: dict[str, CheckResult] = {}
        for name, future in self._futures.items():
            try:
                checks[name] = future.result(timeout=max(0.0, self.deadline - time.monotonic()))
            except FutureTimeout:
                latency_ms = round((time.monotonic() - self.started) * 1000, 1)
                logger.warning("Health check %s did not answer in time", name)
                checks[name] = _unanswered(latency_ms)
            except Exception:  # a check that raised: unhealthy, and logged, not a 500
                logger.exception("Health check %s failed", name)
                checks[name] = CheckResult("unhealthy", 0.0, "the check failed")
        overall = max((check.status for check in checks.values()), key=_RANK.__getitem__)
        return HealthReport(overall, utc_now_iso(), checks)


class _HealthCache:
    """The last report, reused for HEALTH_CACHE_SECONDS. The lock is held only to read and
    swap state, never while a check runs: callers that arrive during a round wait for that
    round (bounded by its deadline); a check still running from an earlier round is joined,
    not started again, so a dependency that never answers ties up one thread per check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: HealthReport | None = None
        self._checked_at = 0.0
        self._round: _Round | None = None
        self._running: dict[str, Future[CheckResult]] = {}

    def get(self) -> HealthReport:
        with self._lock:
            age = time.monotonic() - self._checked_at
            if self._report is not None and age < settings.HEALTH_CACHE_SECONDS:
                return self._report
            if self._round is None or self._round.over:
                self._round = self._round_start()
            current = self._round
        report = current.report()
        with self._lock:
            if self._round is current:
                self._report, self._checked_at, self._round = report, time.monotonic(), None
        return report

    def clear(self) -> None:
        with self._lock:
            self._report = None

    def _round_start(self) -> _Round:
        for name, check in _CHECKS.items():
            running = self._running.get(name)
            if running is None or running.done():
                self._running[name] = _check_start(name, check)
        return _Round(dict(self._running))


def _check_start(name: str, check: Callable[[], CheckResult]) -> Future[CheckResult]:
    """Run ``check`` in a thread of its own (no pool: a check that hangs holds up no other),
    in the request's context (its log lines and traces carry the request's keys)."""
    future: Future[CheckResult] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        if not future.set_running_or_notify_cancel():  # pragma: no cover - never cancelled
            return
        try:
            future.set_result(context.run(check))
        except BaseException as exc:  # the caller reports it
            future.set_exception(exc)

    threading.Thread(target=run, name=f"health-{name}", daemon=True).start()
    return future


_cache = _HealthCache()


def health_report_get() -> HealthReport:
    """The current health report, at most HEALTH_CACHE_SECONDS old."""
    return _cache.get()


def health_cache_clear() -> None:
    _cache.clear()
