"""The daemon's own latency: mint-to-ImageSet time minus generation time, p50 and p95, for 1, 10 and 100
requests, tuned next to a baseline configuration (batch size 1, poll interval 2 s) in the same run, on anvil
with 2 s blocks in OP-stack mode and the tiny model. Goal: p50 overhead <= one block time.

Times are wall-clock: a watcher polls the chain every 0.2 s and notes when each request's ImageRequested
and ImageSet logs first appear; the daemon's JSON log gives each image's generation seconds.

The paid MCP tool (row "mcp-local"): an MCP client calls generate_image_basic through `genim-mcp local` over
stdio, 1 or 10 calls at once; tool call to result minus the image's generation time. It includes the mint the
tool sends and waits for (one block at most), so its goal is the daemon's tuned overhead plus one block.

x402 (row "x402-hosted"): 1 or 10 agents at once, each the x402 SDK's MCP client (`x402MCPSession`, exact EVM
scheme, its own key and USDC) calling generate_image_basic on `genim-mcp hosted` over streamable HTTP; the
relayer settles each payment with mintWithAuthorization. Tool call (the PaymentRequired round trip included) to
result minus generation; same goal. The agent signs and waits for no transaction of its own.

    python bench/latency.py [--sizes 1,10,100] [--mcp-sizes 1,10] [--x402-sizes 1,10]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
from eth_account.signers.local import LocalAccount
from harness import ROOT, Minter, generation_seconds, local_stack, oracle_config, percentile, start_daemon, write_config
from mcp.types import LoggingMessageNotificationParams
from x402.mcp import x402MCPSession

from tests.mcp.conftest import HostedServer, Stack, front_config, hosted_server, http_session, stdio_session
from tests.mcp.x402_parts import buyer_client
from tests.services import account_key

RESULTS = ROOT / "bench" / "results" / "latency.json"
MCP_RESULTS = ROOT / "bench" / "results" / "latency-mcp.json"  # MCP rows beside the tuned daemon of the same run
X402_RESULTS = ROOT / "bench" / "results" / "latency-x402.json"  # x402 rows beside the daemon and MCP rows of a run
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
        front = front_config(Stack(stack.chain.url, stack.deployment, stack.ipfs, work), work / "front.toml",
                             account="TEST::2", max_wei_per_call=10**18, max_wei_per_day=10**20, poll_interval=0.1,
                             payment_poll=0.1)  # fmt: skip
        calls = anyio.run(_timed_calls, front, count)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    served, row = _served_row("mcp-local", count, calls, config_path)
    return {
        **row,
        # Where the time goes (p50): call -> paymcp's "paid" (100), -> "image set" note, -> result.
        "to_paid_p50_s": round(percentile([call.paid_s for call in served], 50), 2),
        "paid_to_image_set_p50_s": round(percentile([call.image_set_s - call.paid_s for call in served], 50), 2),
        "image_set_to_result_p50_s": round(percentile([call.total_s - call.image_set_s for call in served], 50), 2),
    }


def _served_row(name: str, count: int, calls: list, config_path: Path) -> tuple[list, dict]:
    """The calls that got a token, and the figures every MCP row has: latency and overhead (minus the image's
    generation, from the daemon's log) p50/p95, generation mean."""
    generated = generation_seconds(config_path.with_suffix(".log"))
    served = [call for call in calls if call.token_id is not None]
    overheads = [call.total_s - generated.get(call.token_id, 0.0) for call in served]
    return served, {
        "config": name,
        "requests": count,
        "served": len(served),
        "latency_p50_s": round(percentile([call.total_s for call in served], 50), 2),
        "overhead_p50_s": round(percentile(overheads, 50), 2),
        "overhead_p95_s": round(percentile(overheads, 95), 2),
        "generation_mean_s": round(sum(generated.values()) / max(1, len(generated)), 3),
    }


def run_x402(count: int, block_time: float) -> dict:
    """`count` agents at once paying by x402 through `genim-mcp hosted` (relayer TEST::16), tuned daemon."""
    work = Path(tempfile.mkdtemp(prefix="genim-latency-x402-"))
    agents = [account_key(2 + i) for i in range(count)]
    with local_stack(block_time) as stack:
        stack.deployment.stack.fund_usdc([agent.address for agent in agents])
        config = oracle_config(stack.deployment, stack.ipfs, stack.model, work / "state", **CONFIGS["tuned"])
        config_path = write_config(config, work / "oracle.toml")
        daemon = start_daemon(config_path)
        time.sleep(8)  # the daemon loads torch and the model before it follows the chain
        front = front_config(Stack(stack.chain.url, stack.deployment, stack.ipfs, work), work / "front.toml",
                             relayer="TEST::16", poll_interval=0.1)  # fmt: skip
        with hosted_server(front) as server:
            calls = anyio.run(_x402_calls, server, stack.deployment, agents)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    served, row = _served_row("x402-hosted", count, calls, config_path)
    return {
        **row,
        # Where the time goes (p50): call -> "paid: token N" (the relayer's mint mined), -> result.
        "to_paid_p50_s": round(percentile([call.paid_s for call in served], 50), 2),
        "paid_to_result_p50_s": round(percentile([call.total_s - call.paid_s for call in served], 50), 2),
    }


@dataclass
class TimedCall:
    token_id: int | None = None
    paid_s: float = math.nan
    image_set_s: float = math.nan
    total_s: float = math.nan


async def _timed_calls(front: Path, count: int) -> list[TimedCall]:
    results: list[TimedCall] = []
    async with stdio_session(front) as session, anyio.create_task_group() as group:

        async def call(i: int) -> None:
            timed, started = TimedCall(), time.monotonic()

            async def progress(value: float, _total: float | None, message: str | None) -> None:
                if value >= 100 and math.isnan(timed.paid_s):
                    timed.paid_s = time.monotonic() - started
                if (message or "").startswith("image set"):
                    timed.image_set_s = time.monotonic() - started

            result = await session.call_tool("generate_image_basic", {"prompt": f"latency probe {i}: a lighthouse"},
                                             progress_callback=progress)  # fmt: skip
            timed.total_s = time.monotonic() - started
            timed.token_id = None if result.isError else json.loads(result.content[0].text)["token_id"]
            results.append(timed)

        for i in range(count):
            group.start_soon(call, i)
    return results


async def _x402_calls(server: HostedServer, deployment, agents: list[LocalAccount]) -> list[TimedCall]:
    network, usdc = f"eip155:{deployment.w3.eth.chain_id}", deployment.stack.usdc.address
    results: list[TimedCall] = []

    async def call(i: int, agent: LocalAccount) -> None:
        timed = TimedCall()

        async def logged(params: LoggingMessageNotificationParams) -> None:
            if str(params.data).startswith("paid: token") and math.isnan(timed.paid_s):
                timed.paid_s = time.monotonic() - started

        async with http_session(server, logged) as session:  # type: ignore[arg-type]
            paying = x402MCPSession(session, buyer_client(agent, network, usdc, cap=10**6))
            started = time.monotonic()
            result = await paying.call_tool("generate_image_basic", {"prompt": f"latency probe {i}: a lighthouse"})
            timed.total_s = time.monotonic() - started
        timed.token_id = None if result.is_error else json.loads(result.content[0].text)["token_id"]
        results.append(timed)

    async with anyio.create_task_group() as group:
        for i, agent in enumerate(agents):
            group.start_soon(call, i, agent)
    return results


def merge(path: Path, rows: list[dict], block_time: float) -> None:
    """Rows replace earlier ones of the same configuration and size, so a partial run keeps the rest."""
    if not rows:
        return
    old = json.loads(path.read_text())["runs"] if path.is_file() else []
    fresh = {(row["config"], row["requests"]) for row in rows}
    kept = [row for row in old if (row["config"], row["requests"]) not in fresh]
    path.write_text(json.dumps({"block_time_s": block_time, "runs": kept + rows}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100", help="daemon rows; empty for none")
    parser.add_argument("--mcp-sizes", default="1,10", help="concurrent paid MCP tool calls; empty for none")
    parser.add_argument("--x402-sizes", default="1,10", help="concurrent x402 agents; empty for none")
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
    merge(RESULTS, rows, args.block_time)
    mcp_rows = []
    mcp_sizes = {int(n) for n in args.mcp_sizes.split(",") if n}
    x402_sizes = {int(n) for n in args.x402_sizes.split(",") if n}
    for count in sorted(mcp_sizes | x402_sizes):
        daemon = run("tuned", count, args.block_time)
        mcp_rows.append(daemon)
        goal = daemon["overhead_p50_s"] + args.block_time
        met = {True: "met", False: "missed"}
        for row in ([run_mcp(count, args.block_time)] if count in mcp_sizes else []) + (
            [run_x402(count, args.block_time)] if count in x402_sizes else []
        ):
            mcp_rows.append(row)
            print(
                f"{row['config']} requests={count} overhead_p50_s={row['overhead_p50_s']} overhead_p95_s="
                f"{row['overhead_p95_s']} daemon_overhead_p50_s={daemon['overhead_p50_s']} daemon_overhead_p95_s="
                f"{daemon['overhead_p95_s']} goal_p50<={goal:.2f}s ({met[row['overhead_p50_s'] <= goal]}) "
                f"served={row['served']}/{count}",
                flush=True,
            )
    merge(MCP_RESULTS, [row for row in mcp_rows if row["config"] != "x402-hosted"], args.block_time)
    merge(X402_RESULTS, [row for row in mcp_rows if row["requests"] in x402_sizes], args.block_time)


if __name__ == "__main__":
    main()
