"""A loopback TCP proxy in front of anvil that a test can cut, restore, or make misbehave.

Modes: "pass" forwards bytes; "down" closes the listener and every connection (connection refused);
"error" answers every HTTP request with 503; "hang" accepts and never answers (the client times out).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class RpcProxy:
    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.mode = "pass"
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self.mode = "pass"
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def set_mode(self, mode: str) -> None:
        """Switches between pass, error and hang; open connections are reset so the new mode applies at once."""
        self.mode = mode
        self._reset_connections()

    def stop(self) -> None:
        """Cuts the RPC: the port refuses connections and open ones are reset."""
        self.mode = "down"
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not on Linux.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self._reset_connections()

    def _reset_connections(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.mode == "error":
            client.recv(65536)
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        if self.mode == "hang":
            return  # keeps the socket open and silent until stop() or the client gives up
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._connections.append(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()
