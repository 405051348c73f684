"""What a run looks like to its caller: the body of GET /api/v1/invocations/{id}, which a
run's webhooks carry too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.urls import reverse

from sessions.run_selectors import RunRecord

# The API's own routes: reversing against them never imports the schema's views, which the
# root URLconf adds (skymarshal_api/urls.py).
API_URLCONF = "skymarshal_api.api_urls"


def iso_time(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _link(name: str, key: str) -> str:
    """The path of the API route ``name`` for ``key``."""
    return reverse(name, urlconf=API_URLCONF, args=[key])


def invocation_representation(run: RunRecord) -> dict[str, Any]:
    this = _link("invocation", run.request_id)
    return {
        "request_id": run.request_id,
        "session_id": run.session_id,
        "status": run.status,
        "created_at": iso_time(run.created_at),
        "started_at": iso_time(run.started_at),
        "finished_at": iso_time(run.finished_at),
        "queued_behind": run.after if run.status == "queued" else None,
        "cancel_requested": run.cancel_requested,
        "result": run.response if run.status == "succeeded" else None,
        "error": run.error if run.status not in ("queued", "running", "succeeded") else None,
        "links": {
            "self": this,
            "events": _link("invocation-events", run.request_id),
            "wait": _link("invocation-wait", run.request_id),
            "session": _link("session-history", run.session_id),
            "deliveries": _link("invocation-deliveries", run.request_id),
        },
    }
