"""`genim-oracle show <token>`: where a token's image is (tokenURI, IPFS and gateway URLs), saved as a PNG;
with `--wait`, first waits for the image to be set, and gives up with one line that says what it saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from genimnft.contract import Chain, Status
from genimnft.ipfs import IpfsClient
from genimnft.metadata import png_size
from oracle.lookup import Token, TokenUnreadable, fetch_content, read_token

POLL_SECONDS = 1.0


class NotReady(RuntimeError):
    """The image was not set within the wait; the message says what the chain shows instead."""


def wait_for_image(chain: Chain, token_id: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
    deadline = clock() + seconds
    while True:
        request = chain.request(token_id)
        if request.status is Status.FULFILLED:
            return
        if request.status is Status.REFUNDED:
            raise NotReady(f"token {token_id} was refunded: it will never have an image")
        if clock() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if request.status is Status.NONE:
        raise NotReady(f"token {token_id} does not exist on {chain.address} after {seconds:.0f} s: was it minted?")
    left = request.deadline - chain.timestamp()
    raise NotReady(
        f"token {token_id} has no image after {seconds:.0f} s (pending; its deadline is in {left} s): is the daemon "
        "running? `genim-oracle status` shows its jobs and notices, its log says why"
    )


def show(chain: Chain, ipfs: IpfsClient, gateway_url: str, token_id: int, out: Path | None) -> list[str]:
    """The lines to print; the PNG is written to `out` (default token-<id>.png)."""
    token: Token = read_token(chain, token_id, {})
    if not token.fulfilled:
        raise NotReady(f"token {token_id} is {token.request.status.name.lower()}: no image yet (try --wait 120)")
    content = fetch_content(ipfs, token.metadata_cid)
    gateway = gateway_url.rstrip("/")
    path = out or Path(f"token-{token_id}.png")
    try:
        width, height = png_size(content.image)
    except ValueError as exc:
        raise TokenUnreadable(f"image {content.image_cid} of token {token_id}: {exc}") from exc
    path.write_bytes(content.image)
    return [
        f"token {token_id}: image set",
        f"tokenURI  {token.token_uri}",
        f"metadata  {gateway}/ipfs/{token.metadata_cid}",
        f"image     ipfs://{content.image_cid}",
        f"gateway   {gateway}/ipfs/{content.image_cid}",
        f"saved     {path} ({width}x{height}, {len(content.image)} bytes)",
    ]
