"""The walk both sweeps make over notes filed by minute (run deadlines, webhook attempts
due): from the cursor (or, on a table's first sweep, an hour back) to the current minute,
one Query per minute, at most ``max_minutes`` per sweep. The cursor moves past a minute
only once every note in it, and in every minute before it, is settled, so a note that
could not be dealt with is read again by the next sweep. The walk reads the cursor first
and writes it once at the end, when it moved."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sessions.models import SWEEP_BUCKET_MS


@dataclass(frozen=True)
class Walk:
    minutes: int  # minutes read
    advance_to: int  # where the next sweep starts
    out_of_time: bool  # stopped by the time budget, notes left for the next sweep


def minutes_walk[Note](
    *,
    now_ms: int,
    cursor_get: Callable[[], int | None],
    cursor_set: Callable[[int], None],
    first_minutes: int,
    max_minutes: int,
    notes_in: Callable[[int], Iterable[Note]],
    due: Callable[[Note], bool],
    settle: Callable[[Note], bool],
    stop_at: float | None = None,
) -> Walk:
    """Settle every due note of the minutes from ``cursor`` to now. ``settle`` answers
    whether the note is done with (False: read it again next sweep); a note not ``due``
    yet (in the current minute) is left for the next sweep, and so is everything once
    ``time.monotonic()`` passes ``stop_at``. Raises what ``cursor_get``, ``notes_in`` and
    ``cursor_set`` raise."""
    cursor = cursor_get()
    current = now_ms // SWEEP_BUCKET_MS
    start = current - first_minutes if cursor is None else cursor
    end = min(current, start + max_minutes)
    advance_to = start
    minutes = 0
    out_of_time = False
    for minute in range(start, end + 1):
        minutes += 1
        settled = True
        for note in notes_in(minute):
            if not due(note):
                settled = False
                continue
            if stop_at is not None and time.monotonic() >= stop_at:
                out_of_time = True
                settled = False
                break
            if not settle(note):
                settled = False
        if settled and advance_to == minute and minute < current:
            advance_to = minute + 1
        if out_of_time:
            break
    if advance_to != cursor:
        cursor_set(advance_to)
    return Walk(minutes=minutes, advance_to=advance_to, out_of_time=out_of_time)
