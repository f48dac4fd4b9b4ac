"""Daemon configuration: one TOML file (see oracle.example.toml) plus GENIM_* environment overrides."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

from genimnft.settings import ChainSettings, load_settings


class UpscaleSettings(BaseModel):
    """A diffusers upscaler run on a tier's images, loaded offline like its model: factor 2 is a
    StableDiffusionLatentUpscalePipeline (stabilityai/sd-x2-latent-upscaler), 4 a StableDiffusionUpscalePipeline
    (stabilityai/stable-diffusion-x4-upscaler)."""

    model: str
    factor: Literal[2, 4] = 2
    steps: int = Field(10, ge=1)
    guidance: float = 0.0  # at or below 1 the upscaler runs without classifier-free guidance (half the UNet work)


class TierSettings(BaseModel):
    """How one tier is generated. The defaults suit stabilityai/sd-turbo."""

    model: str = "stabilityai/sd-turbo"
    width: int = 512  # with height: the model's pixel budget, and its size at 1:1 (before any upscale)
    height: int = 512
    size_step: int = Field(64, ge=8, description="other aspect ratios round each side to a multiple of this")
    steps: int = Field(1, ge=1)
    guidance: float = 0.0
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    vae_tiling: bool = False
    expected_seconds: float = Field(60.0, gt=0, description="seconds one image should take; see stall_factor")
    sdpa: bool = True  # torch scaled_dot_product_attention in the UNet and VAE
    channels_last: bool = False  # channels-last memory format for the UNet and VAE (tensor cores)
    compile: Literal["off", "default", "reduce-overhead"] = (
        "off"  # torch.compile the UNet; reduce-overhead = CUDA graphs
    )
    upscale: UpscaleSettings | None = None  # images come out `factor` times the model's size on each side

    @property
    def scale(self) -> int:
        return self.upscale.factor if self.upscale else 1

    @property
    def total_steps(self) -> int:
        """Denoising steps of one call, the upscaler's included (what a progress step counts up to)."""
        return self.steps + (self.upscale.steps if self.upscale else 0)


# Premium and ultra: ByteDance's SDXL-Lightning 4-step UNet in stabilityai/stable-diffusion-xl-base-1.0, native at
# 1024x1024 (sd-turbo is trained at 512x512 and tiles beyond it), saved once as a diffusers directory (README).
SDXL_LIGHTNING = "models/sdxl-lightning-4step"
LATENT_UPSCALER = "stabilityai/sd-x2-latent-upscaler"


def default_tiers() -> dict[int, TierSettings]:
    premium = TierSettings(model=SDXL_LIGHTNING, width=1024, height=1024, steps=4)
    return {
        0: TierSettings(),
        1: premium,
        2: premium.model_copy(
            update={"vae_tiling": True, "upscale": UpscaleSettings(model=LATENT_UPSCALER, factor=2, steps=10)}
        ),
    }


class ReaderConfig(ChainSettings):
    """What reading a token needs (`genim-oracle show`, `verify`): the chain, IPFS, and the tiers to regenerate
    with. No key and no state: anyone can read the daemon's own file with it, or write a short one."""

    ipfs_api: str = "http://127.0.0.1:5001"
    gateway_url: str = Field("https://ipfs.io", description="IPFS gateway for the links `genim-oracle show` prints")
    ipfs_timeout: float = Field(30.0, gt=0)
    device: str = "auto"
    tiers: dict[int, TierSettings] = Field(default_factory=default_tiers)


class OracleConfig(ReaderConfig):
    account: str
    passphrase_env: str = "GENIM_PASSPHRASE"
    state_dir: Path = Path("state")
    poll_interval: float = Field(1.0, gt=0)
    deadline_margin: int = Field(60, ge=0, description="skip a request whose deadline is closer than this (s)")
    generation_batch: int = Field(4, ge=1)
    max_generation_attempts: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1, le=64)
    batch_wait: float = Field(1.0, ge=0, description="seconds a lone image waits for company")
    tx_timeout: float = Field(60.0, gt=0, description="seconds before a stuck transaction is replaced")
    max_fee_per_gas: int = Field(
        100 * 10**9, gt=0, description="wei per gas the oracle never signs above (new sends and replacements)"
    )
    low_balance_batches: int = Field(20, ge=0, description="warn when the balance pays for fewer full batches")
    ipfs_verify_timeout: int = Field(5, ge=1, description="seconds to read a pinned block back before trusting it")
    progress_log_interval: float = Field(5.0, gt=0, description="at most one progress line per this many seconds")
    stall_factor: float = Field(5.0, gt=1, description="/health says stalled past this multiple of expected_seconds")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, description="0 disables the metrics and health server")
    # Generation in this process ("local"), or on GPU workers reached through a RabbitMQ broker ("celery").
    workers: Literal["local", "celery"] = "local"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    dispatch_timeout: float = Field(900.0, gt=0, description="seconds a dispatched job may go unanswered")
    max_dispatch_attempts: int = Field(3, ge=1, description="after this many, a request is left refundable")
    max_jobs_out: int = Field(64, ge=1, description="jobs dispatched and not yet answered, at most")

    def first_block(self) -> int:
        """Where the follower starts without a cursor: `start_block`, the deployment's block, or 0."""
        return super().first_block() or 0


