"""ERC-721 metadata (OpenSea standard) and the content identifiers that bind it on-chain.

The metadata JSON is pinned as one raw IPFS block, so its CIDv1 (raw codec, sha2-256, base32) is a pure
function of its bytes; the contract stores only the 32-byte sha256 and rebuilds that CID in `tokenURI`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from multiformats import CID, multihash

from genimnft.aspects import Aspect

# Kubo and js-ipfs chunk at 256 KiB: anything larger would become a DAG, not one raw block.
MAX_RAW_BLOCK = 256 * 1024
TIER_NAMES = ("Basic", "Premium", "Ultra")


@dataclass(frozen=True)
class ImageFacts:
    """What the metadata says about one generated image."""

    token_id: int
    prompt: str
    tier: int
    model: str
    width: int
    height: int
    aspect: int
    steps: int
    guidance: float
    seed: int
    generated_at: int
    image_cid: str
    upscaler: str | None = None  # the upscale stage's model, when the tier has one


def metadata_bytes(facts: ImageFacts) -> bytes:
    """The canonical JSON bytes: the prompt verbatim as the description, keys in a fixed order."""
    document = {
        "name": f"GenImNFT #{facts.token_id}",
        "description": facts.prompt,
        "image": f"ipfs://{facts.image_cid}",
        "attributes": [
            {"trait_type": "Model", "value": facts.model},
            {"trait_type": "Tier", "value": TIER_NAMES[facts.tier]},
            {"trait_type": "Resolution", "value": f"{facts.width}x{facts.height}"},
            {"trait_type": "Aspect ratio", "value": Aspect(facts.aspect).label},
            *([{"trait_type": "Upscaler", "value": facts.upscaler}] if facts.upscaler else []),
            {"trait_type": "Steps", "value": facts.steps},
            {"trait_type": "Guidance", "value": facts.guidance},
            {"trait_type": "Seed", "value": str(facts.seed)},
            {"display_type": "date", "trait_type": "Generated", "value": facts.generated_at},
        ],
    }
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_RAW_BLOCK:
        raise ValueError(f"metadata of token {facts.token_id} is {len(data)} bytes, over one raw block")
    return data


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk: the resolution actually produced."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def raw_cid(data: bytes) -> str:
    """CIDv1, raw codec, sha2-256, base32: what the IPFS node must answer for a single-block add."""
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def cid_of_digest(digest: bytes) -> str:
    """The CID the contract builds from a stored digest."""
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def metadata_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def decode_prompt(raw: bytes) -> str:
    """Prompts are bytes on-chain; invalid UTF-8 is replaced with U+FFFD, as documented in the README."""
    return raw.decode("utf-8", errors="replace")
