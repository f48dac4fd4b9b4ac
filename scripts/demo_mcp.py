"""`make demo-mcp`: an MCP client buys one image through genim-mcp in local mode, end to end on this machine.

Starts anvil (OP-stack mode) and a js-ipfs node, deploys GenImNFT with `ape run deploy` (which brings up Circle's
USDC and Chainlink's MockV3Aggregator feeds on a local chain), starts the oracle daemon with the tiny random-weight
model (its images are noise), then runs the MCP SDK's ClientSession against `genim-mcp local` over stdio:
list_tiers (dollar prices, ETH at the contract's rate), one paid generate_image_* call that pays from a test key
(Ape's TEST::2) under the configured caps, with its progress, and saves the PNG.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from demo import ORACLE, deploy, oracle_config  # noqa: E402

from genim_devnet.localnet import anvil, ipfs_node  # noqa: E402
from genim_devnet.tiny_model import build_tiny_pipeline  # noqa: E402
from genim_mcp.terms import TIER_NAMES  # noqa: E402
from genimnft.ipfs import IpfsClient  # noqa: E402

NETWORK = "optimism:local:foundry"
T = TypeVar("T")


def say(message: str) -> None:
    print(f"[demo-mcp] {message}", flush=True)


def front_config(work: Path, rpc: str, deployment: dict, ipfs) -> Path:
    lines = [f'network = "{NETWORK}"', f'rpc_uri = "{rpc}"', f'contract = "{deployment["address"]}"',
             f"start_block = {deployment['block']}", f'ipfs_api = "{ipfs.api_url}"',
             f'gateway_url = "{ipfs.gateway_url}"', f'state_dir = "{work / "mcp-state"}"',
             'account = "TEST::2"', f"max_wei_per_call = {10**16}", f"max_wei_per_day = {10**17}",
             "poll_interval = 0.2", "payment_poll = 0.2", "progress_every = 2.0",
             'tier_sizes = ["64x64", "96x96", "128x128"]']  # fmt: skip
    path = work / "genim-mcp.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_until_ready(daemon: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """The daemon loads torch and the model first; buy once it follows the chain."""
    deadline = time.monotonic() + timeout
    while '"msg": "ready"' not in log.read_text():
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"[demo-mcp] the oracle did not start; its log: {log}")
        time.sleep(0.2)
    say("oracle daemon ready")


async def while_running(daemon: subprocess.Popen, log: Path, call: Callable[[], Awaitable[T]]) -> T:
    """`call`'s answer, unless the oracle daemon exits first: then the demo stops with its log, not at the deadline."""
    outcome: list[T] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            outcome.append(await call())
            group.cancel_scope.cancel()

        group.start_soon(run)
        while daemon.poll() is None:
            await anyio.sleep(0.5)
        group.cancel_scope.cancel()
    if not outcome:
        tail = "\n".join(log.read_text().splitlines()[-5:])
        raise SystemExit(f"[demo-mcp] the oracle daemon exited ({daemon.returncode}); its log ({log}) ends:\n{tail}")
    return outcome[0]


async def buy(config: Path, daemon: subprocess.Popen, prompt: str, tier: int, aspect: str, style: str) -> dict:
    server = StdioServerParameters(command="genim-mcp", args=["local", "--config", str(config)], env={**os.environ})

    async def progress(value: float, _total: float | None, message: str | None) -> None:
        say(f"progress {value:g}: {(message or '').splitlines()[0] if message else ''}")

    with (config.parent / "genim-mcp.log").open("w") as errlog:
        async with stdio_client(server, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            say("MCP session open (stdio): " + ", ".join(t.name for t in (await session.list_tools()).tools))
            tiers = json.loads((await session.call_tool("list_tiers", {})).content[0].text)
            for row in tiers["tiers"]:
                say(f"  {row['tool']}: {row['price']}, {row['size']} budget")
            say(f"  ETH: {tiers['how_eth_is_charged']}")
            say(f"  deadline {tiers['deadline_seconds']} s after the mint; oracle epoch {tiers['oracle_epoch']}")
            tool = f"generate_image_{TIER_NAMES[tier]}"
            say(f"calling {tool}(prompt={prompt!r}, aspect_ratio={aspect!r}, style={style!r})")
            started = time.monotonic()
            arguments = {"prompt": prompt, "aspect_ratio": aspect, "style": style}
            paid_call = functools.partial(session.call_tool, tool, arguments, progress_callback=progress)
            result = await while_running(daemon, config.parent / "oracle.log", paid_call)
            if result.isError:
                raise SystemExit(f"[demo-mcp] the tool failed: {result.content[0].text}")
            receipt = json.loads(result.content[0].text)
            say(f"tool call returned after {time.monotonic() - started:.1f} s")
            status = json.loads((await session.call_tool("refund_status", {"token_id": receipt["token_id"]}))
                                .content[0].text)  # fmt: skip
            say(f"escrow paid: {status['escrow']} (the mint sent the price plus the margin; the rest came back)")
            return receipt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="a lighthouse on a basalt cliff at dawn")
    parser.add_argument("--tier", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument("--aspect-ratio", default="16:9")
    parser.add_argument("--style", default="artistic")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genim-demo-mcp-"))
    model = str(build_tiny_pipeline(ROOT / ".cache" / "tiny-sd"))
    say(f"model: tiny random-weight pipeline at {model} (its images are NOISE)")
    with anvil() as chain, ipfs_node() as ipfs:
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.url}
        os.environ["APE_FOUNDRY_HOST"] = chain.url
        import ape  # after APE_FOUNDRY_HOST is set, Ape connects to this anvil

        with ape.networks.parse_network_choice(NETWORK):
            oracle = ape.accounts.test_accounts[ORACLE]
            deployment = deploy(env, oracle.address, work)
            say(f"GenImNFT at {deployment['address']} (USD prices {deployment['usd_prices']}); ETH/USD feed "
                f"{deployment['eth_usd_feed']}, USDC {deployment['usdc']}")  # fmt: skip
            daemon_config = oracle_config(work, chain.url, deployment, ipfs.api_url, model, tiny=True)
            daemon = subprocess.Popen(["genim-oracle", "run", "--config", str(daemon_config)], cwd=ROOT, env=env,
                                      stdout=(work / "oracle.log").open("w"), stderr=subprocess.STDOUT)  # fmt: skip
            try:
                wait_until_ready(daemon, work / "oracle.log")
                config = front_config(work, chain.url, deployment, ipfs)
                receipt = anyio.run(buy, config, daemon, args.prompt, args.tier, args.aspect_ratio, args.style)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=15)
            say(f"token: {receipt['token_id']} (mint tx {receipt['mint_tx']}, setImage tx {receipt['set_image_tx']})")
            say(f"tokenURI: {receipt['token_uri']}")
            say(f"image: {receipt['image']} ({receipt['resolution']}), gateway {receipt['gateway_url']}")
            png = ROOT / "demo-output" / f"genimnft-mcp-{receipt['token_id']}.png"
            png.parent.mkdir(exist_ok=True)
            png.write_bytes(IpfsClient(ipfs.api_url).cat(receipt["image"].removeprefix("ipfs://")))
            say(f"PNG saved to {png} ({png.stat().st_size} bytes); logs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
