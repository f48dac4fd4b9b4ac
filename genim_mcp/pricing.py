"""Tier prices as the contract states them: `price(tier)` in US dollars (6 decimals) and `priceInWei(tier)`, the
ETH a mint is charged now at Chainlink's rate. The front does no feed math of its own; the ETH/USD rate it shows
is the one those two figures imply.

A mint sends the price in wei plus a margin (`price_margin_bps`), so that a rate that moves between the quote
and the mint's block does not make it revert; the contract charges the price at the rate of that block and
returns the rest in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from web3.exceptions import ContractLogicError

from genim_mcp.reverts import revert_of
from genim_mcp.terms import TIER_NAMES
from genim_mcp.units import USD_UNITS, WEI_PER_ETH, eth_text, rate_text, usd_text
from genimnft.contract import Chain

GWEI = 10**9
BPS = 10_000


@dataclass(frozen=True)
class Prices:
    """One reading of the three tiers' prices."""

    usd: tuple[int, ...]  # price(tier): US dollars, 6 decimals; 0 = not on sale
    wei: tuple[int, ...] | None  # priceInWei(tier) now; None while the contract refuses ETH mints
    eth_unavailable: str | None  # why, in words (the contract's error), when `wei` is None

    def usd_per_eth(self) -> Decimal | None:
        """The rate the contract prices at, implied by the dearest tier (the least rounding: wei are whole gwei)."""
        if self.wei is None or not any(self.wei):
            return None
        tier = max(range(len(self.wei)), key=lambda t: self.wei[t])  # type: ignore[index]
        return Decimal(self.usd[tier]) * WEI_PER_ETH / USD_UNITS / Decimal(self.wei[tier])

    def text(self, tier: int) -> str:
        """ "$0.10 (0.0000333 ETH at $3,000/ETH)": dollars first, ETH at the current rate."""
        if self.usd[tier] == 0:
            return "not on sale"
        if self.wei is None:
            return f"{usd_text(self.usd[tier])} ({self.eth_unavailable})"
        rate = self.usd_per_eth()
        assert rate is not None
        return f"{usd_text(self.usd[tier])} ({eth_text(self.wei[tier])} ETH at {rate_text(rate)})"


def max_value(wei: int, margin_bps: int) -> int:
    """What a mint sends for a price of `wei`: `margin_bps` more, rounded up to a whole gwei."""
    with_margin = -(-wei * (BPS + margin_bps) // BPS)
    return -(-with_margin // GWEI) * GWEI


def read_prices(chain: Chain) -> Prices:
    """price(tier) and priceInWei(tier) for every tier; priceInWei reverts (as a mint would) while the feed is
    stale, not positive, or the L2 sequencer is down or in its grace period."""
    tiers = range(len(TIER_NAMES))
    functions = chain.contract.functions
    usd = tuple(functions.price(tier).call() for tier in tiers)
    try:
        wei: tuple[int, ...] | None = tuple(functions.priceInWei(tier).call() for tier in tiers)
    except ContractLogicError as exc:
        revert = revert_of(exc)
        return Prices(usd, None, revert.explain() if revert else f"the contract refused: {exc}")
    return Prices(usd, wei, None)
