"""The IPFS node's Kubo-compatible RPC API (`/api/v0`), over httpx with timeouts.

Always CIDv1, raw leaves, sha2-256, base32, pinned: a single-block file's CID is then the raw CID of its
bytes, which the oracle checks before it puts a digest on-chain.
"""

from __future__ import annotations

import httpx

ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "cid-base": "base32",
    "pin": "true",
}


class IpfsError(RuntimeError):
    """The IPFS node did not answer, or answered with an error."""


class IpfsClient:
    def __init__(self, api_url: str, timeout: float = 30.0) -> None:
        self._client = httpx.Client(base_url=api_url.rstrip("/") + "/api/v0", timeout=timeout)

    def _post(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._client.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise IpfsError(f"IPFS {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise IpfsError(f"IPFS {path}: HTTP {response.status_code}: {response.text[:200]}")
        return response

    def version(self) -> str:
        return self._post("/version").json()["Version"]

    def add(self, data: bytes, filename: str, only_hash: bool = False) -> str:
        """Adds and pins `data`; returns its CID. With `only_hash`, stores nothing: the CID `data` would have."""
        params = {**ADD_PARAMS, "only-hash": "true", "pin": "false"} if only_hash else ADD_PARAMS
        reply = self._post("/add", params=params, files={"file": (filename, data)})
        return reply.json()["Hash"]

    def cat(self, cid: str, timeout_s: int = 10) -> bytes:
        return self._post("/cat", params={"arg": cid, "timeout": f"{timeout_s}s"}).content

    def close(self) -> None:
        self._client.close()
