"""One token as anyone can read it, with no journal and no key: its request on-chain, the terms its
`ImageRequested` event bound (prompt, tier, aspect), its tokenURI, and the metadata and image fetched from IPFS by
the CIDs the chain and the metadata name. `genim-oracle show` and `genim-oracle verify` start here."""

from __future__ import annotations

import json
from dataclasses import dataclass

from genimnft.contract import Chain, OnChainRequest, RequestEvent, Status
from genimnft.ipfs import IpfsClient, IpfsError
from genimnft.metadata import cid_of_digest

IPFS_PREFIX = "ipfs://"


class TokenUnreadable(RuntimeError):
    """The token cannot be read: it does not exist, or its metadata or image cannot be fetched."""


@dataclass(frozen=True)
class Token:
    token_id: int
    request: OnChainRequest
    terms: RequestEvent | None  # None when its ImageRequested event is not found in the scanned range
    token_uri: str

    @property
    def fulfilled(self) -> bool:
        return self.request.status is Status.FULFILLED

    @property
    def metadata_cid(self) -> str:
        """The CID the contract builds from the digest set with the image."""
        return cid_of_digest(self.request.metadata_digest)


@dataclass(frozen=True)
class Content:
    """A fulfilled token's metadata and image, as IPFS serves them."""

    metadata: bytes
    document: dict
    image_cid: str
    image: bytes

    def attribute(self, trait: str) -> object:
        for entry in self.document.get("attributes", []):
            if isinstance(entry, dict) and entry.get("trait_type") == trait:
                return entry.get("value")
        return None


def request_terms(chain: Chain, first_block: int, log_range: int) -> dict[int, RequestEvent]:
    """Every token's bound terms from its ImageRequested event, from `first_block` to the head."""
    return {event.token_id: event for event in chain.requests_between(first_block, chain.head(), log_range)}


def read_token(chain: Chain, token_id: int, terms: dict[int, RequestEvent]) -> Token:
    request = chain.request(token_id)
    if request.status is Status.NONE:
        raise TokenUnreadable(f"token {token_id} does not exist on {chain.address}")
    token_uri = chain.contract.functions.tokenURI(token_id).call()
    return Token(token_id, request, terms.get(token_id), token_uri)


def fetch_content(ipfs: IpfsClient, metadata_cid: str, timeout_s: int = 10) -> Content:
    try:
        metadata = ipfs.cat(metadata_cid, timeout_s)
    except IpfsError as exc:
        raise TokenUnreadable(f"metadata {metadata_cid} cannot be fetched: {exc}") from exc
    try:
        document = json.loads(metadata)
        image_uri = document["image"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenUnreadable(f"metadata {metadata_cid} is not GenImNFT metadata JSON: {exc}") from exc
    if not isinstance(image_uri, str) or not image_uri.startswith(IPFS_PREFIX):
        raise TokenUnreadable(f"metadata {metadata_cid} names no ipfs:// image ({image_uri!r})")
    image_cid = image_uri.removeprefix(IPFS_PREFIX)
    try:
        image = ipfs.cat(image_cid, timeout_s)
    except IpfsError as exc:
        raise TokenUnreadable(f"image {image_cid} cannot be fetched: {exc}") from exc
    return Content(metadata, document, image_cid, image)
