"""Server-Sent Events framing (Property 12): ``id``, ``event`` and one ``data:`` line of
compact JSON per event, each event ended by a blank line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from invocations.events import FollowPaused
from invocations.outcome import StreamEvent
from invocations.stream import InvocationEvents
from sessions.run_selectors import StoredEvent


def sse_frames(events: Iterable[StreamEvent]) -> Iterator[bytes]:
    number = 0
    for event in events:
        if event.event == "heartbeat":
            # A comment: clients ignore it; proxies (and our server) see a live stream.
            yield b": heartbeat\n\n"
            continue
        number += 1
        data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
        yield f"id: {number}\nevent: {event.event}\ndata: {data}\n\n".encode()


class SseStream:
    """A run's events as SSE bytes. Django closes a streaming response's content when the
    server is done with it, however that happened; closing this closes the run."""

    def __init__(self, events: InvocationEvents) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        return sse_frames(self._events)

    def close(self) -> None:
        self._events.close()


def stored_event_frames(events: Iterable[StoredEvent | FollowPaused | None]) -> Iterator[bytes]:
    """A background run's stored events as SSE, each with its stored number as ``id`` (a
    reconnecting client sends it back as Last-Event-ID); a paused stream ends with a
    comment saying where to resume."""
    for event in events:
        if event is None:
            yield b": heartbeat\n\n"
            continue
        if isinstance(event, FollowPaused):
            note = f"paused; the run goes on: resume with Last-Event-ID: {event.after}"
            yield f": {note}\n\n".encode()
            continue
        yield f"id: {event.number}\nevent: {event.event}\ndata: {event.data}\n\n".encode()
