"""Images per second of the oracle's generation path, tuned, next to plain diffusers, per batch size.

    python bench/generate.py --arch sd-turbo --dtype float16 --compile     # on a GPU
    python bench/generate.py --model DIR --resolution 64 --batch-sizes 1,2  # any diffusers directory
    python bench/generate.py --tier 2 --config oracle.toml                  # a tier as the daemon runs it

Tuned path: the pipeline loaded as the daemon loads it (oracle.generate.Generator: from_pretrained with
local_files_only, the chosen dtype, VAE tiling if asked), then the flags below, then one call per batch of
prompts with one seeded generator per image, `output_type="np"`, as Generator.generate calls it (PNG encoding,
done by the daemon afterwards, is not timed). Baseline: `AutoPipelineForText2Image.from_pretrained(DIR)` with
every default (float32, diffusers' attention processor) and one `pipe(prompt)` call per image, passing only
steps, size and the same guidance (sd-turbo is distilled for guidance 0; diffusers' default 7.5 would double
the baseline's UNet work and flatter the ratio). Both run in the same process, baseline first, each after
warm-up calls, timed over --repeats calls per batch size.

Flags of the tuned path:
  --dtype          float16 on CUDA and float32 on CPU unless given.
  --sdpa           (default on) set AttnProcessor2_0 (torch scaled_dot_product_attention) on the UNet and VAE
                   explicitly; recent diffusers already default to it, so this pins it rather than changes it.
  --channels-last  UNet and VAE in channels-last memory format (helps convolutions on tensor cores).
  --vae-tiling     decode the latents in tiles (the ultra tier uses it: 2048x2048 does not fit otherwise).
  --compile        torch.compile the UNet (mode "default"); the first calls of each batch size compile.
  --cuda-graphs    torch.compile the UNet in mode "reduce-overhead", which captures CUDA graphs per input shape
                   and replays them, removing kernel-launch overhead; implies --compile, CUDA only (refused on
                   CPU, where there is nothing to capture).

Without weights, `--arch sd-turbo` builds the real sd-turbo architecture (SD 2.1-base UNet, OpenCLIP-H text
encoder, SD VAE) from the configs in bench/sd_turbo_config/ with random weights, saves it once to --cache-dir
and loads it back through from_pretrained(local_files_only=True): throughput is the real model's, images are
noise. Results go to bench/results/generate.json on CUDA and generate-cpu.json otherwise, one entry per
resolution (bench/cost.py reads the 512 entry).

Tiers: `--tier N` times tier N of --config (default: oracle.config.default_tiers()) exactly as the daemon runs
it, its options included: the model at its size, then its upscale stage if it has one, through
Generator.pixels at 1:1. `--tier-model` and `--upscaler` replace the two models (e.g. with the tiny random-weight
ones of genim_devnet.tiny_model, which only shows the path runs). No baseline: the entry, `tierN`, holds
seconds per image per batch size.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genim_devnet.tiny_model import write_tokenizer
from oracle.config import TierSettings, default_tiers, load_config
from oracle.generate import Generator

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent / "sd_turbo_config"
RESULTS_DIR = ROOT / "bench" / "results"
PROMPT = "A lighthouse on a basalt cliff at dawn, oil painting, warm light over cold surf"
RANDOM_MARKER = "genim-random-weights"


def _component(name: str, library: str | None, class_name: str | None, staging: Path) -> Any:
    """One pipeline component from its config in bench/sd_turbo_config/, with random weights."""
    if library is None or class_name is None:
        return None
    cls = getattr(importlib.import_module(library), class_name)
    if name == "tokenizer":  # the real BPE vocabulary cannot be downloaded; the length of a prompt is what counts
        write_tokenizer(staging / name)
        return cls.from_pretrained(staging / name, local_files_only=True)
    if library == "transformers":
        return cls(cls.config_class.from_pretrained(CONFIG_DIR / name))
    return cls.from_config(cls.load_config(CONFIG_DIR / name))


def build_random_sd_turbo(directory: Path, seed: int = 0) -> Path:
    """Saves the sd-turbo architecture with random weights in `directory` (skipped if already there)."""
    if (directory / "model_index.json").exists():
        return directory
    import diffusers

    print(f"building the sd-turbo architecture with random weights in {directory} (once)", flush=True)
    index = json.loads((CONFIG_DIR / "model_index.json").read_text())
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    torch.manual_seed(seed)
    components = {name: _component(name, *spec, staging) for name, spec in index.items() if isinstance(spec, list)}
    pipeline = getattr(diffusers, index["_class_name"])(
        **components, requires_safety_checker=index["requires_safety_checker"]
    )
    pipeline.save_pretrained(staging)
    (staging / RANDOM_MARKER).write_text("sd-turbo architecture, random weights: images are noise\n")
    staging.rename(directory)
    return directory


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{models[0] if models else platform.processor() or 'cpu'} ({os.cpu_count()} logical CPUs)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Call = Callable[[], object]
Figures = list[tuple[float, float | None]]  # (images per second, peak GPU GiB) per batch size


def measure(call: Call, images: int, args: argparse.Namespace, device: torch.device) -> tuple[float, float | None]:
    """Images per second over --repeats timed calls after the warm-up ones; peak GPU memory (GiB) if CUDA."""
    for _ in range(args.warmup):
        call()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        call()
    _sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return images * args.repeats / elapsed, peak


def load_baseline(model_dir: Path, device: torch.device) -> Any:
    from diffusers import AutoPipelineForText2Image

    pipeline = AutoPipelineForText2Image.from_pretrained(model_dir, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)  # output only; the bar costs nothing measurable
    return pipeline.to(device)


def baseline_call(pipeline: Any, args: argparse.Namespace, batch: int) -> Call:
    size = args.resolution

    def call() -> None:
        for _ in range(batch):
            pipeline(PROMPT, num_inference_steps=args.steps, guidance_scale=args.guidance, height=size, width=size)

    return call


def load_tuned(model_dir: Path, args: argparse.Namespace, device: torch.device) -> Generator:
    """The daemon's Generator with this run's options as a tier's settings (oracle.config.TierSettings)."""
    compile_mode = "reduce-overhead" if args.cuda_graphs else "default" if args.compile else "off"
    settings = TierSettings(
        model=str(model_dir), width=args.resolution, height=args.resolution, steps=args.steps, guidance=args.guidance,
        dtype=args.dtype, vae_tiling=args.vae_tiling, sdpa=args.sdpa, channels_last=args.channels_last,
        compile=compile_mode,
    )  # fmt: skip
    generator = Generator({0: settings}, device=str(device))
    generator.load(0)
    return generator