class WorkerConfig(BaseModel):
    """What a GPU worker reads from the same TOML file: no key, no RPC, no contract (other keys are ignored)."""

    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    ipfs_api: str = "http://127.0.0.1:5001"
    ipfs_timeout: float = Field(30.0, gt=0)
    device: str = "auto"
    tiers: dict[int, TierSettings] = Field(default_factory=default_tiers)


Config = TypeVar("Config", OracleConfig, WorkerConfig, ReaderConfig)


def fingerprint(tiers: dict[int, TierSettings]) -> str:
    """What must match between the coordinator and a worker for their images to be interchangeable: each tier's
    settings, with a model directory named by its name and the names and sizes of its files, not its path."""
    return hashlib.sha256(json.dumps(_described(tiers), sort_keys=True).encode()).hexdigest()[:16]


def settings_summary(tiers: dict[int, TierSettings]) -> dict[str, str]:
    """The fingerprint's inputs, one line each ("tiers.1.steps" -> "4"; a model directory as its name, file count
    and bytes): what a worker announces, so that a refusal can name the settings that differ."""
    flat: dict[str, str] = {}
    for tier, entry in _described(tiers).items():
        for key, value in entry.items():
            if key == "model" and isinstance(value, dict):
                files = value["files"]
                flat[f"tiers.{tier}.model"] = f"{value['name']} ({len(files)} files, {sum(s for _, s in files)} bytes)"
            elif isinstance(value, dict):
                flat.update({f"tiers.{tier}.{key}.{inner}": json.dumps(item) for inner, item in value.items()})
            else:
                flat[f"tiers.{tier}.{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def settings_differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """Each setting that differs, as "tiers.1.steps 2 (here 4)"; "-" where one side lacks it."""
    return [f"{key} {theirs.get(key, '-')} (here {ours.get(key, '-')})" for key in sorted(ours.keys() | theirs.keys())
            if ours.get(key) != theirs.get(key)]  # fmt: skip


def _described(tiers: dict[int, TierSettings]) -> dict[str, dict]:
    described = {}
    for tier, settings in sorted(tiers.items()):
        entry = settings.model_dump(mode="json")
        model = Path(settings.model)
        if model.is_dir():
            files = sorted(f for f in model.rglob("*") if f.is_file())
            sizes = [[str(f.relative_to(model)), f.stat().st_size] for f in files]
            entry["model"] = {"name": model.name, "files": sizes}
        described[str(tier)] = entry
    return described


def load_config(
    path: Path | None, overrides: dict[str, object] | None = None, model: type[Config] = OracleConfig
) -> Config:
    """Reads the TOML file, then GENIM_<FIELD> environment variables, then explicit overrides. A worker or a reader
    may read the daemon's own file: the daemon's other keys are accepted there and ignored."""
    also_known = () if model is OracleConfig else (OracleConfig,)
    config = load_settings(model, path, "GENIM_", overrides, env_skip=("tiers",), also_known=also_known)
    if path is None:
        return config
    base = path.resolve().parent
    return config.model_copy(update={"tiers": {tier: _models_from(base, s) for tier, s in config.tiers.items()}})


def _models_from(base: Path, tier: TierSettings) -> TierSettings:
    """A tier whose model (or upscaler) is a directory relative to the config file, made absolute."""
    update: dict[str, object] = {"model": _local_model(base, tier.model)}
    if tier.upscale is not None:
        update["upscale"] = tier.upscale.model_copy(update={"model": _local_model(base, tier.upscale.model)})
    return tier.model_copy(update=update)


def _local_model(base: Path, model: str) -> str:
    """A Hugging Face repo id ("org/name") stays as it is; a path ("./x", ".cache/x", or an existing directory
    next to the config file) is taken relative to the config file."""
    path = Path(model).expanduser()
    if path.is_absolute():
        return str(path)
    if model.startswith(".") or (base / path).is_dir():
        return str(base / path)
    return model
