"""Image generation with diffusers. Computes PNG bytes and nothing else: it never sees the key or the chain.

The seed of each image is derived from (chain id, contract, token id), so anyone with the same model and
settings can reproduce it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genimnft.aspects import image_size
from oracle.config import TierSettings, UpscaleSettings
from oracle.models import ModelMissing, check_model

log = logging.getLogger("genim.generate")


OnStep = Callable[[int], None]

# The diffusers upscaler pipelines an `upscale` stage may name, by the factor each multiplies a side by.
UPSCALER_FACTORS = {"StableDiffusionLatentUpscalePipeline": 2, "StableDiffusionUpscalePipeline": 4}


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


# Third-party notices that say nothing to an operator: transformers on the absent torchvision (the PIL image
# processors are the ones used), diffusers on the absent accelerate (it loads without).
KNOWN_NOTICES = ("requires torchvision", "`accelerate` was not found")


class _KnownNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(notice in record.getMessage() for notice in KNOWN_NOTICES)


def quiet_known_notices() -> None:
    """Drops the known notices and the loading progress bars of diffusers and transformers."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        root = library.get_logger()  # the library's own logger, with its handler configured
        for handler in [*root.handlers, *logging.getLogger().handlers]:
            if not any(isinstance(f, _KnownNotices) for f in handler.filters):
                handler.addFilter(_KnownNotices())


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
    """Loads each tier's pipeline, and its upscaler if it has one, once (tiers sharing a model and dtype share
    it) and runs them in batches."""

    def __init__(self, tiers: dict[int, TierSettings], device: str = "auto") -> None:
        self.tiers = tiers
        self.device = _device(device)
        self._pipelines: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def load(self, tier: int) -> Any:
        """Loads the tier's pipelines (its upscaler too, so that a missing one fails here) and returns the
        text-to-image one."""
        settings = self.tiers[tier]
        self.load_upscaler(tier)
        return self._cached(settings.model, "AutoPipelineForText2Image", settings)

    def load_upscaler(self, tier: int) -> Any | None:
        """The tier's upscaler pipeline, or None when the tier has no upscale stage."""
        settings = self.tiers[tier]
        if settings.upscale is None:
            return None
        return _check_factor(self._cached(settings.upscale.model, "DiffusionPipeline", settings), settings.upscale)

    def _cached(self, model: str, loader: str, settings: TierSettings) -> Any:
        dtype = _dtype(settings.dtype, self.device)
        key = (model, str(dtype))
        with self._lock:
            if key not in self._pipelines:
                self._pipelines[key] = _tune(self._load(model, dtype, loader), settings)
            pipeline = self._pipelines[key]
        if settings.vae_tiling and hasattr(pipeline, "vae"):
            pipeline.vae.enable_tiling()
        return pipeline

    def _load(self, model: str, dtype: Any, loader: str) -> Any:
        try:
            check_model(model)  # a missing model says how to get it, not that huggingface.co is unreachable
        except ModelMissing as exc:
            raise ModelLoadError(f"cannot load model '{model}': {exc}") from exc
        quiet_known_notices()  # before diffusers imports its transformers classes, which logs them
        import diffusers

        try:
            pipeline = getattr(diffusers, loader).from_pretrained(model, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load model '{model}' from the local cache or directory: {str(exc).splitlines()[0]}"
            ) from exc
        pipeline.set_progress_bar_config(disable=True)
        return pipeline.to(self.device)

    def base_size(self, tier: int, aspect: int) -> tuple[int, int]:
        """Width and height the tier's model generates in `aspect`: its pixel budget in that shape."""
        settings = self.tiers[tier]
        return image_size(settings.width, settings.height, aspect, settings.size_step)

    def size(self, tier: int, aspect: int) -> tuple[int, int]:
        """Width and height of `tier`'s images in `aspect`: the model's size times the upscale factor."""
        width, height = self.base_size(tier, aspect)
        return width * self.tiers[tier].scale, height * self.tiers[tier].scale

    def generate(
        self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0, on_step: OnStep | None = None
    ) -> list[Generated]:
        """One batched pipeline call for prompts of one tier and aspect, as PNG bytes; NaN or infinite pixels
        fail it. `on_step(step)` is called after each denoising step."""
        import numpy as np

        results = []
        for array, seed in zip(self.pixels(tier, prompts, seeds, aspect, on_step), seeds, strict=True):
            if not np.isfinite(array).all():
                raise GenerationError(f"pipeline produced NaN or infinite pixels (seed {seed})")
            results.append(Generated(_png((array * 255).round().clip(0, 255).astype("uint8")), seed))
        return results

    def pixels(
        self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0, on_step: OnStep | None = None
    ) -> Any:
        """The pipeline calls themselves (the model, then the upscaler if the tier has one): float pixels in
        [0, 1], one image per prompt, each from its own seed. Steps count on through the upscaler's."""
        settings = self.tiers[tier]
        width, height = self.base_size(tier, aspect)
        pipeline, upscaler = self.load(tier), self.load_upscaler(tier)
        report = on_step or (lambda _step: None)

        def step_end(_pipeline: Any, step: int, _timestep: Any, tensors: dict) -> dict:
            report(step + 1)
            return tensors

        try:
            images = pipeline(
                prompt=prompts,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=width,
                height=height,
                generator=self._generators(seeds),
                output_type="np" if upscaler is None else "pt",  # "pt" stays on the device for the upscaler
                callback_on_step_end=step_end,
            ).images
            if upscaler is None:
                return images
            assert settings.upscale is not None
            return upscaler(
                prompt=prompts,
                image=images,
                num_inference_steps=settings.upscale.steps,
                guidance_scale=settings.upscale.guidance,
                generator=self._generators(seeds),
                output_type="np",
                callback=lambda step, _timestep, _latents: report(settings.steps + step + 1),
            ).images
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"pipeline failed for tier {tier}: {exc}") from exc

    def _generators(self, seeds: list[int]) -> list[Any]:
        import torch

        return [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]


def _check_factor(upscaler: Any, upscale: UpscaleSettings) -> Any:
    """The loaded upscaler multiplies each side by the configured factor, or the tier's sizes would be wrong."""
    name = type(upscaler).__name__
    if UPSCALER_FACTORS.get(name) != upscale.factor:
        known = ", ".join(f"{cls} (x{factor})" for cls, factor in UPSCALER_FACTORS.items())
        raise ModelLoadError(f"upscaler '{upscale.model}' is a {name}, not x{upscale.factor}; expected one of {known}")
    return upscaler


def _tune(pipeline: Any, settings: TierSettings) -> Any:
    """The throughput options of a tier, applied to its model and its upscaler (bench/generate.py measures
    each)."""
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
