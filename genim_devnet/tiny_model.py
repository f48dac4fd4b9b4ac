"""A small random-weight Stable Diffusion pipeline, built in code and saved as a diffusers directory.

No weights can be downloaded here, so the tests and the demo build this once and load it back through the
same `AutoPipelineForText2Image.from_pretrained(..., local_files_only=True)` path operators use with real
models. Its architecture is the real one (UNet, VAE, CLIP text encoder, BPE tokenizer, Euler scheduler),
only tiny; its images are noise.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def build_tiny_pipeline(directory: Path, seed: int = 0) -> Path:
    """Builds and saves the tiny pipeline in `directory` (skipped if already there); returns it."""
    if (directory / "model_index.json").exists():
        return directory
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
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
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )
    write_tokenizer(directory / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(directory / "tokenizer", local_files_only=True)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing"
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    (directory / TINY_MARKER).write_text("random weights: images are noise\n")
    return directory
