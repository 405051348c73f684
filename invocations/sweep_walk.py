"""The walk both sweeps make over notes filed by minute (run deadlines, webhook attempts
due): from the cursor (or, on a table's first sweep, an hour back) to the current minute,
one Query per minute, at most ``max_minutes`` per sweep. The cursor moves past a minute
only once every note in it, and in every minute before it, is settled, so a note that
could not be dealt with (``settle`` answered False, or raised an ApplicationError, which is
logged and the note's run counted as failed) is read again by the next sweep. The walk
reads the cursor first and writes it once at the end, when it moved."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sessions.models import SWEEP_BUCKET_MS
from skymarshal_api.web.errors import ApplicationError


class _Note(Protocol):
    @property
    def request_id(self) -> str: ...


@dataclass(frozen=True)
class Walk:
    minutes: int  # minutes read
    advance_to: int  # where the next sweep starts
    out_of_time: bool  # stopped by the time budget, notes left for the next sweep
    failed: list[str] = field(default_factory=list)  # request ids of notes that raised


def minutes_walk[Note: _Note](
    *,
    now_ms: int,
    cursor_get: Callable[[], int | None],
    cursor_set: Callable[[int], None],
    first_minutes: int,
    max_minutes: int,
    notes_in: Callable[[int], Iterable[Note]],
    due: Callable[[Note], bool],
    settle: Callable[[Note], bool],
    log: logging.Logger,
    failure: str,
    stop_at: float | None = None,
) -> Walk:
    """Settle every due note of the minutes from ``cursor`` to now. ``settle`` answers
    whether the note is done with (False: read it again next sweep); a note not ``due``
    yet (in the current minute) is left for the next sweep, and so is everything once
    ``time.monotonic()`` passes ``stop_at``. An ApplicationError of ``settle`` is logged
    to ``log`` as ``failure`` (a format of the note's request id and the error's message)
    and the note is read again next sweep. Raises what ``cursor_get``, ``notes_in`` and
    ``cursor_set`` raise."""
    cursor = cursor_get()
    current = now_ms // SWEEP_BUCKET_MS
    start = current - first_minutes if cursor is None else cursor
    end = min(current, start + max_minutes)
    advance_to = start
    minutes = 0
    out_of_time = False
    failed: list[str] = []
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
            try:
                done = settle(note)
            except ApplicationError as exc:
                log.warning(failure, note.request_id, exc.message)
                failed.append(note.request_id)
                done = False
            if not done:
                settled = False
        if settled and advance_to == minute and minute < current:
            advance_to = minute + 1
        if out_of_time:
            break
    if advance_to != cursor:
        cursor_set(advance_to)
    return Walk(minutes=minutes, advance_to=advance_to, out_of_time=out_of_time, failed=failed)