def tuned_call(generator: Generator, batch: int, tier: int = 0) -> Call:
    def call() -> None:
        generator.pixels(tier, [PROMPT] * batch, list(range(batch)))

    return call


def run_phase(name: str, make_call: Callable[[int], Call], args: argparse.Namespace, device: torch.device) -> Figures:
    figures = []
    for batch in args.batch_sizes:
        ips, peak = measure(make_call(batch), batch, args, device)
        print(f"  {name} batch {batch}: {ips:.3f} images/s", flush=True)
        figures.append((ips, peak))
    return figures


def baseline_phase(model_dir: Path, args: argparse.Namespace, device: torch.device) -> Figures:
    pipeline = load_baseline(model_dir, device)
    return run_phase("baseline", lambda batch: baseline_call(pipeline, args, batch), args, device)


def tuned_phase(model_dir: Path, args: argparse.Namespace, device: torch.device) -> Figures:
    generator = load_tuned(model_dir, args, device)
    return run_phase("tuned", lambda batch: tuned_call(generator, batch), args, device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def benchmark(model_dir: Path, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    baseline = baseline_phase(model_dir, args, device)
    _free(device)  # the baseline pipeline is gone with its phase: the tuned one gets the memory
    tuned = tuned_phase(model_dir, args, device)
    return [
        {
            "batch_size": batch,
            "tuned_images_per_second": t_ips,
            "baseline_images_per_second": b_ips,
            "ratio": t_ips / b_ips,
            "tuned_peak_gpu_memory_gib": t_peak,
            "baseline_peak_gpu_memory_gib": b_peak,
        }
        for batch, (t_ips, t_peak), (b_ips, b_peak) in zip(args.batch_sizes, tuned, baseline, strict=True)
    ]


def tier_settings(args: argparse.Namespace) -> TierSettings:
    """Tier --tier of --config (or the defaults), its models replaced by --model and --upscaler if given."""
    settings = (load_config(args.config).tiers if args.config else default_tiers())[args.tier]
    if args.tier_model:
        settings = settings.model_copy(update={"model": str(args.tier_model)})
    if args.upscaler and settings.upscale:
        upscale = settings.upscale.model_copy(update={"model": str(args.upscaler)})
        settings = settings.model_copy(update={"upscale": upscale})
    return settings


def tier_benchmark(settings: TierSettings, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Seconds per image of the tier's whole path (model, then upscaler) per batch size."""
    generator = Generator({args.tier: settings}, device=str(device))
    generator.load(args.tier)
    figures = run_phase(f"tier {args.tier}", lambda batch: tuned_call(generator, batch, args.tier), args, device)
    rows = [
        {"batch_size": batch, "seconds_per_image": 1 / ips, "peak_gpu_memory_gib": peak}
        for batch, (ips, peak) in zip(args.batch_sizes, figures, strict=True)
    ]
    width, height = generator.size(args.tier, 0)
    return {
        "tier": args.tier,
        "settings": settings.model_dump(),
        "size": f"{width}x{height}",
        "rows": rows,
        "best": min(rows, key=lambda row: row["seconds_per_image"]),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'batch':>5}{'tuned img/s':>14}{'baseline img/s':>16}{'ratio':>8}{'peak GPU GiB':>14}")
    for row in rows:
        peak = row["tuned_peak_gpu_memory_gib"]
        print(
            f"{row['batch_size']:>5}{row['tuned_images_per_second']:>14.3f}{row['baseline_images_per_second']:>16.3f}"
            f"{row['ratio']:>7.2f}x{'-' if peak is None else f'{peak:.2f}':>14}"
        )


def write_results(key: str, entry: dict[str, Any], device: torch.device) -> Path:
    """Merges this entry (a resolution, or `tierN`) into generate.json (CUDA) or generate-cpu.json (others)."""
    path = RESULTS_DIR / ("generate.json" if device.type == "cuda" else "generate-cpu.json")
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _batch_sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",")]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive batch sizes, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", type=Path, help="a diffusers text-to-image directory")
    model.add_argument("--arch", choices=["sd-turbo"], help="the real architecture with random weights")
    model.add_argument("--tier", type=int, help="time this tier as configured (model, then upscaler)")
    p.add_argument("--config", type=Path, help="with --tier: a genim-oracle config (default: the default tiers)")
    p.add_argument("--tier-model", type=Path, help="with --tier: replaces the tier's model")
    p.add_argument("--upscaler", type=Path, help="with --tier: replaces the tier's upscaler model")
    p.add_argument(
        "--cache-dir", type=Path, default=ROOT / ".cache" / "sd-turbo-random", help="where --arch is saved once"
    )
    p.add_argument("--resolution", type=int, default=512, help="width and height (default 512)")
    p.add_argument("--steps", type=int, default=1, help="inference steps (default 1, as sd-turbo's basic tier)")
    p.add_argument("--guidance", type=float, default=0.0, help="guidance scale for both paths (default 0.0)")
    p.add_argument("--batch-sizes", type=_batch_sizes, default=[1, 4, 8, 16], help="default 1,4,8,16")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per batch size (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1; 2 with --compile)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cuda:N or cpu")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto")
    p.add_argument("--sdpa", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--cuda-graphs", action="store_true")
    args = p.parse_args(argv)
    args.compile = args.compile or args.cuda_graphs
    args.warmup = max(args.warmup, 2) if args.compile else args.warmup
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.cuda_graphs and device.type != "cuda":
        print("--cuda-graphs needs a CUDA device", file=sys.stderr)
        return 2
    if args.tier is not None:
        return main_tier(args, device)
    if args.dtype == "auto":  # as oracle.generate resolves it
        args.dtype = "float16" if device.type == "cuda" else "float32"
    model_dir = args.model or build_random_sd_turbo(args.cache_dir)
    name = device_name(device)
    print(f"{model_dir} at {args.resolution}x{args.resolution}, {args.steps} step(s), on {name}", flush=True)
    rows = benchmark(model_dir, args, device)
    print_table(rows)
    best = max(rows, key=lambda row: row["tuned_images_per_second"])
    options = ("dtype", "sdpa", "channels_last", "vae_tiling", "compile", "cuda_graphs", "guidance", "repeats")
    entry = {
        "device": name,
        "device_type": device.type,
        "torch": torch.__version__,
        "diffusers": importlib.import_module("diffusers").__version__,
        "model": str(model_dir),
        "random_weights": (model_dir / RANDOM_MARKER).exists(),
        "resolution": args.resolution,
        "steps": args.steps,
        "options": {key: getattr(args, key) for key in options},
        "rows": rows,
        "best": {"batch_size": best["batch_size"], "images_per_second": best["tuned_images_per_second"]},
    }
    print(f"wrote {write_results(str(args.resolution), entry, device).relative_to(ROOT)}")
    return 0


def main_tier(args: argparse.Namespace, device: torch.device) -> int:
    settings = tier_settings(args)
    upscale = f", then {settings.upscale.model} x{settings.upscale.factor}" if settings.upscale else ""
    print(f"tier {args.tier}: {settings.model}{upscale}, on {device_name(device)}", flush=True)
    entry = tier_benchmark(settings, args, device)
    print(f"tier {args.tier} at {entry['size']}: {entry['best']['seconds_per_image']:.3f} s per image "
          f"(batch {entry['best']['batch_size']})")  # fmt: skip
    entry |= {"device": device_name(device), "device_type": device.type, "torch": torch.__version__}
    print(f"wrote {write_results(f'tier{args.tier}', entry, device).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
