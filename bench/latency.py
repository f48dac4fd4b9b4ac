"""The daemon's own latency: mint-to-ImageSet time minus generation time, p50 and p95, for 1, 10 and 100
requests, tuned next to a baseline configuration (batch size 1, poll interval 2 s) in the same run, on anvil
with 2 s blocks in OP-stack mode and the tiny model. Goal: p50 overhead <= one block time.

Times are wall-clock: a watcher polls the chain every 0.2 s and notes when each request's ImageRequested
and ImageSet logs first appear; the daemon's JSON log gives each image's generation seconds.

    python bench/latency.py [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

from harness import ROOT, Minter, generation_seconds, local_stack, oracle_config, percentile, start_daemon, write_config

RESULTS = ROOT / "bench" / "results" / "latency.json"
CONFIGS = {
    "tuned": {"poll_interval": 0.2, "batch_wait": 0.5, "batch_size": 16, "generation_batch": 8},
    "baseline": {"poll_interval": 2.0, "batch_wait": 0.0, "batch_size": 1, "generation_batch": 1},
}


def watch(deployment, expected: int, timeout: float) -> tuple[dict[int, float], dict[int, float]]:
    """Wall time each token's ImageRequested and ImageSet were first seen."""
    requested: dict[int, float] = {}
    image_set: dict[int, float] = {}
    next_block = deployment.block
    deadline = time.monotonic() + timeout
    while len(image_set) < expected and time.monotonic() < deadline:
        head = deployment.w3.eth.block_number
        if head >= next_block:
            now = time.time()
            span = {"from_block": next_block, "to_block": head}
            for log in deployment.nft.events.ImageRequested().get_logs(**span):
                requested.setdefault(log["args"]["tokenId"], now)
            for log in deployment.nft.events.ImageSet().get_logs(**span):
                image_set.setdefault(log["args"]["tokenId"], now)
            next_block = head + 1
        time.sleep(0.2)
    return requested, image_set


def run(name: str, count: int, block_time: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"genim-latency-{name}-"))
    with local_stack(block_time) as stack:
        config = oracle_config(stack.deployment, stack.ipfs, stack.model, work / "state", **CONFIGS[name])
        config_path = write_config(config, work / "oracle.toml")
        daemon = start_daemon(config_path)
        time.sleep(8)  # the daemon loads torch and the model before it follows the chain
        Minter(stack.deployment, accounts=20).burst(count)
        requested, image_set = watch(stack.deployment, count, timeout=60 + 6 * count)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    generated = generation_seconds(config_path.with_suffix(".log"))
    overheads = [image_set[t] - requested[t] - generated.get(t, 0.0) for t in image_set if t in requested]
    latencies = [image_set[t] - requested[t] for t in image_set if t in requested]
    return {
        "config": name,
        "requests": count,
        "served": len(image_set),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "overhead_p50_s": round(percentile(overheads, 50), 2),
        "overhead_p95_s": round(percentile(overheads, 95), 2),
        "generation_mean_s": round(sum(generated.values()) / max(1, len(generated)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--block-time", type=float, default=2.0)
    args = parser.parse_args()
    rows = []
    for count in (int(n) for n in args.sizes.split(",")):
        tuned, baseline = (run(name, count, args.block_time) for name in ("tuned", "baseline"))
        rows += [tuned, baseline]
        ratio = baseline["overhead_p50_s"] / tuned["overhead_p50_s"] if tuned["overhead_p50_s"] > 0 else float("inf")
        print(
            f"requests={count} tuned_overhead_p50_s={tuned['overhead_p50_s']} tuned_overhead_p95_s="
            f"{tuned['overhead_p95_s']} baseline_overhead_p50_s={baseline['overhead_p50_s']} baseline_overhead_p95_s="
            f"{baseline['overhead_p95_s']} ratio={ratio:.1f}x goal_p50<={args.block_time}s "
            f"served={tuned['served']}/{baseline['served']}",
            flush=True,
        )
    RESULTS.write_text(json.dumps({"block_time_s": args.block_time, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
