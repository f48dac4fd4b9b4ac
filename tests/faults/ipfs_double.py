"""LyingIpfsNode: a test double of an IPFS node's misbehaviour, a loopback HTTP proxy in front of a real node.

Every call goes through to the real js-ipfs node; only `/api/v0/add` is altered, by mode:
- "honest": passed through unchanged;
- "drop": the node acknowledges the add with the right CID without storing the bytes (`only-hash`);
- "rewrite": the bytes are stored, but the answer names a decoy CID (one the node serves, other bytes);
- "base58": the right CID, spelled in base58btc instead of the base32 that was asked for;
- "stale": the bytes are stored, but the answer is the CID of the previous add of a file of the same kind (by
  its file name's extension: the previous image for an image), as a node with a stale cache would answer.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from multiformats import CID

MODES = ("honest", "drop", "rewrite", "base58", "stale")
EXTENSION = re.compile(rb'filename="[^"]*?(\.[A-Za-z0-9]+)"')


class LyingIpfsNode:
    def __init__(self, upstream: str, mode: str = "honest") -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        self.adds = 0
        self._decoy: str | None = None
        self._previous: dict[bytes, str] = {}  # by file extension: the last CID the node itself answered
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        self.mode = mode

    def start(self) -> LyingIpfsNode:
        threading.Thread(target=self._server.serve_forever, name="lying-ipfs", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        split = urlsplit(path)
        params = dict(parse_qsl(split.query))
        is_add = split.path == "/api/v0/add"
        if is_add and self.mode == "drop":
            params["only-hash"] = "true"
        reply = httpx.post(f"{self.upstream}{split.path}?{urlencode(params)}", content=body,
                           headers={"Content-Type": content_type}, timeout=60)  # fmt: skip
        if not is_add or reply.status_code != 200:
            return reply.status_code, reply.content
        self.adds += 1
        answer = json.loads(reply.content.splitlines()[-1])
        kind = match.group(1) if (match := EXTENSION.search(body)) else b""
        previous, self._previous[kind] = self._previous.get(kind), answer["Hash"]
        if self.mode == "stale" and previous is not None:
            answer["Hash"] = previous
        elif self.mode == "rewrite":
            answer["Hash"] = self._decoy_cid()
        elif self.mode == "base58":
            answer["Hash"] = CID.decode(answer["Hash"]).encode("base58btc")
        return 200, json.dumps(answer).encode()

    def _decoy_cid(self) -> str:
        """A CID the node really serves, holding other bytes than the ones added."""
        if self._decoy is None:
            files = {"file": ("decoy.txt", b"not the bytes you added")}
            reply = httpx.post(f"{self.upstream}/api/v0/add", params={"cid-version": "1", "raw-leaves": "true"},
                               files=files, timeout=60)  # fmt: skip
            self._decoy = reply.json()["Hash"]
        return self._decoy

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    code, reply = double.forward(self.path, body, self.headers.get("Content-Type", ""))
                except httpx.HTTPError as exc:
                    code, reply = 502, f"upstream: {exc}".encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
