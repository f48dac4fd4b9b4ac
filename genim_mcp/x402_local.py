"""Local mode on USDC (`local_rail = "usdc"`): the configured account pays its own calls through the x402 path.

For a call without a payment, the account signs, with the x402 SDK's own `exact` EVM client scheme, an EIP-3009
authorization for exactly this call's offer (`UsdcRail.requirements`: price(tier) USDC to the contract), and the
front verifies, claims and settles it as any agent's payment (relayer: `relayer`, or the account itself).

The caps are in US dollars (USDC units) and are checked before anything is signed. The day's spending is what
the ledger holds for this account since 00:00 UTC: settled payments, and those whose outcome is not known yet
(claimed, sent), as the ETH wallet counts its open and unknown mints; a payment that charged nothing does not
count. The ledger is the front's SQLite file, so the count survives a restart.
"""

from __future__ import annotations

import time

import anyio
from eth_account.signers.local import LocalAccount
from x402 import x402ClientSync
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.schemas import PaymentRequired

from genim_mcp.store import CapExceeded
from genim_mcp.units import usd_text
from genim_mcp.x402_ledger import Ledger

DAY = 86400


class OwnUsdcPayer:
    """The configured account as an x402 buyer of its own calls, under per-call and per-day caps in USDC units."""

    def __init__(self, account: LocalAccount, max_per_call: int, max_per_day: int) -> None:
        self.account = account
        self.address = account.address
        self.max_per_call = max_per_call
        self.max_per_day = max_per_day
        # Held from the cap check until the payment is claimed in the ledger: two calls cannot both pass the check.
        self.lock = anyio.Lock()

    def check_caps(self, ledger: Ledger, amount: int, now: float | None = None) -> None:
        """CapExceeded (nothing signed) if paying `amount` passes a cap."""
        if amount > self.max_per_call:
            raise CapExceeded(
                f"the price {usd_text(amount)} in USDC is over the per-call cap of {usd_text(self.max_per_call)}"
            )
        at = time.time() if now is None else now
        spent = ledger.spent(self.address, at - at % DAY)
        if spent + amount > self.max_per_day:
            raise CapExceeded(
                f"paying {usd_text(amount)} in USDC would bring today's spending (UTC) to {usd_text(spent + amount)}, "
                f"over the per-day cap of {usd_text(self.max_per_day)} ({usd_text(spent)} spent or pending)"
            )

    def sign(self, required: PaymentRequired) -> dict:
        """The `_meta["x402/payment"]` the SDK's client makes for this offer, signed by the account; the SDK's spend
        controls allow exactly this asset up to the per-call cap."""
        [offer] = required.accepts
        client = x402ClientSync()
        client.register(offer.network, ExactEvmClientScheme(self.account))
        controls = {"allowed_assets": [{"network": offer.network, "asset": offer.asset,
                                        "max_amount_per_payment": str(self.max_per_call)}]}  # fmt: skip
        client.set_spend_controls(controls)  # type: ignore[arg-type]
        return client.create_payment_payload(required).model_dump(by_alias=True)
