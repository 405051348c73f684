"""A background run's stored events, and following them live (GET …/events)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

from invocations.expire import run_expire
from sessions.run_selectors import StoredEvent, run_events_after, run_find, run_get

TERMINAL_EVENTS = frozenset({"complete", "error"})


@dataclass(frozen=True)
class FollowPaused:
    """Following ended before the run did, after REQUEST_HOLD_SECONDS (behind API Gateway,
    which gives up on a request after 29 s): resume after event ``after``."""

    after: int


def invocation_events(
    *, request_id: str, principal_arn: str, after: int, follow: bool
) -> Iterator[StoredEvent | FollowPaused | None]:
    """The caller's background run's stored events numbered above ``after``, in order;
    with ``follow``, then its live events as they are stored, until its last one (a
    ``None`` after each SSE_HEARTBEAT_SECONDS of silence). Behind API Gateway
    (RESPONSE_MODE=buffered) following stops after REQUEST_HOLD_SECONDS with a
    FollowPaused. Ownership is checked before the first event. Raises
    InvocationNotFound, StorageUnavailable."""
    run_get(request_id=request_id, principal_arn=principal_arn)
    hold_until = (
        time.monotonic() + settings.REQUEST_HOLD_SECONDS
        if settings.RESPONSE_MODE == "buffered"
        else None
    )
    return _events_follow(request_id, after, follow, hold_until)


def _events_follow(
    request_id: str, after: int, follow: bool, hold_until: float | None
) -> Iterator[StoredEvent | FollowPaused | None]:
    quiet_since = time.monotonic()
    while True:
        events = run_events_after(request_id, after)
        for event in events:
            yield event
            after = event.number
            if event.event in TERMINAL_EVENTS:
                return
        if events:
            quiet_since = time.monotonic()
            continue  # there may be more than one page
        if not follow:
            return
        run = run_find(request_id)
        if run is None:
            return
        if run.overdue:
            run_expire(run)
            continue
        if not run.active:
            # The last event is stored with the outcome: read once more, then stop.
            for event in run_events_after(request_id, after):
                yield event
            return
        if hold_until is not None and time.monotonic() + settings.RUN_POLL_SECONDS >= hold_until:
            yield FollowPaused(after)
            return
        if hold_until is None and time.monotonic() - quiet_since >= settings.SSE_HEARTBEAT_SECONDS:
            # (A buffered response gets no heartbeat: it would only lengthen the body.)
            quiet_since = time.monotonic()
            yield None
        time.sleep(settings.RUN_POLL_SECONDS)
