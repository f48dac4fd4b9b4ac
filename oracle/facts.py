"""What the metadata says about a generated image, built the same way by the daemon and by a GPU worker."""

from __future__ import annotations

from pathlib import Path

from genimnft.metadata import ImageFacts, png_size
from oracle.config import TierSettings


def image_facts(
    settings: TierSettings, *, token_id: int, prompt: str, tier: int, aspect: int, seed: int, png: bytes,
    generated_at: int, image_cid: str,
) -> ImageFacts:  # fmt: skip
    width, height = png_size(png)  # the resolution actually produced
    return ImageFacts(
        token_id=token_id,
        prompt=prompt,
        tier=tier,
        model=_model_name(settings.model),
        width=width,
        height=height,
        aspect=aspect,
        steps=settings.steps,
        guidance=settings.guidance,
        seed=seed,
        generated_at=generated_at,
        image_cid=image_cid,
        upscaler=_model_name(settings.upscale.model) if settings.upscale else None,
    )


def _model_name(model: str) -> str:
    """A repo id as it is; a local directory by its name (its path says nothing to a buyer)."""
    return Path(model).name if Path(model).is_dir() else model
