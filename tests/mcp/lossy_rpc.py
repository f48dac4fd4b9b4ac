"""A loopback JSON-RPC proxy in front of anvil that loses the node's answer to `eth_sendRawTransaction`: the node
takes the transaction, and the client's connection is closed without a reply (a flaky RPC provider)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class LossyRpc(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, lose: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = httpx.Client(base_url=upstream, timeout=30)
        self.to_lose = lose  # how many eth_sendRawTransaction answers still to lose
        self.lost: list[str] = []  # the hashes the node returned in the answers that were lost

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LossyRpc

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = self.server.upstream.post("/", content=body, headers={"Content-Type": "application/json"})
        call = json.loads(body)
        if isinstance(call, dict) and call.get("method") == "eth_sendRawTransaction" and self.server.to_lose > 0:
            self.server.to_lose -= 1
            self.server.lost.append(answer.json().get("result"))
            self.close_connection = True  # the node has it; the client never hears so
            return
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def lossy_rpc(upstream: str, lose: int = 1) -> Iterator[LossyRpc]:
    proxy = LossyRpc(upstream, lose)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
