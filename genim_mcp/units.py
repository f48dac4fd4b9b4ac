"""How amounts, rates and times are written for buyers: dollars first, ETH to three significant digits."""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal

WEI_PER_ETH = 10**18
USD_UNITS = 10**6  # the contract's dollar prices and USDC both have 6 decimals


def eth_exact(wei: int) -> str:
    """Every digit: 33334000000000 -> "0.000033334"."""
    return _plain(Decimal(wei) / WEI_PER_ETH)


def eth_text(wei: int, digits: int = 3) -> str:
    """Rounded to `digits` significant digits: 33334000000000 -> "0.0000333"."""
    if wei == 0:
        return "0"
    value = Decimal(wei) / WEI_PER_ETH
    return _plain(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1), rounding=ROUND_HALF_UP))


def usd_decimal(units: int) -> Decimal:
    return Decimal(units) / USD_UNITS


def usd_text(units: int) -> str:
    """A dollar amount of 6 decimals: 100000 -> "$0.10", 1234567 -> "$1.234567"."""
    value = usd_decimal(units)
    if value == value.quantize(Decimal("0.01")):
        return f"${value:,.2f}"
    return f"${value.normalize():,f}"


def rate_text(usd_per_eth: Decimal) -> str:
    return f"${usd_per_eth:,.0f}/ETH" if usd_per_eth >= 100 else f"${usd_per_eth:,.2f}/ETH"


def utc_text(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"
