"""HoldingGeneratorDouble: a test double for oracle.generate.Generator that stands in for a GPU.

Each batch holds for a fixed time (the GPU busy), then yields a flat PNG of the tier's size per seed, its
colour derived from the seed, so a redelivered job yields the same bytes. No torch, no model. Run as a
module it is a real `genim-oracle worker` (oracle.worker.run_worker) with this double injected:

    python -m genim_devnet.generator_double --config oracle.toml --hold 2.0 [--name w1]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from genimnft.aspects import image_size
from oracle.config import TierSettings, WorkerConfig, load_config
from oracle.generate import Generated


class HoldingGeneratorDouble:
    def __init__(self, tiers: dict[int, TierSettings], hold: float) -> None:
        self.tiers = tiers
        self.hold = hold
        self.device = "double"
        self.batches = 0

    def load(self, tier: int) -> None:
        if tier not in self.tiers:  # fails here, as the real loader would
            raise KeyError(tier)

    def size(self, tier: int, aspect: int) -> tuple[int, int]:
        settings = self.tiers[tier]
        width, height = image_size(settings.width, settings.height, aspect, settings.size_step)
        return width * settings.scale, height * settings.scale

    def generate(self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0) -> list[Generated]:
        from PIL import Image

        time.sleep(self.hold)
        self.batches += 1
        images = []
        for seed in seeds:
            buffer = io.BytesIO()
            colour = tuple(seed.to_bytes(8, "big")[:3])
            Image.new("RGB", self.size(tier, aspect), colour).save(buffer, format="PNG", compress_level=6)
            images.append(Generated(buffer.getvalue(), seed))
        return images


def main(argv: list[str] | None = None) -> None:
    from oracle.observe import setup_logging
    from oracle.worker import default_name, run_worker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--hold", type=float, required=True, help="seconds each batch holds the (pretend) GPU")
    parser.add_argument("--name")
    args = parser.parse_args(argv)
    setup_logging()
    config = load_config(args.config, model=WorkerConfig)
    run_worker(config, HoldingGeneratorDouble(config.tiers, args.hold), args.name or default_name("double"))


if __name__ == "__main__":
    main()
