"""`make demo-x402`: an agent buys one image with USDC through x402, paying by itself, end to end on this machine.

Starts anvil (OP-stack mode) and a js-ipfs node, deploys GenImNFT with `ape run deploy` (Circle's FiatTokenV2_2 as
the USDC rail and Chainlink's MockV3Aggregator feeds on a local chain), gives the agent's key (Ape's TEST::2) $5
of USDC and no more, starts the oracle daemon with the tiny random-weight model (its images are noise) and
`genim-mcp hosted` with a relayer key (TEST::16, gas money only). The agent is the x402 SDK's own MCP client,
configured as a buyer's agent must be: the `exact` EVM scheme with its key, and spend controls that allow this
chain's USDC with a cap per payment. It prints the token, its tokenURI and the x402 settlement.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from web3 import Web3
from x402 import x402Client
from x402.mcp import x402MCPSession
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.schemas import NoMatchingRequirementsError, PaymentRequired

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from demo import deploy, oracle_config  # noqa: E402
from demo_mcp import front_config, wait_until_ready  # noqa: E402

from genim_devnet.localnet import anvil, free_port, ipfs_node  # noqa: E402
from genim_devnet.stack import DOLLAR, USDC_OWNER, dev_account  # noqa: E402
from genim_devnet.tiny_model import build_tiny_pipeline  # noqa: E402
from genim_devnet.txn import send  # noqa: E402
from genim_devnet.usdc import FIAT_TOKEN, artifact  # noqa: E402
from genim_mcp.terms import TIER_NAMES  # noqa: E402

AGENT, RELAYER = 2, 16
CAP = DOLLAR  # the agent pays at most $1 a call


def say(message: str) -> None:
    print(f"[demo-x402] {message}", flush=True)


def agent_client(network: str, usdc: str) -> x402Client:
    """What a buyer's agent configures: the SDK's `exact` EVM scheme for its key on this network, and this USDC as
    an allowed asset with its own cap (the SDK allows only its default assets, $1 a payment, otherwise)."""
    client = x402Client()
    client.register(network, ExactEvmClientScheme(dev_account(AGENT)))
    controls = {"allowed_assets": [{"network": network, "asset": usdc, "max_amount_per_payment": str(CAP)}]}
    return client.set_spend_controls(controls)  # type: ignore[arg-type]


def start_front(work: Path, config: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (work / "genim-mcp.log").open("w")
    front = subprocess.Popen(["genim-mcp", "hosted", "--config", str(config), "--port", str(port), "--verbose"],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/static/pay.css", timeout=1).status_code == 200:
                return front, url
        except httpx.HTTPError:
            pass
        if front.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"[demo-x402] genim-mcp did not start; its log: {work / 'genim-mcp.log'}")
        time.sleep(0.2)


async def buy(url: str, client: x402Client, tool: str, arguments: dict) -> tuple[dict, dict]:
    async with streamable_http_client(f"{url}/mcp") as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        probe = await session.call_tool(tool, arguments)  # what the agent's client sees first
        required = PaymentRequired.model_validate(probe.structuredContent)
        say(f"PaymentRequired: {json.dumps(required.accepts[0].model_dump(by_alias=True))}")
        defaults = x402Client().register(required.accepts[0].network, ExactEvmClientScheme(dev_account(AGENT)))
        try:
            await defaults.create_payment_payload(required)
        except NoMatchingRequirementsError as exc:
            say(f"an agent on the SDK's defaults refuses it: {exc}")
        say(f"calling {tool} through x402MCPSession (it signs and retries with _meta['x402/payment'])")
        started = time.monotonic()
        result = await x402MCPSession(session, client).call_tool(tool, arguments)
        if result.is_error:
            raise SystemExit(f"[demo-x402] the tool failed: {result.content[0].text}")
        say(f"tool call returned after {time.monotonic() - started:.1f} s")
        return json.loads(result.content[0].text), result.payment_response.model_dump(by_alias=True, exclude_none=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="a lighthouse on a basalt cliff at dawn")
    parser.add_argument("--tier", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument("--aspect-ratio", default="16:9")
    parser.add_argument("--style", default="artistic")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genim-demo-x402-"))
    model = str(build_tiny_pipeline(ROOT / ".cache" / "tiny-sd"))
    say(f"model: tiny random-weight pipeline at {model} (its images are NOISE)")
    with anvil() as chain, ipfs_node() as ipfs:
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.url}
        w3 = Web3(Web3.HTTPProvider(chain.url))
        deployment = deploy(env, dev_account(1).address, work)
        usdc = w3.eth.contract(address=deployment["usdc"], abi=artifact(FIAT_TOKEN)["abi"])
        agent, relayer = dev_account(AGENT).address, dev_account(RELAYER).address
        send(w3, dev_account(USDC_OWNER), usdc.functions.mint(agent, 5 * DOLLAR))
        say(f"GenImNFT at {deployment['address']}; USDC {deployment['usdc']}; the agent {agent} holds $5 of USDC")
        daemon = subprocess.Popen(
            ["genim-oracle", "run", "--config", str(oracle_config(work, chain.url, deployment, ipfs.api_url, model,
                                                                  tiny=True))],
            cwd=ROOT, env=env, stdout=(work / "oracle.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        front = None
        try:
            wait_until_ready(daemon, work / "oracle.log")
            config = front_config(work, chain.url, deployment, ipfs)
            with config.open("a") as extra:
                extra.write(f'relayer = "TEST::{RELAYER}"\nx402_window = 300\n')
            front, url = start_front(work, config, env)
            say(f"genim-mcp hosted at {url}/mcp, relayer {relayer} (pays the gas, holds only gas money)")
            balances = usdc.functions.balanceOf(agent).call(), w3.eth.get_balance(agent), w3.eth.get_balance(relayer)
            tool = f"generate_image_{TIER_NAMES[args.tier]}"
            arguments = {"prompt": args.prompt, "aspect_ratio": args.aspect_ratio, "style": args.style}
            receipt, settlement = anyio.run(buy, url, agent_client(f"eip155:{w3.eth.chain_id}", deployment["usdc"]),
                                            tool, arguments)  # fmt: skip
        finally:
            for process in (front, daemon):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=15)
        say(f"token: {receipt['token_id']} (mint tx {receipt['mint_tx']}, setImage tx {receipt['set_image_tx']})")
        say(f"tokenURI: {receipt['token_uri']}")
        say(f"image: {receipt['image']} ({receipt['resolution']})")
        say(f"x402 settlement (_meta['x402/payment-response']): {json.dumps(settlement)}")
        paid = balances[0] - usdc.functions.balanceOf(agent).call()
        say(f"the agent paid ${paid / DOLLAR:.2f} of USDC into the token's escrow and "
            f"{balances[1] - w3.eth.get_balance(agent)} wei of ETH; the relayer paid "
            f"{balances[2] - w3.eth.get_balance(relayer)} wei of gas; logs in {work}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
