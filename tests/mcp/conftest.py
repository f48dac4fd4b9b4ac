"""Real parts for the MCP front's tests: anvil with the contract stack of genim_devnet.stack (GenImNFT, Circle's
USDC, Chainlink's MockV3Aggregator as the ETH/USD and sequencer feeds), js-ipfs, the oracle daemon with the tiny
model, and genim-mcp itself as its own process, reached through the SDK's real ClientSession."""

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

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import LoggingMessageNotificationParams
from web3 import Web3
from web3.types import TxReceipt

from genim_devnet.localnet import anvil, free_port
from genim_devnet.stack import Stack as Contracts
from tests.services import SIZES, Deployment, account_key, oracle_config, start_daemon, write_config

ROOT = Path(__file__).resolve().parents[2]
MARGIN_BPS = 200  # the front's default price_margin_bps


@dataclass
class Stack:
    url: str
    deployment: Deployment
    ipfs: object
    work: Path
    daemon: subprocess.Popen | None = None

    @property
    def w3(self) -> Web3:
        return self.deployment.w3

    @property
    def contracts(self) -> Contracts:
        """GenImNFT, USDC and the feeds (set_price, make_stale, ...) with their keys."""
        return self.deployment.stack

    def rpc(self, method: str, *params: object) -> object:
        return self.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]

    def advance(self, seconds: int) -> None:
        """Moves chain time on by `seconds` and mines a block (past the contract's 60 s ETH/USD rate cache, say)."""
        self.rpc("evm_increaseTime", seconds)
        self.rpc("evm_mine")


@contextlib.contextmanager
def local_stack(project, ipfs, work: Path, model: Path | None) -> Iterator[Stack]:
    """anvil + GenImNFT, USDC and the feeds (genim_devnet.stack); with `model`, the oracle daemon runs too."""
    with anvil() as chain:
        deployment = Deployment(chain.url, project.GenImNFT.contract_type)
        stack = Stack(chain.url, deployment, ipfs, work)
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
        "price_refresh": 0.5,
        "account": "TEST::5",
        "max_wei_per_call": 10**16,
        "max_wei_per_day": 10**17,
        "progress_every": 1.0,
        "tier_sizes": [f"{side}x{side}" for side in SIZES.values()],
    }
    values.update(overrides)
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    return path


@dataclass
class LogLog:
    """Every log message the server sent the client (the payment link, a failed mint's reason)."""

    messages: list[str] = field(default_factory=list)

    async def __call__(self, params: LoggingMessageNotificationParams) -> None:
        self.messages.append(str(params.data))


@contextlib.asynccontextmanager
async def stdio_session(config: Path, logs: LogLog | None = None) -> AsyncIterator[ClientSession]:
    """genim-mcp in local mode as the MCP client's subprocess, over stdio."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "genim_mcp.cli", "local", "--config", str(config)],
        env={**os.environ},
        cwd=str(ROOT),
    )
    with (config.parent / "front.log").open("a") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, logging_callback=logs) as session,
        ):
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
async def http_session(server: HostedServer, logs: LogLog | None = None) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(f"{server.url}/mcp") as (read, write, _),
        ClientSession(read, write, logging_callback=logs) as session,
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
        urls = self.payment_urls()
        return urls[0] if urls else None

    def payment_urls(self) -> list[str]:
        """Every payment link, in order: a call whose mint reverted goes on with a fresh one."""
        urls: list[str] = []
        for _progress, message in self.notes:
            for word in (message or "").split():
                if word.startswith(("http://", "https://", "ethereum:")) and word not in urls:
                    urls.append(word)
        return urls

    def after_payment(self) -> list[tuple[float, str | None]]:
        return [(p, m) for p, m in self.notes if p > 100]


async def payment_urls(progress: ProgressLog, count: int = 1, timeout: float = 30) -> list[str]:
    """The call's first `count` payment links, once they came."""
    with anyio.fail_after(timeout):
        while len(urls := progress.payment_urls()) < count:
            await anyio.sleep(0.05)
    return urls


def order_document(server: HostedServer, pay_url: str) -> dict:
    """The pay page's status document for the payment behind `pay_url` (what the page renders)."""
    return httpx.get(f"{server.url}/api/orders/{pay_url.rsplit('/', 1)[1]}", timeout=10).json()


def send_tx(stack: Stack, sender: int, data: bytes, value: int, gas: int = 400_000) -> TxReceipt:
    """A transaction to the contract as a wallet sends it when told to go ahead without simulating: a mint that
    reverts is mined, and costs its gas."""
    key, w3 = account_key(sender), stack.w3
    tx = {
        "from": key.address,
        "to": stack.deployment.address,
        "value": value,
        "data": data,
        "gas": gas,
        "nonce": w3.eth.get_transaction_count(key.address),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": 10 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**6,
    }
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction))


def gas_cost(receipt: TxReceipt) -> int:
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def nonce(stack: Stack, index: int) -> int:
    return stack.w3.eth.get_transaction_count(account_key(index).address)


def json_content(result) -> dict:
    return json.loads(result.content[0].text)
