"""A loopback JSON-RPC proxy in front of anvil that loses the node's answer to `eth_sendRawTransaction`: the node
takes the transaction, and the client's connection is closed without a reply (a flaky RPC provider). While
`hide_lost` is set, it also answers `eth_getTransactionByHash` for those transactions with null, as a node behind a
load balancer that has not seen them yet."""

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
        self.hide_lost = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LossyRpc

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        call = json.loads(body)
        if self._hidden(call):
            self._reply(200, json.dumps({"jsonrpc": "2.0", "id": call.get("id"), "result": None}).encode())
            return
        answer = self.server.upstream.post("/", content=body, headers={"Content-Type": "application/json"})
        if isinstance(call, dict) and call.get("method") == "eth_sendRawTransaction" and self.server.to_lose > 0:
            self.server.to_lose -= 1
            self.server.lost.append(answer.json().get("result"))
            self.close_connection = True  # the node has it; the client never hears so
            return
        self._reply(answer.status_code, answer.content)

    def _hidden(self, call: object) -> bool:
        return (
            self.server.hide_lost
            and isinstance(call, dict)
            and call.get("method") == "eth_getTransactionByHash"
            and str(call.get("params", [""])[0]).lower() in {str(h).lower() for h in self.server.lost}
        )

    def _reply(self, status: int, content: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

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
