"""Small random-weight pipelines, built in code and saved as diffusers directories: Stable Diffusion (basic),
SDXL (premium and ultra) and the x2 latent upscaler (ultra's upscale stage).

No weights can be downloaded here, so the tests and the demo build this once and load it back through the
same `AutoPipelineForText2Image.from_pretrained(..., local_files_only=True)` path operators use with real
models. Its architecture is the real one (UNet, VAE, CLIP text encoder, BPE tokenizer, Euler scheduler),
only tiny; its images are noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TINY_MARKER = "genim-tiny-random"


def write_tokenizer(directory: Path) -> None:
    from transformers import CLIPTokenizer

    # A byte-level BPE vocabulary over printable ASCII: every prompt tokenizes, nothing is downloaded.
    letters = [chr(c) for c in range(33, 127)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in letters:
        vocab.setdefault(letter, len(vocab))
        vocab.setdefault(letter + "</w>", len(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"))
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(directory)


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )


def _tiny_tokenizer(directory: Path) -> Any:
    from transformers import CLIPTokenizer

    write_tokenizer(directory)
    return CLIPTokenizer.from_pretrained(directory, local_files_only=True)


def _tiny_text_encoder(tokenizer: Any, with_projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32,
    )  # fmt: skip
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def _euler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing",
        steps_offset=1,  # what diffusers expects of an SD scheduler; 0 draws a deprecation warning on every load
    )  # fmt: skip


def _save(pipeline: Any, directory: Path) -> Path:
    pipeline.save_pretrained(directory)
    (directory / TINY_MARKER).write_text("random weights: images are noise\n")
    return directory


def _built(directory: Path, seed: int) -> bool:
    """Whether `directory` already holds a pipeline; if not, seeds torch for building one."""
    import torch

    torch.manual_seed(seed)
    return (directory / "model_index.json").exists()


def build_tiny_pipeline(directory: Path, seed: int = 0) -> Path:
    """Builds and saves the tiny Stable Diffusion pipeline in `directory` (skipped if already there)."""
    if _built(directory, seed):
        return directory
    from oracle.generate import quiet_known_notices

    quiet_known_notices()  # transformers on the absent torchvision, the shard-writing bars: nothing to act on
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    tokenizer = _tiny_tokenizer(directory / "tokenizer")
    pipeline = StableDiffusionPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_euler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _save(pipeline, directory)


def build_tiny_sdxl_pipeline(directory: Path, seed: int = 0) -> Path:
    """Builds and saves a tiny SDXL pipeline (two text encoders, size- and crop-conditioned UNet) in `directory`,
    the architecture of the premium and ultra tiers' SDXL-Lightning (skipped if already there)."""
    if _built(directory, seed):
        return directory
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=16,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",  # SDXL: pooled text and (size, crop, target size) condition the time
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size numbers, then the pooled text embedding
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=8,
    )
    tokenizer = _tiny_tokenizer(directory / "tokenizer")
    pipeline = StableDiffusionXLPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(tokenizer),
        text_encoder_2=_tiny_text_encoder(tokenizer, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=_euler(),
    )
    return _save(pipeline, directory)


def build_tiny_upscaler(directory: Path, seed: int = 0) -> Path:
    """Builds and saves a tiny x2 latent upscaler (StableDiffusionLatentUpscalePipeline, the architecture of
    stabilityai/sd-x2-latent-upscaler) in `directory` (skipped if already there)."""
    if _built(directory, seed):
        return directory
    from diffusers import EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        act_fn="gelu",
        attention_head_dim=8,
        norm_num_groups=None,
        block_out_channels=(32, 32, 64, 64),  # K blocks normalize in groups of 32 channels
        time_cond_proj_dim=128 + 32,  # the noise-level embedding, then the pooled text embedding
        conv_in_kernel=1,
        conv_out_kernel=1,
        cross_attention_dim=32,
        down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D"),
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
        in_channels=8,  # the noisy latents and the image's latents
        mid_block_type=None,
        only_cross_attention=False,
        out_channels=5,  # the prediction and a variance channel the pipeline drops
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier",
        timestep_post_act="gelu",
    )
    tokenizer = _tiny_tokenizer(directory / "tokenizer")
    pipeline = StableDiffusionLatentUpscalePipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    return _save(pipeline, directory)


def main(argv: list[str] | None = None) -> int:
    """`make tiny-model`: builds the pipeline where a config's `model` can name it."""
    parser = argparse.ArgumentParser(prog="python -m genim_devnet.tiny_model", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory to write the diffusers pipeline to")
    directory = build_tiny_pipeline(parser.parse_args(argv).out)
    print(f"tiny random-weight pipeline (images are noise) in {directory}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
