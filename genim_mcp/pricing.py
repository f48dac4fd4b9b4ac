"""ETH/USD from a Chainlink aggregator (`latestRoundData`), with a configured fallback rate that says it is one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from web3 import Web3
from web3.exceptions import Web3Exception

log = logging.getLogger("genim.mcp.pricing")
WEI_PER_ETH = 10**18
AGGREGATOR_ABI = [
    {
        "name": "latestRoundData",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "roundId", "type": "uint80"},
            {"name": "answer", "type": "int256"},
            {"name": "startedAt", "type": "uint256"},
            {"name": "updatedAt", "type": "uint256"},
            {"name": "answeredInRound", "type": "uint80"},
        ],
    },
    {"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [], "outputs": [{"type": "uint8"}]},
]


@dataclass(frozen=True)
class UsdRate:
    usd_per_eth: Decimal
    source: str  # "chainlink" or "fallback"
    note: str  # why the fallback is used, or the feed round's age

    def usd(self, wei: int) -> Decimal:
        return (Decimal(wei) * self.usd_per_eth / WEI_PER_ETH).quantize(Decimal("0.0001"))


def fallback(rate: float, reason: str) -> UsdRate:
    return UsdRate(Decimal(str(rate)), "fallback", f"configured fallback rate: {reason}")


def read_rate(w3: Web3, feed: str | None, now: int, max_age: int, fallback_rate: float) -> UsdRate:
    """The feed's answer, unless it is missing, stale (older than `max_age` at chain time `now`) or not positive."""
    if not feed:
        return fallback(fallback_rate, "no ETH/USD feed configured")
    aggregator = w3.eth.contract(address=Web3.to_checksum_address(feed), abi=AGGREGATOR_ABI)
    try:
        _round, answer, _started, updated_at, _answered = aggregator.functions.latestRoundData().call()
        decimals = aggregator.functions.decimals().call()
    except (Web3Exception, ValueError, OSError) as exc:
        log.warning("ETH/USD feed %s unreadable: %s", feed, exc)
        return fallback(fallback_rate, f"feed {feed} unreadable")
    if answer <= 0:
        return fallback(fallback_rate, f"feed answer {answer} is not positive")
    age = now - updated_at
    if age > max_age:
        return fallback(fallback_rate, f"feed answer is stale ({age} s old, limit {max_age} s)")
    return UsdRate(Decimal(answer) / Decimal(10) ** decimals, "chainlink", f"Chainlink ETH/USD, {max(age, 0)} s old")


def eth_text(wei: int) -> str:
    return f"{Decimal(wei) / WEI_PER_ETH:f}"
