"""The service's health: is the runtime there, is the sessions table usable.

Neither check invokes the runtime. Results are reused for HEALTH_CACHE_SECONDS so that a
burst of health probes costs one round of checks, and both checks run at once so that the
answer takes as long as the slower one.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from invocations.runtime_status import runtime_status_get
from sessions.selectors import sessions_table_status
from skymarshal_api.errors import StorageUnavailable, utc_now_iso

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


class _HealthCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: HealthReport | None = None
        self._checked_at = 0.0
        self._executor: ThreadPoolExecutor | None = None

    def get(self) -> HealthReport:
        with self._lock:
            age = time.monotonic() - self._checked_at
            if self._report is None or age >= settings.HEALTH_CACHE_SECONDS:
                self._report = self._run_checks()
                self._checked_at = time.monotonic()
            return self._report

    def clear(self) -> None:
        with self._lock:
            self._report = None

    def _run_checks(self) -> HealthReport:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(len(_CHECKS), thread_name_prefix="health")
        # Each check runs in the request's context: its log lines carry the request's keys.
        futures = {
            name: self._executor.submit(contextvars.copy_context().run, check)
            for name, check in _CHECKS.items()
        }
        checks = {name: future.result() for name, future in futures.items()}
        overall = max((check.status for check in checks.values()), key=_RANK.__getitem__)
        return HealthReport(overall, utc_now_iso(), checks)


_cache = _HealthCache()


def health_report_get() -> HealthReport:
    """The current health report, at most HEALTH_CACHE_SECONDS old."""
    return _cache.get()


def health_cache_clear() -> None:
    _cache.clear()
