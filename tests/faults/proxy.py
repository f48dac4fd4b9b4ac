"""A loopback TCP proxy in front of anvil that a test can cut, restore, or make misbehave.

Modes: "pass" forwards bytes; "down" closes the listener and every connection (connection refused);
"error" answers every HTTP request with 503; "hang" accepts and never answers (the client times out);
"lag" answers a share of the HTTP requests from a `LaggingView` (a test double for a load balancer's stale
backend) and forwards the others.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
from collections import Counter
from typing import BinaryIO

import httpx

LATEST_TAGS = ("latest", "pending", "safe", "finalized", None)
BLOCK_ARGUMENT = {"eth_call": 1, "eth_estimateGas": 1, "eth_getBalance": 1, "eth_getCode": 1,
                  "eth_getTransactionCount": 1, "eth_getStorageAt": 2}  # fmt: skip


class LaggingView:
    """Test double for a node `lag` blocks behind, answered from the real node's own history: its head is the
    real head less `lag`; blocks, receipts and transactions above it are unknown (null); logs are cut at it;
    eth_call, gas estimates, balances and nonces are evaluated at it (anvil keeps every block's state). One
    HTTP request (a JSON-RPC batch included) is answered from one view, as a load balancer routes it."""

    def __init__(self, upstream_url: str, lag: int) -> None:
        self.lag = lag
        self._client = httpx.Client(base_url=upstream_url, timeout=10)

    def answer(self, payload: dict | list) -> dict | list:
        head = max(0, int(self._forward("eth_blockNumber", []), 16) - self.lag)
        if isinstance(payload, list):
            return [self._one(call, head) for call in payload]
        return self._one(payload, head)

    def _one(self, call: dict, head: int) -> dict:
        try:
            result = self._rewrite(call["method"], list(call.get("params", [])), head)
        except _RpcError as exc:
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": exc.error}
        return {"jsonrpc": "2.0", "id": call.get("id"), "result": result}

    def _rewrite(self, method: str, params: list, head: int) -> object:
        if method == "eth_blockNumber":
            return hex(head)
        if method == "eth_getBlockByNumber":
            number = _block_number(params[0], head)
            return None if number > head else self._forward(method, [hex(number), *params[1:]])
        if method == "eth_getLogs":
            query = dict(params[0])
            first = _block_number(query.get("fromBlock"), head)
            last = min(_block_number(query.get("toBlock"), head), head)
            if first > last:
                return []
            return self._forward(method, [{**query, "fromBlock": hex(first), "toBlock": hex(last)}])
        if method in BLOCK_ARGUMENT:
            at = BLOCK_ARGUMENT[method]
            params = params[:at] + [None] * (at - len(params)) if len(params) <= at else params
            params[at] = hex(min(_block_number(params[at], head), head))
            return self._forward(method, params)
        result = self._forward(method, params)
        if method in ("eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getBlockByHash"):
            number = (result or {}).get("blockNumber") or (result or {}).get("number")
            return None if number is not None and int(number, 16) > head else result
        return result

    def _forward(self, method: str, params: list) -> object:
        reply = self._client.post("", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in reply:
            raise _RpcError(reply["error"])
        return reply["result"]


class _RpcError(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(str(error))
        self.error = error


def _block_number(tag: object, head: int) -> int:
    return head if tag in LATEST_TAGS else (0 if tag == "earliest" else int(str(tag), 16))


class RpcProxy:
    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.mode = "pass"
        self.lagging: LaggingView | None = None
        self.lag_share = 0.0
        self.answered: Counter = Counter()  # "lagging" / "current" HTTP requests in lag mode
        self.lagging_methods: Counter = Counter()
        self._random = random.Random(0)
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

    def lag(self, blocks: int, share: float, seed: int = 0) -> None:
        """Answers `share` of the HTTP requests (chosen by a seeded generator) from a view `blocks` behind."""
        self.lagging = LaggingView(f"http://127.0.0.1:{self.upstream_port}", blocks)
        self.lag_share = share
        self._random = random.Random(seed)
        self.set_mode("lag")

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
        if self.mode == "lag":
            self._serve_http(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._connections.append(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def _serve_http(self, client: socket.socket) -> None:
        """HTTP/1.1 keep-alive, one JSON-RPC request (or batch) at a time, each from the lagging view or not."""
        assert self.lagging is not None
        current = httpx.Client(base_url=f"http://127.0.0.1:{self.upstream_port}", timeout=10)
        reader = client.makefile("rb")
        try:
            while (body := _read_request(reader)) is not None:
                payload = json.loads(body)
                with self._lock:
                    stale = self._random.random() < self.lag_share
                    self.answered["lagging" if stale else "current"] += 1
                    for call in payload if isinstance(payload, list) else [payload]:
                        self.lagging_methods[call["method"]] += stale
                if stale:
                    answer = json.dumps(self.lagging.answer(payload)).encode()
                else:
                    answer = current.post("", content=body, headers={"Content-Type": "application/json"}).content
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(answer)}\r\n\r\n"
                client.sendall(head.encode() + answer)
        except (OSError, ValueError, httpx.HTTPError):
            pass
        finally:
            current.close()
            with contextlib.suppress(OSError):
                client.close()


def _read_request(reader: BinaryIO) -> bytes | None:
    """The body of the next HTTP request on a keep-alive connection, or None when the client closed it."""
    length = None
    line = reader.readline()
    if not line:
        return None
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return reader.read(length or 0)


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
