"""Server-Sent Events framing (Property 12): ``id``, ``event`` and one ``data:`` line of
compact JSON per event, each event ended by a blank line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from invocations.services import StreamEvent


def sse_frames(events: Iterable[StreamEvent]) -> Iterator[bytes]:
    for number, event in enumerate(events, start=1):
        data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
        yield f"id: {number}\nevent: {event.event}\ndata: {data}\n\n".encode()
