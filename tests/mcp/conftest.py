"""Real parts for the MCP front's tests: anvil, GenImNFT, the ETH/USD test double, js-ipfs, the oracle daemon with
the tiny model, and genim-mcp itself as its own process, reached through the SDK's real ClientSession."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from web3 import Web3

from genim_devnet.localnet import anvil, free_port
from tests.services import PRICES, SIZES, Deployment, account_key, oracle_config, start_daemon, write_config

ROOT = Path(__file__).resolve().parents[2]
USD_PER_ETH = 3500
FEED_DECIMALS = 8


@dataclass
class Stack:
    url: str
    deployment: Deployment
    feed: str
    ipfs: object
    work: Path
    daemon: subprocess.Popen | None = None

    @property
    def w3(self) -> Web3:
        return self.deployment.w3

    def rpc(self, method: str, *params: object) -> object:
        return self.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


FEED_SOURCE = "contracts/test/MockEthUsdAggregator.sol"


def feed_type(project):
    """The ETH/USD aggregator test double's contract type. Loaded by source: Ape 0.8's lazy `project.<Name>`
    compiles only the source it was first asked for (GenImNFT), and then no longer finds this one."""
    return project.load_contracts(FEED_SOURCE)["MockEthUsdAggregator"].contract_type


def deploy_feed(deployment: Deployment, contract_type, usd_per_eth: int = USD_PER_ETH) -> str:
    factory = deployment.w3.eth.contract(
        abi=[abi.model_dump(by_alias=True, mode="json") for abi in contract_type.abi],
        bytecode=contract_type.deployment_bytecode.bytecode,
    )
    receipt = deployment.send(deployment.owner, factory.constructor(usd_per_eth * 10**FEED_DECIMALS))
    return receipt["contractAddress"]


@contextlib.contextmanager
def local_stack(project, ipfs, work: Path, model: Path | None) -> Iterator[Stack]:
    """anvil + GenImNFT + the feed test double; with `model`, the oracle daemon runs too."""
    with anvil() as chain:
        deployment = Deployment(chain.url, project.GenImNFT.contract_type)
        feed = deploy_feed(deployment, feed_type(project))
        stack = Stack(chain.url, deployment, feed, ipfs, work)
        if model is not None:
            config = oracle_config(deployment, ipfs, model, work / "oracle-state")
            stack.daemon = start_daemon(write_config(config, work / "oracle.toml"))
        try:
            yield stack
        finally:
            if stack.daemon is not None:
                stack.daemon.send_signal(signal.SIGTERM)
                stack.daemon.wait(timeout=30)


@pytest.fixture(scope="module")
def stack(project, ipfs, tiny_model, tmp_path_factory) -> Iterator[Stack]:
    with local_stack(project, ipfs, tmp_path_factory.mktemp("mcp-stack"), tiny_model) as running:
        yield running


def front_config(stack: Stack, path: Path, **overrides: object) -> Path:
    """A genim-mcp TOML config for `stack`, as an operator would write it."""
    values: dict[str, object] = {
        "network": "optimism:local:foundry",
        "rpc_uri": stack.url,
        "public_rpc_uri": stack.url,
        "contract": stack.deployment.address,
        "chain_name": "Anvil (local)",
        "ipfs_api": stack.ipfs.api_url,
        "gateway_url": stack.ipfs.gateway_url,
        "state_dir": str(path.parent / "front-state"),
        "start_block": stack.deployment.block,
        "poll_interval": 0.2,
        "payment_poll": 0.2,
        "eth_usd_feed": stack.feed,
        "fallback_usd_per_eth": 2000.0,
        "account": "TEST::5",
        "max_wei_per_call": PRICES[2],
        "max_wei_per_day": 10 * PRICES[2],
        "progress_every": 1.0,
        "tier_sizes": [f"{side}x{side}" for side in SIZES.values()],
    }
    values.update(overrides)
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    return path


@contextlib.asynccontextmanager
async def stdio_session(config: Path) -> AsyncIterator[ClientSession]:
    """genim-mcp in local mode as the MCP client's subprocess, over stdio."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "genim_mcp.cli", "local", "--config", str(config)],
        env={**os.environ},
        cwd=str(ROOT),
    )
    with (config.parent / "front.log").open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@dataclass
class HostedServer:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def hosted_server(config: Path) -> Iterator[HostedServer]:
    """genim-mcp in hosted mode as its own process: streamable HTTP at /mcp and the pay page on one port."""
    port = free_port()
    log = config.parent / "front-hosted.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "genim_mcp.cli", "hosted", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    server = HostedServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"genim-mcp exited with {process.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/static/pay.css", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("genim-mcp hosted did not start")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def http_session(server: HostedServer) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(f"{server.url}/mcp") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@dataclass
class ProgressLog:
    """Every progress notification of one tool call, in order."""

    notes: list[tuple[float, str | None]] = field(default_factory=list)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.notes.append((progress, message))

    def payment_url(self) -> str | None:
        for _progress, message in self.notes:
            for word in (message or "").split():
                if word.startswith(("http://", "https://", "ethereum:")):
                    return word
        return None

    def after_payment(self) -> list[tuple[float, str | None]]:
        return [(p, m) for p, m in self.notes if p > 100]


def nonce(stack: Stack, index: int) -> int:
    return stack.w3.eth.get_transaction_count(account_key(index).address)


def json_content(result) -> dict:
    return json.loads(result.content[0].text)
