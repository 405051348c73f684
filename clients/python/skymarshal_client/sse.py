"""Server-Sent Events parsing (the WHATWG "event stream interpretation", the parts the API
uses): ``id``, ``event``, ``data`` fields, comments ignored, an event dispatched only at
its blank line, so an event cut off by a dropped connection is never handed out half-read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skymarshal_client.models import Event


def sse_events(lines: Iterable[str]) -> Iterator[Event]:
    event_id: str | None = None
    event = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or event:
                yield Event.parse(event_id, event, "\n".join(data))
            event_id, event, data = None, "", []
            continue
        if line.startswith(":"):
            continue  # a comment (the API's heartbeat)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
