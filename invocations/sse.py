"""Server-Sent Events framing (Property 12): ``id``, ``event`` and one ``data:`` line of
compact JSON per event, each event ended by a blank line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from invocations.services import StreamEvent


def sse_frames(events: Iterable[StreamEvent]) -> Iterator[bytes]:
    """The events as SSE; a heartbeat is a comment line, which clients ignore and which
    keeps proxies (and our own server) aware that the connection is alive."""
    number = 0
    for event in events:
        if event.event == "heartbeat":
            yield b": heartbeat\n\n"
            continue
        number += 1
        data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
        yield f"id: {number}\nevent: {event.event}\ndata: {data}\n\n".encode()
