"""A loopback TCP proxy that can lose an answer: it forwards a call to the server, lets the server
apply it, then breaks the connection before the answer reaches the client.

gRPC speaks HTTP/2. The proxy passes the client's bytes through untouched and reads the server's as
HTTP/2 frames (9-byte header: 24-bit length, type, flags, 31-bit stream id). A server answers a
call with a HEADERS frame (type 1) on the call's stream only once its handler has returned, i.e.
once a write has committed. Armed with :meth:`DroppingProxy.drop_next_answer`, the proxy closes
both sockets at the next such frame instead of forwarding it: the client sees the connection
break (UNAVAILABLE) for a write that was applied.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_HEADERS = 0x1
_FRAME_HEADER = 9


class DroppingProxy:
    """Listens on 127.0.0.1 (``target``) and forwards every connection to ``upstream`` (host:port)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_next_answer(self) -> None:
        """Breaks the connection that carries the next answer, instead of forwarding it."""
        self._armed.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client), daemon=True).start()

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass
        self._close(client, server)

    def _to_client(self, server: socket.socket, client: socket.socket) -> None:
        pending = b""
        try:
            while data := server.recv(65536):
                pending += data
                while len(pending) >= _FRAME_HEADER:
                    size = int.from_bytes(pending[:3], "big") + _FRAME_HEADER
                    if len(pending) < size:
                        break
                    frame, pending = pending[:size], pending[size:]
                    stream = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF
                    if frame[3] == _HEADERS and stream != 0 and self._armed.is_set():
                        self._armed.clear()
                        self.dropped += 1
                        self._close(server, client)
                        return
                    client.sendall(frame)
        except OSError:
            pass
        self._close(server, client)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            self._close(*self._sockets)

    def __enter__(self) -> DroppingProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
