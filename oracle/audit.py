"""`genim-oracle verify <token>` / `--all`: anyone checks a token against the chain, with no key and no journal.

It reads the request on-chain (status, tier, aspect, digest) and the terms the buyer paid for from its
`ImageRequested` event (the prompt), fetches the metadata by the tokenURI's CID and the image by the CID the
metadata names, and checks, one line each:
- digest: tokenURI is `ipfs://` + the CID of the on-chain digest, and the metadata's sha256 is that digest;
- metadata: it describes this request (name, prompt, tier, aspect ratio, the seed derived from chain, contract and
  token id, the resolution of the image itself);
- image: the image's bytes are a PNG whose CID is the one the metadata names (a raw block, or a DAG of raw
  leaves past 256 KiB);
- regenerated: the model the metadata names, run again with the metadata's steps, guidance and seed, gives the
  same image: bit-exact with the same model, device and dtype; otherwise within PERCEPTUAL_THRESHOLD (a 64-bit
  difference hash of both images, Hamming distance).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genimnft.aspects import Aspect
from genimnft.contract import Chain, Status
from genimnft.ipfs import IpfsClient, same_cid
from genimnft.metadata import MAX_RAW_BLOCK, TIER_NAMES, png_size, raw_cid
from oracle.config import TierSettings
from oracle.generate import seed_for
from oracle.lookup import Content, Token, TokenUnreadable, fetch_content, read_token, request_terms

HASH_SIDE = 8  # a 64-bit difference hash
PERCEPTUAL_THRESHOLD = 10  # of 64 bits: at most this many differ for "the same picture" from another device or dtype


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self, token_id: int) -> str:
        return f"token {token_id} {self.name:<11} {'PASS' if self.passed else 'FAIL'}  {self.detail}"


# Regenerates one image: (tier settings with the named model, tier, prompt, seed, aspect) -> PNG bytes.
Regenerate = Callable[[TierSettings, int, str, int, int], bytes]


def verify_token(chain: Chain, ipfs: IpfsClient, token: Token, chain_id: int, tiers: Mapping[int, TierSettings],
                 regenerate: Regenerate | None, models: Mapping[str, str]) -> list[Check]:  # fmt: skip
    """Every check that can run, in order; a check whose inputs are missing fails and says why."""
    if not token.fulfilled:
        return [Check("status", False, f"{token.request.status.name.lower()}: no image has been set")]
    try:
        content = fetch_content(ipfs, token.metadata_cid)
    except TokenUnreadable as exc:
        return [Check("digest", False, str(exc))]
    checks = [check_digest(token, content), check_metadata(chain, token, content, chain_id), check_image(ipfs, content)]
    if regenerate is None:
        checks.append(Check("regenerated", True, "skipped (--no-regenerate)"))
    elif token.terms is None:
        checks.append(Check("regenerated", False, "the request's ImageRequested event was not found: no prompt"))
    else:
        checks.append(check_regenerated(token, content, tiers, regenerate, models, chain_id, chain.address))
    return checks


def check_digest(token: Token, content: Content) -> Check:
    expected_uri = f"ipfs://{token.metadata_cid}"
    if token.token_uri != expected_uri:
        return Check("digest", False, f"tokenURI {token.token_uri} is not the digest's CID {expected_uri}")
    if hashlib.sha256(content.metadata).digest() != token.request.metadata_digest:
        return Check("digest", False, f"the metadata served under {token.metadata_cid} does not hash to the digest")
    return Check("digest", True, f"the metadata's sha256 is the on-chain digest; tokenURI {token.token_uri}")


def check_metadata(chain: Chain, token: Token, content: Content, chain_id: int) -> Check:
    request, terms, document = token.request, token.terms, content.document
    wanted: dict[str, object] = {
        "name": f"GenImNFT #{token.token_id}",
        "Tier": TIER_NAMES[request.tier],
        "Aspect ratio": Aspect(request.aspect).label,
        "Seed": str(seed_for(chain_id, chain.address, token.token_id)),
    }
    if terms is not None:
        wanted["description"] = terms.prompt
    try:
        width, height = png_size(content.image)
        wanted["Resolution"] = f"{width}x{height}"
    except ValueError:
        pass  # the image check says so
    found = {key: document.get(key) if key in ("name", "description") else content.attribute(key) for key in wanted}
    wrong = [f"{key} is {found[key]!r}, the request says {value!r}" for key, value in wanted.items()
             if found[key] != value]  # fmt: skip
    if wrong:
        return Check("metadata", False, "; ".join(wrong))
    prompt = "the prompt, " if terms is not None else "(no ImageRequested event found: prompt unchecked) "
    return Check("metadata", True, f"{prompt}tier, aspect ratio, seed and resolution match the request")


def check_image(ipfs: IpfsClient, content: Content) -> Check:
    if not content.image.startswith(b"\x89PNG\r\n\x1a\n"):
        return Check("image", False, f"{content.image_cid} is not a PNG")
    actual = image_cid(ipfs, content.image)
    if not same_cid(actual, content.image_cid):
        return Check("image", False, f"the bytes served as {content.image_cid} have the CID {actual}")
    return Check("image", True, f"the PNG's bytes are {content.image_cid}")


def image_cid(ipfs: IpfsClient, data: bytes) -> str:
    """The CID of `data` as the daemon pinned it: one raw block, computed here, up to 256 KiB; beyond, a UnixFS
    DAG of raw leaves, which the node computes without storing anything (`add --only-hash`)."""
    return raw_cid(data) if len(data) <= MAX_RAW_BLOCK else ipfs.add(data, "image.png", only_hash=True)


def check_regenerated(token: Token, content: Content, tiers: Mapping[int, TierSettings], regenerate: Regenerate,
                      models: Mapping[str, str], chain_id: int, contract: str) -> Check:  # fmt: skip
    assert token.terms is not None
    named = str(content.attribute("Model"))
    model = models.get(named) or local_model(named, tiers) or named
    base = tiers.get(token.request.tier, TierSettings())
    settings = base.model_copy(update={"model": model, "steps": int(content.attribute("Steps") or base.steps),
                                       "guidance": float(content.attribute("Guidance") or 0.0)})  # fmt: skip
    seed = seed_for(chain_id, contract, token.token_id)
    try:
        png = regenerate(settings, token.request.tier, token.terms.prompt, seed, token.request.aspect)
    except Exception as exc:  # a model that does not load, a pipeline that fails: the check fails, with why
        return Check("regenerated", False, f"{named} could not regenerate it: {str(exc).splitlines()[0]}")
    if png == content.image:
        return Check("regenerated", True, f"{named} gives the same PNG, bit for bit")
    try:
        distance = perceptual_distance(png, content.image)
    except ValueError as exc:
        return Check("regenerated", False, f"cannot compare with {named}'s image: {exc}")
    verdict = f"{named} gives another PNG; perceptual distance {distance}/64 (threshold {PERCEPTUAL_THRESHOLD})"
    if distance <= PERCEPTUAL_THRESHOLD:
        return Check("regenerated", True, f"{verdict}: the same picture, from another device or dtype")
    return Check("regenerated", False, f"{verdict}: not the image this model makes for this request")


def local_model(named: str, tiers: Mapping[int, TierSettings]) -> str | None:
    """The configured model directory whose name the metadata gives (the daemon names a directory by its name)."""
    for settings in tiers.values():
        for model in (settings.model, settings.upscale.model if settings.upscale else None):
            if model and Path(model).is_dir() and Path(model).name == named:
                return model
    return None


def perceptual_distance(a: bytes, b: bytes) -> int:
    """Hamming distance of two 64-bit difference hashes (grayscale, 9x8, each pixel against its right neighbour)."""
    return bin(_dhash(a) ^ _dhash(b)).count("1")


def _dhash(png: bytes) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(png)).convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS)
    except UnidentifiedImageError as exc:
        raise ValueError("not an image") from exc
    pixels = list(image.getdata())
    bits = 0
    for row in range(HASH_SIDE):
        for col in range(HASH_SIDE):
            left, right = pixels[row * (HASH_SIDE + 1) + col], pixels[row * (HASH_SIDE + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return bits


def verify(chain: Chain, ipfs: IpfsClient, token_ids: list[int] | None, first_block: int, log_range: int,
           tiers: Mapping[int, TierSettings], regenerate: Regenerate | None,
           models: Mapping[str, str]) -> tuple[list[str], bool]:  # fmt: skip
    """The lines to print and whether every check passed; `token_ids` None: every fulfilled token."""
    chain_id = chain.chain_id()
    terms = request_terms(chain, first_block, log_range)
    if token_ids is None:
        next_id = chain.contract.functions.nextTokenId().call()
        token_ids = [t for t in range(1, next_id) if chain.request(t).status is Status.FULFILLED]
        if not token_ids:
            return ["no token has an image yet: nothing to verify"], True
    lines, passed = [], True
    for token_id in token_ids:
        try:
            checks = verify_token(chain, ipfs, read_token(chain, token_id, terms), chain_id, tiers, regenerate, models)
        except TokenUnreadable as exc:
            checks = [Check("status", False, str(exc))]
        lines += [check.line(token_id) for check in checks]
        passed = passed and all(check.passed for check in checks)
    return lines, passed


def generator_regenerate(device: str) -> Regenerate:
    """Regeneration through the daemon's own Generator (the same code path, seed and PNG encoding)."""
    from oracle.generate import Generator

    def regenerate(settings: TierSettings, tier: int, prompt: str, seed: int, aspect: int) -> bytes:
        [image] = Generator({tier: settings}, device).generate(tier, [prompt], [seed], aspect)
        return image.png

    return regenerate
