"""The result of a delivered image: a text JSON receipt, a PNG (downscaled preview when large), a resource link."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict, dataclass

from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image

from genimnft.aspects import Aspect
from genimnft.ipfs import IpfsClient
from genimnft.metadata import cid_of_digest

PREVIEW_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Receipt:
    token_id: int
    token_uri: str
    image: str  # ipfs://<cid>
    gateway_url: str
    mint_tx: str | None
    set_image_tx: str | None
    tier: int
    aspect_ratio: str
    prompt: str
    resolution: str
    chain_id: int
    contract: str
    preview: str  # "full image" or "downscaled WxH preview of the WxH image"


def fetch_image(ipfs: IpfsClient, digest: bytes) -> tuple[dict, str, bytes]:
    """Metadata, image CID and PNG bytes of a token whose digest is on-chain (blocking: run it in a thread)."""
    metadata = json.loads(ipfs.cat(cid_of_digest(digest)))
    image_cid = metadata["image"].removeprefix("ipfs://")
    return metadata, image_cid, ipfs.cat(image_cid)


def preview_png(png: bytes, max_px: int) -> tuple[bytes, str]:
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
        if max(width, height) <= max_px and len(png) <= PREVIEW_MAX_BYTES:
            return png, f"full image, {width}x{height}"
        image.thumbnail((max_px, max_px))
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue(), f"downscaled {image.width}x{image.height} preview of the {width}x{height} image"


def image_result(receipt: Receipt, png: bytes) -> CallToolResult:
    return CallToolResult(
        content=[
            TextContent(type="text", text=json.dumps(asdict(receipt), ensure_ascii=False)),
            ImageContent(type="image", data=base64.b64encode(png).decode(), mimeType="image/png"),
            ResourceLink(
                type="resource_link",
                uri=receipt.image,
                name=f"genimnft-{receipt.token_id}.png",  # type: ignore[arg-type]
                mimeType="image/png",
                description=f"GenImNFT #{receipt.token_id} on IPFS",
            ),
        ]
    )


def resolution_of(metadata: dict) -> str:
    for attribute in metadata.get("attributes", []):
        if attribute.get("trait_type") == "Resolution":
            return str(attribute["value"])
    return "unknown"


def aspect_label(aspect: int) -> str:
    try:
        return Aspect(aspect).label
    except ValueError:
        return f"#{aspect}"
