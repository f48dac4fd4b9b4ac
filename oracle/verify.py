"""The coordinator's check of a worker's result before its digest may go on-chain: the metadata fetched back
from IPFS by its CID hashes to the digest, names the token and the image, and the image fetched by the CID the
metadata names is a PNG of the expected size whose bytes hash to that CID and are the bytes the worker
generated (their sha256 travels with the result: an IPFS node that answered a stale CID is caught here)."""

from __future__ import annotations

import hashlib
import json

from genimnft.ipfs import IpfsClient, IpfsError, same_cid
from genimnft.metadata import png_size, raw_cid
from oracle.messages import WorkResult


class VerificationError(RuntimeError):
    """The result does not hold up; the job is dispatched again."""


def verify_result(ipfs: IpfsClient, result: WorkResult, prompt: str, size: tuple[int, int]) -> bytes:
    """Returns the metadata bytes; raises VerificationError, or IpfsError if the IPFS node itself is down."""
    metadata = _fetch(ipfs, result.metadata_cid, "metadata")
    if hashlib.sha256(metadata).hexdigest() != result.digest:
        raise VerificationError(f"metadata {result.metadata_cid} does not hash to the digest {result.digest}")
    if not same_cid(raw_cid(metadata), result.metadata_cid):
        raise VerificationError(f"metadata is not the single raw block {result.metadata_cid}")
    try:
        document = json.loads(metadata)
        named, image, described = document["name"], document["image"], document["description"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"metadata {result.metadata_cid} is not token metadata: {exc}") from exc
    if named != f"GenImNFT #{result.token_id}" or image != f"ipfs://{result.image_cid}":
        raise VerificationError(f"metadata {result.metadata_cid} names {str(named)[:80]!r} and {str(image)[:140]!r}")
    if described != prompt:
        raise VerificationError(f"metadata {result.metadata_cid} describes another prompt")
    png = _fetch(ipfs, result.image_cid, "image")
    if hashlib.sha256(png).hexdigest() != result.image_sha256:
        raise VerificationError(f"image {result.image_cid} is not the image this job generated (sha256 differs)")
    try:
        produced = png_size(png)
    except ValueError as exc:
        raise VerificationError(f"image {result.image_cid}: {exc}") from exc
    if produced != size:
        raise VerificationError(
            f"image {result.image_cid} is {produced[0]}x{produced[1]}, expected {size[0]}x{size[1]}"
        )
    if not same_cid(ipfs.add(png, "verify.png", only_hash=True), result.image_cid):
        raise VerificationError(f"image bytes do not hash to {result.image_cid}")
    return metadata


def _fetch(ipfs: IpfsClient, cid: str, what: str) -> bytes:
    try:
        return ipfs.cat(cid)
    except IpfsError as exc:
        ipfs.version()  # raises IpfsError if the node itself is down: an outage to wait out, not a bad result
        raise VerificationError(f"{what} {cid} does not resolve: {exc}") from exc
