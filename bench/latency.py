"""The daemon's own latency: mint-to-ImageSet time minus generation time, p50 and p95, for 1, 10 and 100
requests, tuned next to a baseline configuration (batch size 1, poll interval 2 s) in the same run, on anvil
with 2 s blocks in OP-stack mode and the tiny model. Goal: p50 overhead <= one block time.

Times are wall-clock: a watcher polls the chain every 0.2 s and notes when each request's ImageRequested
and ImageSet logs first appear; the daemon's JSON log gives each image's generation seconds.

The paid MCP tool (row "mcp-local"): an MCP client calls generate_image_basic through `genim-mcp local` over
stdio, 1 or 10 calls at once; tool call to result minus the image's generation time. It includes the mint the
tool sends and waits for (one block at most), so its goal is the daemon's tuned overhead plus one block.

    python bench/latency.py [--sizes 1,10,100] [--mcp-sizes 1,10]
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

import anyio
from harness import ROOT, Minter, generation_seconds, local_stack, oracle_config, percentile, start_daemon, write_config

from tests.mcp.conftest import Stack, front_config, stdio_session

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


def run_mcp(count: int, block_time: float) -> dict:
    """`count` concurrent paid tool calls from one MCP client in local mode, against the tuned daemon."""
    work = Path(tempfile.mkdtemp(prefix="genim-latency-mcp-"))
    with local_stack(block_time) as stack:
        config = oracle_config(stack.deployment, stack.ipfs, stack.model, work / "state", **CONFIGS["tuned"])
        config_path = write_config(config, work / "oracle.toml")
        daemon = start_daemon(config_path)
        time.sleep(8)  # the daemon loads torch and the model before it follows the chain
        front = front_config(Stack(stack.chain.url, stack.deployment, "", stack.ipfs, work), work / "front.toml",
                             account="TEST::2", max_wei_per_call=10**18, max_wei_per_day=10**20, poll_interval=0.1,
                             payment_poll=0.1)  # fmt: skip
        calls = anyio.run(_timed_calls, front, count)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    generated = generation_seconds(config_path.with_suffix(".log"))
    served = {token: seconds for token, seconds in calls if token is not None}
    overheads = [seconds - generated.get(token, 0.0) for token, seconds in served.items()]
    return {
        "config": "mcp-local",
        "requests": count,
        "served": len(served),
        "latency_p50_s": round(percentile(list(served.values()), 50), 2),
        "overhead_p50_s": round(percentile(overheads, 50), 2),
        "overhead_p95_s": round(percentile(overheads, 95), 2),
        "generation_mean_s": round(sum(generated.values()) / max(1, len(generated)), 3),
    }


async def _timed_calls(front: Path, count: int) -> list[tuple[int | None, float]]:
    results: list[tuple[int | None, float]] = []
    async with stdio_session(front) as session, anyio.create_task_group() as group:

        async def call(i: int) -> None:
            started = time.monotonic()
            result = await session.call_tool("generate_image_basic", {"prompt": f"latency probe {i}: a lighthouse"})
            token = None if result.isError else json.loads(result.content[0].text)["token_id"]
            results.append((token, time.monotonic() - started))

        for i in range(count):
            group.start_soon(call, i)
    return results


def merge(rows: list[dict], block_time: float) -> None:
    """Rows replace earlier ones of the same configuration and size, so a partial run keeps the rest."""
    old = json.loads(RESULTS.read_text())["runs"] if RESULTS.is_file() else []
    fresh = {(row["config"], row["requests"]) for row in rows}
    kept = [row for row in old if (row["config"], row["requests"]) not in fresh]
    RESULTS.write_text(json.dumps({"block_time_s": block_time, "runs": kept + rows}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100", help="daemon rows; empty for none")
    parser.add_argument("--mcp-sizes", default="1,10", help="concurrent paid MCP tool calls; empty for none")
    parser.add_argument("--block-time", type=float, default=2.0)
    args = parser.parse_args()
    rows = []
    for count in (int(n) for n in args.sizes.split(",") if n):
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
    for count in (int(n) for n in args.mcp_sizes.split(",") if n):
        row = run_mcp(count, args.block_time)
        rows.append(row)
        print(
            f"mcp requests={count} overhead_p50_s={row['overhead_p50_s']} overhead_p95_s={row['overhead_p95_s']} "
            f"latency_p50_s={row['latency_p50_s']} goal: daemon tuned overhead + {args.block_time}s "
            f"served={row['served']}/{count}",
            flush=True,
        )
    merge(rows, args.block_time)


if __name__ == "__main__":
    main()
