"""A UDP socket on 127.0.0.1 standing in for the X-Ray daemon, and the segment documents it
receives (each datagram: the protocol header line, then one JSON document)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def xray_daemon() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        yield sock


def daemon_address(daemon: socket.socket) -> str:
    """Its address as AWS_XRAY_DAEMON_ADDRESS gives it."""
    return f"127.0.0.1:{daemon.getsockname()[1]}"


def document_receive(daemon: socket.socket) -> dict[str, Any]:
    """The next document (TimeoutError when none comes within the socket's timeout)."""
    datagram = daemon.recv(65536)
    assert len(datagram) <= 65507  # what one UDP datagram carries
    header, _, document = datagram.decode().partition("\n")
    assert json.loads(header) == {"format": "json", "version": 1}
    received: dict[str, Any] = json.loads(document)
    return received


def documents_receive(
    daemon: socket.socket,
    within: float,
    until: Callable[[dict[str, Any]], bool] = lambda _: False,
) -> list[dict[str, Any]]:
    """Documents received within ``within`` seconds, or until one satisfies ``until``."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            received.append(document_receive(daemon))
        except TimeoutError:
            continue
        if until(received[-1]):
            break
    return received
