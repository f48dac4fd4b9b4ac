"""The tool result's parts: the PNG preview is downscaled only when the image is large."""

from __future__ import annotations

import io

from PIL import Image

from genim_mcp.results import preview_png


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


def test_a_small_image_is_returned_whole():
    png = png_of(128, 72)
    assert preview_png(png, 512) == (png, "full image, 128x72")


def test_a_large_image_becomes_a_downscaled_preview_in_its_aspect_ratio():
    preview, note = preview_png(png_of(2048, 1152), 512)
    assert Image.open(io.BytesIO(preview)).size == (512, 288)
    assert note == "downscaled 512x288 preview of the 2048x1152 image"
