"""Chainlink's real MockV3Aggregator as an ETH/USD feed and an L2 sequencer uptime feed on a dev chain."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import solcx
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from genim_devnet.localnet import ROOT
from genim_devnet.txn import deploy, send

CHAINLINK = ROOT / ".cache/vendor/chainlink-contracts"  # toolchain/vendor.sh unpacks it
MOCK = "src/v0.8/shared/mocks/MockV3Aggregator.sol"
COMPILED = ROOT / ".cache/compiled"
SOLC_VERSION = "0.8.28"
USD_DECIMALS = 8  # Chainlink's ETH/USD
GRACE_PERIOD = 3600  # Chainlink's L2 guide: reject prices for this long after the sequencer comes back
SEQUENCER_UP, SEQUENCER_DOWN = 0, 1


def mock_aggregator() -> tuple[list[dict[str, Any]], str]:
    """MockV3Aggregator's (abi, creation bytecode), compiled with the project's solc once per source hash."""
    sources = {str(p.relative_to(CHAINLINK)): {"content": p.read_text()} for p in sorted(CHAINLINK.rglob("*.sol"))}
    settings = {"evmVersion": "cancun", "optimizer": {"enabled": True, "runs": 200},
                "outputSelection": {MOCK: {"MockV3Aggregator": ["abi", "evm.bytecode.object"]}}}  # fmt: skip
    standard = {"language": "Solidity", "sources": sources, "settings": settings}
    key = hashlib.sha256(json.dumps([SOLC_VERSION, standard], sort_keys=True).encode()).hexdigest()[:16]
    cached = COMPILED / f"MockV3Aggregator-{key}.json"
    if not cached.exists():
        # py-solc-x runs `solc-v0.8.28` from SOLCX_BINARY_PATH: the Makefile links it to toolchain/solc.js.
        binary = Path(os.environ.get("SOLCX_BINARY_PATH", ROOT / ".cache/solcx")) / f"solc-v{SOLC_VERSION}"
        out = solcx.compile_standard(standard, solc_binary=binary)["contracts"][MOCK]["MockV3Aggregator"]
        COMPILED.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps({"abi": out["abi"], "bytecode": "0x" + out["evm"]["bytecode"]["object"]}))
        tmp.replace(cached)
    compiled = json.loads(cached.read_text())
    return compiled["abi"], compiled["bytecode"]


def usd_answer(usd_per_eth: Decimal | int | str) -> int:
    """A dollar price as the feed's 8-decimal integer answer (3000 -> 300_000_000_000)."""
    return int(Decimal(usd_per_eth) * 10**USD_DECIMALS)


@dataclass(frozen=True)
class Feeds:
    """An ETH/USD feed and a sequencer uptime feed (both MockV3Aggregator), and the account that updates them."""

    eth_usd: Contract
    sequencer: Contract
    updater: LocalAccount

    @property
    def w3(self) -> Web3:
        return self.eth_usd.w3

    def now(self) -> int:
        """The latest block's timestamp (anvil starts at wall-clock time; tests may move it)."""
        return self.w3.eth.get_block("latest")["timestamp"]

    def set_price(self, usd_per_eth: Decimal | int | str, age: int = 0) -> TxReceipt:
        """A new ETH/USD round; updated `age` seconds before the latest block (0: fresh)."""
        return self._round(self.eth_usd, usd_answer(usd_per_eth), self.now() - age)

    def make_stale(self, age: int) -> TxReceipt:
        """Keeps the current price but dates its round `age` seconds before the latest block."""
        return self._round(self.eth_usd, self.eth_usd.functions.latestAnswer().call(), self.now() - age)

    def sequencer_down(self) -> TxReceipt:
        """The sequencer is down since the latest block (answer 1)."""
        return self._round(self.sequencer, SEQUENCER_DOWN, self.now())

    def sequencer_up(self, since: int = 2 * GRACE_PERIOD) -> TxReceipt:
        """The sequencer is up (answer 0) and has been for `since` seconds; `since` <= 3600 is inside the grace
        period, when Chainlink's guide says not to trust prices yet."""
        return self._round(self.sequencer, SEQUENCER_UP, self.now() - since)

    def _round(self, feed: Contract, answer: int, at: int) -> TxReceipt:
        round_id = feed.functions.latestRound().call() + 1
        return send(self.w3, self.updater, feed.functions.updateRoundData(round_id, answer, at, at))


def deploy_feeds(w3: Web3, deployer: LocalAccount, usd_per_eth: Decimal | int | str = 3000) -> Feeds:
    """Deploys ETH/USD (8 decimals, `usd_per_eth`, fresh) and a sequencer uptime feed (0 decimals) that reports
    the sequencer up since twice the grace period ago, so prices are usable at once."""
    abi, bytecode = mock_aggregator()
    eth_usd = deploy(w3, deployer, abi, bytecode, USD_DECIMALS, usd_answer(usd_per_eth))
    sequencer = deploy(w3, deployer, abi, bytecode, 0, SEQUENCER_UP)
    feeds = Feeds(eth_usd, sequencer, deployer)
    feeds.sequencer_up()
    return feeds
