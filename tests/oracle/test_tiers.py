"""Tiers that look right at their size: premium runs an SDXL pipeline at its native size, ultra runs it and then
an upscaler, both loaded offline through the Generator as the daemon loads them (tiny random-weight pipelines
saved as diffusers directories here)."""

from __future__ import annotations

import io
import tomllib

import pytest
from PIL import Image

from genim_devnet.tiny_model import build_tiny_sdxl_pipeline, build_tiny_upscaler
from genimnft.aspects import Aspect, image_size
from oracle.config import TierSettings, UpscaleSettings, default_tiers
from oracle.generate import Generator, ModelLoadError
from tests.services import ROOT

PREMIUM, ULTRA = 1, 2
BUDGET, STEP = 128, 32  # the tiny upscaler's UNet halves the latents three times: sides in multiples of 32


@pytest.fixture(scope="module")
def tiers(tmp_path_factory) -> dict[int, TierSettings]:
    models = tmp_path_factory.mktemp("tiers")
    premium = TierSettings(
        model=str(build_tiny_sdxl_pipeline(models / "tiny-sdxl")), width=BUDGET, height=BUDGET, steps=1, size_step=STEP
    )
    upscale = UpscaleSettings(model=str(build_tiny_upscaler(models / "tiny-upscaler")), factor=2, steps=1)
    return {PREMIUM: premium, ULTRA: premium.model_copy(update={"upscale": upscale})}


@pytest.fixture(scope="module")
def generator(tiers) -> Generator:
    return Generator(tiers)


def png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda aspect: aspect.label)
def test_premium_is_the_sdxl_pipeline_at_the_tier_size(generator, aspect):
    [image] = generator.generate(PREMIUM, ["a red fox"], [11], aspect)
    assert type(generator.load(PREMIUM)).__name__ == "StableDiffusionXLPipeline"
    assert png_size(image.png) == image_size(BUDGET, BUDGET, aspect, STEP) == generator.size(PREMIUM, aspect)


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda aspect: aspect.label)
def test_ultra_upscales_the_model_image_by_the_factor(generator, aspect):
    steps: list[int] = []
    [image] = generator.generate(ULTRA, ["a red fox"], [11], aspect, on_step=steps.append)
    width, height = image_size(BUDGET, BUDGET, aspect, STEP)
    assert png_size(image.png) == (2 * width, 2 * height) == generator.size(ULTRA, aspect)
    assert type(generator.load_upscaler(ULTRA)).__name__ == "StableDiffusionLatentUpscalePipeline"
    assert steps == [1, 2]  # the model's step, then the upscaler's, counted on


@pytest.mark.parametrize("tier", [PREMIUM, ULTRA], ids=["premium", "ultra"])
def test_same_seed_same_bytes(generator, tiers, tier):
    # The same call: a batch of other seeds may move a float in the last bits (CPU kernels block by batch size).
    first, other = generator.generate(tier, ["a red fox", "a red fox"], [5, 6], Aspect.LANDSCAPE)
    again, _ = Generator(tiers).generate(tier, ["a red fox", "a red fox"], [5, 6], Aspect.LANDSCAPE)  # fresh loads
    assert first.png == again.png
    assert first.png != other.png


def test_upscaler_of_another_factor_is_refused(tiers):
    upscale = tiers[ULTRA].upscale.model_copy(update={"factor": 4})
    wrong = Generator({ULTRA: tiers[ULTRA].model_copy(update={"upscale": upscale})})
    with pytest.raises(ModelLoadError, match="is a StableDiffusionLatentUpscalePipeline, not x4"):
        wrong.load(ULTRA)


def test_default_tiers_generate_at_native_size_and_upscale_ultra_to_2048():
    generator = Generator(default_tiers(), device="cpu")
    assert [generator.base_size(tier, Aspect.SQUARE) for tier in (0, 1, 2)] == [(512, 512), (1024, 1024), (1024, 1024)]
    assert [generator.size(tier, Aspect.SQUARE) for tier in (0, 1, 2)] == [(512, 512), (1024, 1024), (2048, 2048)]
    assert default_tiers()[0].model != default_tiers()[1].model  # sd-turbo stays at 512x512, its native size


def test_example_config_tiers_are_the_default_tiers():
    example = tomllib.loads((ROOT / "oracle.example.toml").read_text())
    assert {int(tier): TierSettings.model_validate(s) for tier, s in example["tiers"].items()} == default_tiers()


def test_metadata_names_the_upscaler_of_an_upscaled_tier():
    """An ultra image is reproducible from its metadata only if the upscale stage is named there too."""
    import io
    import json

    from PIL import Image

    from genimnft.metadata import metadata_bytes
    from oracle.config import default_tiers
    from oracle.facts import image_facts

    png = io.BytesIO()
    Image.new("RGB", (64, 32)).save(png, format="PNG")
    traits = {}
    for tier, settings in default_tiers().items():
        facts = image_facts(settings, token_id=1, prompt="p", tier=tier, aspect=1, seed=7, png=png.getvalue(),
                            generated_at=0, image_cid="bafkreiexample")  # fmt: skip
        document = json.loads(metadata_bytes(facts))
        traits[tier] = {trait["trait_type"]: trait["value"] for trait in document["attributes"]}
    assert "Upscaler" not in traits[0] and "Upscaler" not in traits[1]
    assert traits[2]["Upscaler"] == default_tiers()[2].upscale.model
    assert traits[2]["Resolution"] == "64x32"  # what the PNG says, not the configured size
