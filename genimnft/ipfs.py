"""The IPFS node's Kubo-compatible RPC API (`/api/v0`), over httpx with timeouts.

Always CIDv1, raw leaves, sha2-256, base32, pinned: a single-block file's CID is then the raw CID of its
bytes, which the oracle checks before it puts a digest on-chain.
"""

from __future__ import annotations

import hashlib

import httpx
from multiformats import CID

ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "cid-base": "base32",
    "pin": "true",
}


class IpfsError(RuntimeError):
    """The IPFS node did not answer, or answered with an error."""


class IpfsMismatch(IpfsError):
    """The node answered, but what it holds is not what was given to it."""


def same_cid(a: str, b: str) -> bool:
    """CIDs compared as CIDs: a base58 and a base32 spelling of one CID are equal."""
    try:
        return CID.decode(a) == CID.decode(b)
    except (KeyError, ValueError):
        return False


def canonical_cid(cid: str) -> str:
    """The base32 spelling (the one `tokenURI` and the metadata use) of any spelling of a CIDv1."""
    try:
        return str(CID.decode(cid).set(base="base32"))
    except (KeyError, ValueError) as exc:
        raise IpfsMismatch(f"IPFS answered {cid!r}, which is not a CID") from exc


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

    def pin(self, data: bytes, filename: str, verify_timeout_s: int = 5, expected_cid: str | None = None) -> str:
        """Adds `data`, reads it back by the CID the node answered and returns that CID spelled in base32; with
        `expected_cid`, the answer must also be that CID, compared as a CID (a base58 spelling is the same)."""
        cid = canonical_cid(self.add(data, filename))
        if expected_cid is not None and not same_cid(cid, expected_cid):
            raise IpfsMismatch(f"IPFS answered CID {cid} for bytes whose CID is {expected_cid}")
        self.verify(cid, data, timeout_s=verify_timeout_s)
        return cid

    def verify(self, cid: str, expected: bytes, timeout_s: int = 5) -> None:
        """Reads `cid` back from the node and checks it is `expected`, byte for byte (by sha256): a node that
        acknowledged an add without storing it, or answered another CID, fails here, before anything relies
        on it."""
        try:
            held = self.cat(cid, timeout_s)
        except IpfsError as exc:
            raise IpfsMismatch(f"IPFS node does not serve {cid} it acknowledged: {exc}") from exc
        if hashlib.sha256(held).digest() != hashlib.sha256(expected).digest():
            raise IpfsMismatch(f"IPFS serves other bytes under {cid} ({len(held)} bytes, expected {len(expected)})")

    def close(self) -> None:
        self._client.close()
