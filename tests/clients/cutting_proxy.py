"""A TCP forwarder on 127.0.0.1 that cuts a connection in the middle of an event stream:
the first response that carries ``cut_after`` SSE events (blank-line-ended blocks after the
headers) is cut right there, both sockets reset, as a dropped network path would."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field


@dataclass
class CuttingProxy:
    upstream_port: int
    cut_after: int
    listener: socket.socket = field(init=False)
    cuts: int = 0
    connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self.connections += 1
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream, False, client, upstream)
            self._spawn(self._pump, upstream, client, True, client, upstream)

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        is_response: bool,
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        seen = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                if is_response and b"text/event-stream" in seen + data:
                    seen += data
                    body = seen.split(b"\r\n\r\n", 1)[-1]
                    with self._lock:
                        cut = self.cuts == 0 and body.count(b"\n\n") >= self.cut_after
                        if cut:
                            self.cuts += 1
                    if cut:
                        # Forward up to the end of event `cut_after`, then reset both sides.
                        end = _nth_end(seen, self.cut_after)
                        already = len(seen) - len(data)
                        target.sendall(seen[already:end] if end > already else b"")
                        for sock in (client, upstream):
                            with contextlib.suppress(OSError):
                                sock.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                            # shutdown ends the other thread's recv at once (close alone
                            # would wait for it); the client sees the body end mid-chunk.
                            with contextlib.suppress(OSError):
                                sock.shutdown(socket.SHUT_RDWR)
                        return
                elif is_response:
                    seen += data
                target.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in self._threads:
            thread.join(timeout=2)


def _nth_end(response: bytes, n: int) -> int:
    """The offset just past the ``n``-th blank-line-ended block of the body."""
    head, _, body = response.partition(b"\r\n\r\n")
    offset = len(head) + 4
    for _ in range(n):
        index = body.find(b"\n\n")
        offset += index + 2
        body = body[index + 2 :]
    return offset
