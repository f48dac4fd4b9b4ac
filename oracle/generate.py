"""Image generation with diffusers. Computes PNG bytes and nothing else: it never sees the key or the chain.

The seed of each image is derived from (chain id, contract, token id), so anyone with the same model and
settings can reproduce it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from typing import Any

from genimnft.aspects import image_size
from oracle.config import TierSettings

log = logging.getLogger("genim.generate")


class GenerationError(RuntimeError):
    """The pipeline failed or produced an unusable image."""


class ModelLoadError(RuntimeError):
    """The model could not be loaded from the local cache or directory."""


def seed_for(chain_id: int, contract: str, token_id: int) -> int:
    material = chain_id.to_bytes(32, "big") + bytes.fromhex(contract.removeprefix("0x")) + token_id.to_bytes(32, "big")
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1  # torch seeds are < 2**63


@dataclass(frozen=True)
class Generated:
    png: bytes
    seed: int


def _device(preference: str) -> str:
    import torch

    if preference != "auto":
        return preference
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return getattr(torch, name)


class Generator:
    """Loads each tier's pipeline once (tiers sharing model and dtype share it) and runs it in batches."""

    def __init__(self, tiers: dict[int, TierSettings], device: str = "auto") -> None:
        self.tiers = tiers
        self.device = _device(device)
        self._pipelines: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def load(self, tier: int) -> Any:
        settings = self.tiers[tier]
        dtype = _dtype(settings.dtype, self.device)
        key = (settings.model, str(dtype))
        with self._lock:
            if key not in self._pipelines:
                self._pipelines[key] = _tune(self._load(settings.model, dtype), settings)
            pipeline = self._pipelines[key]
        if settings.vae_tiling and hasattr(pipeline, "vae"):
            pipeline.vae.enable_tiling()
        return pipeline

    def _load(self, model: str, dtype: Any) -> Any:
        from diffusers import AutoPipelineForText2Image

        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(model, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load model '{model}' from the local cache or directory: {str(exc).splitlines()[0]}"
            ) from exc
        pipeline.set_progress_bar_config(disable=True)
        return pipeline.to(self.device)

    def size(self, tier: int, aspect: int) -> tuple[int, int]:
        """Width and height of `tier`'s images in `aspect`: its pixel budget in that shape."""
        settings = self.tiers[tier]
        return image_size(settings.width, settings.height, aspect, settings.size_step)

    def generate(self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0) -> list[Generated]:
        """One batched pipeline call for prompts of one tier and aspect, as PNG bytes; NaN or infinite pixels
        fail it."""
        import numpy as np

        results = []
        for array, seed in zip(self.pixels(tier, prompts, seeds, aspect), seeds, strict=True):
            if not np.isfinite(array).all():
                raise GenerationError(f"pipeline produced NaN or infinite pixels (seed {seed})")
            results.append(Generated(_png((array * 255).round().clip(0, 255).astype("uint8")), seed))
        return results

    def pixels(self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0) -> Any:
        """The pipeline call itself: float pixels in [0, 1], one image per prompt, each from its own seed."""
        import torch

        settings = self.tiers[tier]
        width, height = self.size(tier, aspect)
        pipeline = self.load(tier)
        generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]
        try:
            return pipeline(
                prompt=prompts,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=width,
                height=height,
                generator=generators,
                output_type="np",
            ).images
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"pipeline failed for tier {tier}: {exc}") from exc


def _tune(pipeline: Any, settings: TierSettings) -> Any:
    """The throughput options of a tier (bench/generate.py measures each)."""
    import torch

    if settings.sdpa:
        from diffusers.models.attention_processor import AttnProcessor2_0

        for module in (pipeline.unet, pipeline.vae):
            module.set_attn_processor(AttnProcessor2_0())
    if settings.channels_last:
        for module in (pipeline.unet, pipeline.vae):
            module.to(memory_format=torch.channels_last)
    if settings.compile != "off":
        pipeline.unet = torch.compile(pipeline.unet, mode=settings.compile)
    return pipeline


def _png(pixels: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # Fixed encoder settings and no timestamp chunk: the same pixels give the same bytes.
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
